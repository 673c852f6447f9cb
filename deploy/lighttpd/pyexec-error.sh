#!/bin/sh
# lighttpd's server.error-handler for pyexec: the API's JSON for the errors
# lighttpd itself makes.  Gateway failures (502, 503, 504) and any other 5xx
# are the API's 500; a body too large is 413.  REDIRECT_STATUS is the error.
case "${REDIRECT_STATUS:-500}" in
413) st="413 Request Entity Too Large" msg="request body too large" ;;
404) st="404 Not Found" msg="not found" ;;
405) st="405 Method Not Allowed" msg="method not allowed" ;;
4*) st="$REDIRECT_STATUS Bad Request" msg="bad request" ;;
*) st="500 Internal Server Error" msg="Internal server error" ;;
esac
printf 'Status: %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{"error": "%s"}' "$st" "$msg"
