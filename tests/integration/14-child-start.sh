#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# A session child's start-up, between the fork order and its first run: a
# child that cannot enter the sandbox, a child that says ready before the
# zygote has named its pid, a session ended before its pid was known and
# then left without a zygote.  On a stack of its own (port 18714), restarted
# with another configuration for each part.
. "$(dirname "$0")/../lib.sh"

port=18714
dir=/run/pyexec-dev/$port
SAVED_URL=$PYEXEC_URL

metric() { curl -s "$PYEXEC_URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
script() { exec_json "$(jq -cn --arg s "$1" '{script: $s}')"; }

# --- a child that cannot enter the sandbox: 500, not 404 -------------------
# Without CAP_SETPCAP in the daemon's bounding set (so in the zygote's and
# its children's), a child cannot empty its own bounding set: it reports
# CHILD_FAIL and the daemon kills it.  The request that was waiting for it
# could not be served: that is the server's fault (500), not a session the
# client named and that has gone (404).
if ! need_cmd setpriv; then
	skip "setpriv(1) missing: no child that fails to start"
elif ! PYEXEC_SESSIOND_WRAP="setpriv --bounding-set -setpcap" t_stack_start $port pool_size=0; then
	not_ok "a stack without CAP_SETPCAP starts"
	sed 's/^/# /' "$T_TMP/stack-$port.log"
else
	PYEXEC_URL=http://127.0.0.1:$port
	exec_code 'print(1)'
	assert_eq "child fails to start: new session answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	script $'def main():\n    return 1'
	assert_eq "child fails to start: script mode answers 500" "$STATUS $BODY" \
	    '500 {"error": "Internal server error"}'
	assert_match "child fails to start: the daemon says why" \
	    "$(cat $dir/sessiond.log)" "event=sandbox_failed .*bounding cap"
	assert_eq "child fails to start: nothing counted as a live session" \
	    "$(metric pyexec_sessions_live)" 0
	req GET /health
	assert_eq "child fails to start: the daemon stays healthy" "$STATUS" 200
	PYEXEC_URL=$SAVED_URL
	t_stack_stop $port
fi

t_done
