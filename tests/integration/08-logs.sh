#!/bin/bash
# servers: one
# Logs (issue 7): one logfmt line per request from the workers and one per
# session event from the daemon, with request id, session id, outcome and
# duration; never the user's code or output.
. "$(dirname "$0")/../lib.sh"

dir=/run/pyexec-dev/${PYEXEC_PORT:-18700}
flog=$dir/fcgi.log
dlog=$dir/sessiond.log
need_stack_files "the stack's logs are not in $dir (not started by deploy/stack.sh with spawn-fcgi workers)" \
    "$flog" "$dlog"
marker="secret$RANDOM$RANDOM"
exec_code "print('$marker')"
id=$(jget .id)
exec_code "1 / 0 # $marker" "$id"
curl -s -X DELETE "$PYEXEC_URL/sessions/$id" >/dev/null
sleep 0.5
line=$(grep "sid=$id" "$flog" | grep 'status=200 outcome=ok' | tail -n 1)
assert_match "a request line: logfmt with rid, method, path, status, outcome, sid, duration" "$line" \
    "^ts=[0-9T:.-]+Z level=info prog=pyexec-fcgi pid=[0-9]+ event=request rid=[^ ]+ method=POST path=/execute status=200 outcome=ok sid=$id dur_us=[0-9]+$"
check "the execution that wrote stderr is logged as such" grep -q "sid=$id dur_us=[0-9]*\$" <(grep "outcome=stderr sid=$id" "$flog")
check "the daemon logs the session's start" grep -q "event=session_start sid=$id " "$dlog"
assert_match "the daemon logs the session's end, why, and its length" \
    "$(grep "event=session_end sid=$id " "$dlog" | tail -n 1)" "reason=deleted execs=2 lifetime_ms=[0-9]+$"
# The zygote learned which pages a starting child writes (zygote_learn): the
# probe ran to its end and found some.
assert_match "the zygote logs what its probe child learned" \
    "$(grep "event=prefault_learned" "$dlog" | tail -n 1)" "prog=pyexec-zygote pid=[0-9]+ event=prefault_learned ranges=[1-9][0-9]* pages=[1-9][0-9]*$"
check "no user code or output in any log" bash -c "! grep -q '$marker' '$flog' '$dlog'"
t_done
