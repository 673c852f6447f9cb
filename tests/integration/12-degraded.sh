#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Architecture rule 7: without a writable cgroup the daemon refuses to start,
# unless allow_degraded = yes; then it warns and limits memory with RLIMIT_AS.
. "$(dirname "$0")/../lib.sh"

need_cmd unshare || { skip "unshare(1) missing"; t_done; exit; }
wrap="unshare -m --propagation private $PYEXEC_TOP/tests/integration/helpers/no-cgroups.sh"
bin=${PYEXEC_BUILD:-$PYEXEC_TOP/build}/pyexec-sessiond
d=$T_TMP/state

mkdir -p "$d"
timeout 20 $wrap "$bin" -c "$PYEXEC_TOP/deploy/pyexec.conf" --socket="$d/s.sock" \
    --state_dir="$d" --cgroup=pyexec-degraded-test > "$T_TMP/refuse.log" 2>&1
rc=$?
assert_eq "no cgroup: the daemon refuses to start" "$rc" 1
assert_match "no cgroup: it says why" "$(cat "$T_TMP/refuse.log")" "refusing to run without memory limits"

port=18730
PYEXEC_SESSIOND_WRAP=$wrap t_stack_start $port allow_degraded=yes pool_size=1
saved=$PYEXEC_URL
PYEXEC_URL=http://127.0.0.1:$port
req GET /health
assert_eq "degraded: healthy" "$STATUS" 200
assert_match "degraded: warns loudly" "$(cat /run/pyexec-dev/$port/sessiond.log 2>/dev/null)" "event=DEGRADED"
exec_code 'x = bytearray(10 * 1024 * 1024); print(len(x))'
assert_eq "degraded: 10 MB works" "$(jget .stdout)" 10485760
exec_code 'x = bytearray(150 * 1024 * 1024)'
if [[ "${PYEXEC_BUILD:-}" == *asan* ]]; then
	# AddressSanitizer's allocator aborts rather than fail under RLIMIT_AS.
	skip "degraded: 150 MB under RLIMIT_AS (not with an ASan build)"
else
	assert_eq "degraded: 150 MB is memory limit exceeded" "$(jget .error)" "memory limit exceeded"
fi
assert_eq "degraded: no output beside the error" "$(jget 'has("stderr") or has("stdout")')" false
PYEXEC_URL=$saved
t_stack_stop $port
t_done
