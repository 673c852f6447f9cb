# Sourced by tests/integration/NN-name.sh: TAP output, HTTP helpers, asserts.
#
# Environment (set by tests/run.sh):
#   PYEXEC_URL    base URL of the stack under test, e.g. http://127.0.0.1:18700
#   PYEXEC_TOP    the source tree
#   PYEXEC_PORT   the port of that stack (scripts that need a stack with another
#                 configuration start one on a port of their own: t_stack_start)
#   PYEXEC_OBSERVED  if set, a file where req() appends "method path status
#                 error" of every reply (tests/integration/99-openapi.sh reads it)
#
# Each script prints TAP lines ("ok N - what", "not ok N - what",
# "ok N # SKIP why") and "1..N" at the end; tests/run.sh counts them.

set -u
: "${PYEXEC_URL:=http://127.0.0.1:18700}"
: "${PYEXEC_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
T_NUM=0
T_FAILED=0
T_TMP=$(mktemp -d /tmp/pyexec-test.XXXXXX)
T_STACKS=""

t_cleanup() {
	local p
	for p in $T_STACKS; do "$PYEXEC_TOP/deploy/stack.sh" stop "$p" >/dev/null 2>&1 || true; done
	rm -rf "$T_TMP"
}
trap 't_cleanup' EXIT
trap 'exit 130' INT TERM

t_done() {
	echo "1..$T_NUM"
	[ "$T_FAILED" = 0 ]
}

ok() {
	T_NUM=$((T_NUM + 1))
	echo "ok $T_NUM - $*"
}

not_ok() {
	T_NUM=$((T_NUM + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_NUM - $*"
}

skip() {
	T_NUM=$((T_NUM + 1))
	echo "ok $T_NUM # SKIP $*"
}

# Diagnostics go to TAP comments.
diag() { printf '# %s\n' "$@"; }

# check NAME COMMAND...: ok if the command succeeds.
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# assert_eq NAME GOT WANT
assert_eq() {
	if [ "$2" == "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  $(printf '%q' "$2")" "want: $(printf '%q' "$3")"
	fi
}

# assert_match NAME GOT REGEX (bash =~)
assert_match() {
	if [[ "$2" =~ $3 ]]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  $(printf '%q' "$2")" "want match: $3"
	fi
}

# req METHOD PATH [curl args...]: sets STATUS, BODY, HEADERS (lowercased names).
req() {
	local method=$1 path=$2 how; shift 2
	# curl -X HEAD would wait for a body that never comes: HEAD is -I.
	if [ "$method" = HEAD ]; then how=(-I); else how=(-X "$method"); fi
	STATUS=$(curl -s -o "$T_TMP/body" -D "$T_TMP/headers" -w '%{http_code}' \
	    --max-time 60 "${how[@]}" "$@" "$PYEXEC_URL$path") || STATUS=000
	BODY=$(cat "$T_TMP/body" 2>/dev/null || true)
	HEADERS=$(tr -d '\r' < "$T_TMP/headers" 2>/dev/null | tr 'A-Z' 'a-z' || true)
	# Every status and error string the suite sees, for the OpenAPI check.
	if [ -n "${PYEXEC_OBSERVED:-}" ]; then
		printf '%s\t%s\t%s\t%s\n' "$method" "${path%%\?*}" "$STATUS" \
		    "$(printf '%s' "$BODY" | jq -r 'if type == "object" then (.error // empty) else empty end' 2>/dev/null | head -n 1)" \
		    >> "$PYEXEC_OBSERVED"
	fi
}

# header NAME: the value of a response header of the last req (name lowercase).
header() {
	printf '%s\n' "$HEADERS" | sed -n "s/^$1: //p" | tail -n 1
}

# exec_json JSON [curl args...]: POST /execute with a JSON body.
exec_json() {
	local body=$1; shift
	req POST /execute -H 'Content-Type: application/json' --data-binary "$body" "$@"
}

# exec_code CODE [ID]: runs CODE (a Python source string) in session ID or a new one.
exec_code() {
	local code=$1 id=${2:-}
	if [ -n "$id" ]; then
		exec_json "$(jq -cn --arg c "$code" --arg i "$id" '{code: $c, id: $i}')"
	else
		exec_json "$(jq -cn --arg c "$code" '{code: $c}')"
	fi
}

# jget FILTER: jq -r FILTER over the last BODY ("" when it is not JSON).
jget() { printf '%s' "$BODY" | jq -r "$1" 2>/dev/null || true; }

# new_session: runs empty code and prints the new id.
new_session() {
	exec_code ""
	jget .id
}

# t_stack_start PORT [key=value ...]: a stack of its own, stopped at exit.
t_stack_start() {
	local port=$1; shift
	T_STACKS="$T_STACKS $port"
	"$PYEXEC_TOP/deploy/stack.sh" start "$port" "$@" >"$T_TMP/stack-$port.log" 2>&1
}

t_stack_stop() {
	"$PYEXEC_TOP/deploy/stack.sh" stop "$1" >/dev/null 2>&1 || true
}

# strace_attach PID STRACE_ARGS...: strace PID in the background (its output
# dropped), SPID its pid; returns 0 once it is attached, 1 if not within 5 s
# (strace left running: the caller decides).
strace_attach() {
	local pid=$1 i
	shift
	strace -qq -o /dev/null "$@" -p "$pid" 2>/dev/null &
	SPID=$!
	for i in $(seq 50); do
		[ "$(awk '$1 == "TracerPid:" {print $2}' /proc/$pid/status 2>/dev/null)" = "$SPID" ] &&
		    return 0
		sleep 0.1
	done
	return 1
}

# need_stack_files WHY FILE...: unless every FILE exists, the script ends
# here with one skip saying WHY (a stack not started by deploy/stack.sh has
# neither its pid files, logs nor configuration in /run/pyexec-dev/PORT).
need_stack_files() {
	local why=$1 f
	shift
	for f in "$@"; do
		[ -e "$f" ] && continue
		skip "$why"
		t_done
		exit
	done
}

# need_cmd CMD...: prints nothing and returns 1 if a command is missing.
need_cmd() {
	local c
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

# Sessions a script made on the shared stack, deleted at its end (forget_all)
# so that later scripts do not meet the session limit.
T_DEFAULT_URL=$PYEXEC_URL
IDS=""
track() {
	local i
	i=$(jget '.id // empty')
	[ -n "$i" ] && IDS="$IDS $i"
	return 0
}

# run CODE [ID]: exec_code, keeps the id in $id and tracks it for forget_all.
# (10-limits, 20-escape and 21-escape-tmp define a run of their own.)
run() {
	exec_code "$@"
	id=$(jget .id)
	track
}
forget_all() {
	local i
	for i in $IDS; do
		curl -s -o /dev/null --max-time 10 -X DELETE "$T_DEFAULT_URL/sessions/$i" || true
	done
}

# bg_stop PORT: stops a stack of the script's own in the background (stopping
# is slow); the script waits for it before its end.
bg_stop() { "$PYEXEC_TOP/deploy/stack.sh" stop "$1" >/dev/null 2>&1 & }

# body_jq FILTER: the last BODY satisfies a jq condition.
body_jq() { printf '%s' "$BODY" | jq -e "$1" >/dev/null 2>&1; }

# The error-XOR-output rule of the contract, on the last BODY.
xor_rule_holds() {
	printf '%s' "$BODY" | jq -e '(has("error") and (has("stdout") or has("stderr"))) | not' >/dev/null 2>&1
}
