#!/bin/bash
# Request errors of POST /execute and the other paths (api.md, "Request errors"):
# exact statuses, exact bodies, JSON on every reply.
. "$(dirname "$0")/../lib.sh"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# body_jq FILTER: true if the last BODY is JSON and FILTER holds on it.

# track: remembers the session id of the last reply, deleted at the end so that
# this script leaves the shared stack's session table as it found it.

# expect_error NAME STATUS MESSAGE: the last reply is STATUS with the body
# exactly {"error": "MESSAGE"}, as JSON.
expect_error() {
	assert_eq "$1: status $2" "$STATUS" "$2"
	assert_eq "$1: body" "$BODY" "{\"error\": \"$3\"}"
	assert_eq "$1: content type" "$(header content-type)" "application/json"
}

# post_raw BODY [curl args...]: POST /execute, Content-Type application/json.
post_raw() {
	local body=$1; shift
	req POST /execute -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# --- bodies that are not JSON ----------------------------------------------
post_raw ''
expect_error "empty body" 400 "request body is not valid JSON"
post_raw '{"code": "print(1)"} x'
expect_error "trailing garbage" 400 "request body is not valid JSON"
post_raw '{"code": "print(1)"'
expect_error "truncated object" 400 "request body is not valid JSON"
post_raw '{"code": "print(1)'
expect_error "truncated string" 400 "request body is not valid JSON"
post_raw "{'code': 'print(1)'}"
expect_error "single quotes" 400 "request body is not valid JSON"
post_raw '{code: "print(1)"}'
expect_error "unquoted key" 400 "request body is not valid JSON"
post_raw '{"code": "print(1)",}'
expect_error "trailing comma" 400 "request body is not valid JSON"
post_raw 'print(1)'
expect_error "plain Python as body" 400 "request body is not valid JSON"
post_raw '{"code": "print(1)"}{"code": "print(2)"}'
expect_error "two objects" 400 "request body is not valid JSON"
post_raw $'{"code": "\xff\xfe"}'
expect_error "invalid UTF-8 in a string" 400 "request body is not valid JSON"

# --- JSON, but not an object -----------------------------------------------
post_raw '[{"code": "print(1)"}]'
expect_error "array body" 400 "request body must be a JSON object"
post_raw '"print(1)"'
expect_error "string body" 400 "request body must be a JSON object"
post_raw '42'
expect_error "number body" 400 "request body must be a JSON object"
post_raw 'null'
expect_error "null body" 400 "request body must be a JSON object"
post_raw 'true'
expect_error "boolean body" 400 "request body must be a JSON object"

# --- paths and methods -----------------------------------------------------
req GET /nope
expect_error "GET unknown path" 404 "not found"
req POST /nope -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}'
expect_error "POST unknown path" 404 "not found"
req POST /execute/extra -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}'
expect_error "POST /execute/extra" 404 "not found"
req POST /Execute -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}'
expect_error "paths are case-sensitive (/Execute)" 404 "not found"
for m in GET PUT DELETE PATCH; do
	# No body with GET: lighttpd refuses a GET with a body itself (a JSON 400).
	if [ "$m" = GET ]; then
		req GET /execute
	else
		req "$m" /execute -H 'Content-Type: application/json' --data-binary '{"code": "print(1)"}'
	fi
	expect_error "$m /execute" 405 "method not allowed"
	assert_eq "$m /execute: Allow header" "$(header allow)" "post"
done

