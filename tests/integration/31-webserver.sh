#!/bin/bash
# Issue 6, point 1: what the web server in front (PYEXEC_SERVER: nginx, apache,
# lighttpd, lighttpd-spawn) must do so that every answer is pyexec's: bodies
# up to 8 MiB reach pyexec (its JSON 413), larger ones get the same JSON from
# the server, the static site where it exists, and when the FastCGI workers
# fail (killed mid-request, or gone) the client gets the API's JSON 500.
. "$(dirname "$0")/../lib.sh"

srv=${PYEXEC_SERVER:-nginx}
diag "web server: $srv"

# --- body limits --------------------------------------------------------------
big=$T_TMP/big.json
{ printf '{"code": "#'; head -c $((8 * 1024 * 1024 - 200)) /dev/zero | tr '\0' 'a'; printf '"}'; } > "$big"
req POST /execute -H 'Content-Type: application/json' --data-binary "@$big"
assert_eq "$srv: a body of almost 8 MiB reaches pyexec (its JSON 413)" "$STATUS $BODY" '413 {"error": "request body too large"}'
huge=$T_TMP/huge.json
{ printf '{"code": "#'; head -c $((9 * 1024 * 1024)) /dev/zero | tr '\0' 'a'; printf '"}'; } > "$huge"
req POST /execute -H 'Content-Type: application/json' --data-binary "@$huge"
assert_eq "$srv: a 9 MiB body: JSON 413, not an HTML page" "$STATUS $BODY" '413 {"error": "request body too large"}'
assert_eq "$srv: a 9 MiB body: content type" "$(header content-type)" application/json
req POST /execute -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "@$huge"
assert_eq "$srv: a chunked 9 MiB body: JSON 413" "$STATUS $BODY" '413 {"error": "request body too large"}'

# --- the static site, where deploy/www has it ----------------------------------
www=$PYEXEC_TOP/deploy/www
for pair in "/:index.html" "/docs:docs/index.html" "/openapi.json:openapi.json"; do
	path=${pair%%:*} file=${pair#*:}
	if [ -f "$www/$file" ]; then
		req GET "$path"
		assert_eq "$srv: GET $path is deploy/www/$file" "$STATUS $(cmp -s "$T_TMP/body" "$www/$file" && echo same)" "200 same"
	else
		req GET "$path"
		assert_eq "$srv: GET $path without deploy/www/$file: pyexec's JSON 404" "$STATUS $BODY" '404 {"error": "not found"}'
	fi
done
req GET /assets/no-such-file.js
assert_eq "$srv: a missing static file is pyexec's JSON 404" "$STATUS $BODY" '404 {"error": "not found"}'
req GET /health
assert_eq "$srv: /health is pyexec's" "$STATUS $BODY" '200 {"status": "healthy"}'

# --- the FastCGI side failing: the API's JSON 500 ------------------------------
port=18740
if t_stack_start $port pool_size=1; then
	u=http://127.0.0.1:$port
	workers() { find /proc -mindepth 2 -maxdepth 2 -name exe -lname "/run/pyexec-dev/$port/bin/pyexec-fcgi*" 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/exe$|\1|p'; }
	curl -s -o "$T_TMP/k.body" -w '%{http_code}' --max-time 30 "$u/execute" -H 'Content-Type: application/json' \
	    -d '{"code": "import time; time.sleep(2)"}' > "$T_TMP/k.status" &
	cpid=$!
	sleep 0.8
	for p in $(workers); do kill -KILL "$p" 2>/dev/null; done
	wait $cpid
	assert_eq "$srv: workers killed mid-request: the API's 500" "$(cat "$T_TMP/k.status") $(cat "$T_TMP/k.body")" \
	    '500 {"error": "Internal server error"}'
	case "$srv" in
	apache|lighttpd)
		# The server restarts its workers itself.
		st=""
		for ((i = 0; i < 50; i++)); do
			st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$u/health")
			[ "$st" = 200 ] && break
			sleep 0.2
		done
		assert_eq "$srv: the server restarts the workers" "$st" 200 ;;
	*)
		for p in $(workers); do kill -KILL "$p" 2>/dev/null; done
		PYEXEC_URL=$u req GET /health
		assert_eq "$srv: workers gone: the API's 500, as JSON" "$STATUS $BODY" '500 {"error": "Internal server error"}'
		assert_eq "$srv: workers gone: content type" "$(header content-type)" application/json ;;
	esac
	req GET /health
	t_stack_stop $port
	check "$srv: stop removes everything under /run/pyexec-dev/$port" [ ! -e /run/pyexec-dev/$port ]
	check "$srv: stop leaves no worker" [ -z "$(workers)" ]
else
	not_ok "$srv: a stack of its own on $port"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
fi
t_done