# --- body size --------------------------------------------------------------
# A body of exactly max_body (1 MiB) is accepted; one byte more is refused.
mk_body() { # mk_body SIZE FILE: {"code": "#xxx..."} of exactly SIZE bytes
	{ printf '{"code": "#'; head -c $(($1 - 13)) /dev/zero | tr '\0' x; printf '"}'; } > "$2"
}
mk_body 1048576 "$T_TMP/1m"
mk_body 1048577 "$T_TMP/1m+1"
mk_body 2097152 "$T_TMP/2m"
head -c 9000000 /dev/zero | tr '\0' x > "$T_TMP/9m"
assert_eq "test body of 1 MiB has its size" "$(stat -c %s "$T_TMP/1m")" 1048576
req POST /execute -H 'Content-Type: application/json' --data-binary @"$T_TMP/1m"
track
assert_eq "body of exactly 1 MiB: status 200" "$STATUS" 200
assert_eq "body of exactly 1 MiB: only the id" "$BODY" "{\"id\": \"$(jget .id)\"}"
req POST /execute -H 'Content-Type: application/json' --data-binary @"$T_TMP/1m+1"
expect_error "body of 1 MiB + 1 (Content-Length)" 413 "request body too large"
req POST /execute -H 'Content-Type: application/json' --data-binary @"$T_TMP/2m"
expect_error "body of 2 MiB (Content-Length)" 413 "request body too large"
req POST /execute -H 'Content-Type: application/json' --data-binary @"$T_TMP/9m"
expect_error "body of 9 MB (Content-Length, beyond the web server's limit)" 413 "request body too large"
req POST /execute -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/1m+1"
expect_error "chunked body of 1 MiB + 1" 413 "request body too large"
req POST /execute -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$T_TMP/9m"
expect_error "chunked body of 9 MB" 413 "request body too large"
req POST /execute -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary '{"code": "print(7)"}'
track
assert_eq "small chunked body: status 200" "$STATUS" 200
assert_eq "small chunked body: runs" "$(jget .stdout)" "7"

# --- Content-Type ------------------------------------------------------------
req POST /execute -H 'Content-Type: text/plain' --data-binary '{"code": "print(1)"}'
expect_error "Content-Type text/plain" 415 "Content-Type must be application/json"
req POST /execute --data-binary '{"code": "print(1)"}'
expect_error "Content-Type application/x-www-form-urlencoded (curl's default)" 415 "Content-Type must be application/json"
req POST /execute -H 'Content-Type: application/jsonp' --data-binary '{"code": "print(1)"}'
expect_error "Content-Type application/jsonp" 415 "Content-Type must be application/json"
req POST /execute -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"code": "print(1)"}'
track
assert_eq "application/json; charset=utf-8: status 200" "$STATUS" 200
assert_eq "application/json; charset=utf-8: runs" "$BODY" "{\"id\": \"$(jget .id)\", \"stdout\": \"1\\n\"}"
req POST /execute -H 'Content-Type: Application/JSON' --data-binary '{"code": "print(2)"}'
track
assert_eq "Content-Type Application/JSON (media types are case-insensitive): status 200" "$STATUS" 200
req POST /execute -H 'Content-Type:' --data-binary '{"code": "print(1)"}'
track
assert_eq "no Content-Type: status 200" "$STATUS" 200
assert_eq "no Content-Type: runs" "$BODY" "{\"id\": \"$(jget .id)\", \"stdout\": \"1\\n\"}"

# --- fields ----------------------------------------------------------------
post_raw '{}'
expect_error "empty object" 422 "'code' is required"
post_raw '{"id": null, "cod": "print(1)"}'
expect_error "misspelt code" 422 "'code' is required"
post_raw '{"code": 42}'
expect_error "code a number" 422 "'code' must be a string"
post_raw '{"code": null}'
expect_error "code null" 422 "'code' must be a string"
post_raw '{"code": ["print(1)"]}'
expect_error "code a list" 422 "'code' must be a string"
post_raw '{"code": {"a": 1}}'
expect_error "code an object" 422 "'code' must be a string"
post_raw '{"code": true}'
expect_error "code a boolean" 422 "'code' must be a string"
post_raw '{"script": 42}'
expect_error "script a number" 422 "'script' must be a string"
post_raw '{"script": null}'
expect_error "script null" 422 "'script' must be a string"
post_raw '{"script": ["def main(): return 1"]}'
expect_error "script a list" 422 "'script' must be a string"
post_raw '{"code": "print(1)", "id": 42}'
expect_error "id a number" 422 "'id' must be a string"
post_raw '{"code": "print(1)", "id": ["x"]}'
expect_error "id a list" 422 "'id' must be a string"
post_raw '{"code": "print(1)", "id": true}'
expect_error "id a boolean" 422 "'id' must be a string"
post_raw '{"code": "print(1)", "script": "def main():\n    return 1"}'
expect_error "both code and script" 422 "give either 'code' or 'script', not both"

post_raw '{"code": "print(3)", "id": null}'
track
assert_eq "id null: status 200" "$STATUS" 200
id_null=$(jget .id)
assert_match "id null: a new session id" "$id_null" "$UUID_RE"
assert_eq "id null: body" "$BODY" "{\"id\": \"$id_null\", \"stdout\": \"3\\n\"}"

post_raw '{"code": "print(4)", "colour": "blue", "timeout": 99, "nested": {"a": [1, 2]}}'
track
assert_eq "unknown fields ignored: status 200" "$STATUS" 200
assert_eq "unknown fields ignored: body" "$BODY" "{\"id\": \"$(jget .id)\", \"stdout\": \"4\\n\"}"

# --- session ids -------------------------------------------------------------
post_raw '{"code": "print(1)", "id": "not-a-uuid"}'
expect_error "id not a UUID" 404 "session not found"
post_raw '{"code": "print(1)", "id": ""}'
expect_error "id empty string" 404 "session not found"
post_raw '{"code": "print(1)", "id": "../../etc/passwd"}'
expect_error "id a path" 404 "session not found"
rnd=$(cat /proc/sys/kernel/random/uuid)
post_raw "{\"code\": \"print(1)\", \"id\": \"$rnd\"}"
expect_error "random well-formed UUID" 404 "session not found"

# The Pyexec-Session header names the session when the body does not.
exec_code 'h = 11'
track
sid=$(jget .id)
assert_match "header tests: session made" "$sid" "$UUID_RE"
post_raw '{"code": "print(h)"}' -H "Pyexec-Session: $sid"
assert_eq "Pyexec-Session header alone: status 200" "$STATUS" 200
assert_eq "Pyexec-Session header alone: runs in that session" "$BODY" "{\"id\": \"$sid\", \"stdout\": \"11\\n\"}"
assert_eq "Pyexec-Session header alone: header echoed" "$(header pyexec-session)" "$sid"
post_raw "{\"code\": \"print(h + 1)\", \"id\": \"$sid\"}" -H "Pyexec-Session: $sid"
assert_eq "header equal to body id: status 200" "$STATUS" 200
assert_eq "header equal to body id: runs" "$BODY" "{\"id\": \"$sid\", \"stdout\": \"12\\n\"}"
post_raw '{"code": "print(1)"}' -H "Pyexec-Session: $rnd"
expect_error "Pyexec-Session header with an unknown UUID" 404 "session not found"
post_raw "{\"code\": \"h = 99\", \"id\": \"$sid\"}" -H "Pyexec-Session: $rnd"
assert_eq "header and body ids differ: status 422" "$STATUS" 422
check "header and body ids differ: body is exactly one string key error" \
    body_jq 'keys == ["error"] and (.error | type == "string")'
assert_eq "header and body ids differ: content type" "$(header content-type)" "application/json"
exec_code 'print(h)' "$sid"
assert_eq "header and body ids differ: nothing ran" "$BODY" "{\"id\": \"$sid\", \"stdout\": \"11\\n\"}"

# --- every reply is JSON, never an HTML page ----------------------------------
# json_only NAME METHOD PATH...: each reply has Content-Type application/json and no HTML.
json_only() {
	local name=$1 m=$2 p bad=""; shift 2
	for p in "$@"; do
		req "$m" "$p"
		case "$BODY" in *'<html'*|*'<HTML'*) bad="$bad $m $p: html;" ;; esac
		[ "$(header content-type)" = application/json ] || bad="$bad $m $p: $(header content-type);"
	done
	assert_eq "$name" "$bad" ""
}
json_only "OPTIONS on API paths: JSON replies" OPTIONS /nope /execute /health /metrics /sessions/x "/execute?x=1"
json_only "HEAD /execute: JSON reply" HEAD /execute
json_only "URLs the web server itself refuses (NUL, escaped ../): JSON replies, no HTML" GET /%00 /..%2f..%2fetc/passwd

forget_all
t_done
