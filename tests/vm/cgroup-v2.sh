#!/bin/bash
# The daemon on cgroup v2, which the development machine (v1) cannot show:
# run inside the guest of tests/vm/run.sh, where /sys/fs/cgroup is the
# unified hierarchy and nothing else (`make test-cgroup2`).  Prints TAP.
#
# Four ways the daemon may find itself started:
#   shell      from a shell's cgroup, which is not its own: its subtree goes
#              at the root, /sys/fs/cgroup/pyexec-PORT;
#   crowded    in a cgroup it shares with another process: the root again;
#   delegated  alone in a cgroup that offers the controllers (what systemd's
#              Delegate=yes gives deploy/systemd's unit): its subtree goes
#              inside that cgroup and the daemon into a leaf beside it;
#   container  alone at the root of a cgroup namespace (a container's): the
#              same, inside the namespace's root.
# In each: a session's cgroup is under the subtree with memory.max,
# pids.max and cpu.max set; a memory hog is "memory limit exceeded"; a
# thread left running freezes the session until its next run; a deleted
# (frozen) session leaves no cgroup; the stack's stop removes the subtree.
# Once: pids_max stops a session's threads.
. "$(dirname "$0")/../lib.sh"

port=18790
dir=/run/pyexec-dev/$port
PYEXEC_URL=http://127.0.0.1:$port
CG=/sys/fs/cgroup

if [ "$(stat -f -c %T $CG)" != cgroup2fs ]; then
	skip "not a cgroup v2 machine: run through tests/vm/run.sh (make test-cgroup2)"
	t_done
	exit
fi
# What a service manager does for its units: controllers on for the children.
echo "+memory +pids +cpu" > $CG/cgroup.subtree_control

t_stack_start $port pool_size=1 memory_limit_mb=64 pids_max=40 ||
	{ not_ok "stack on $port starts"; sed 's/^/# /' "$T_TMP/stack-$port.log"; t_done; exit 1; }

# The cgroup (relative to $CG) of a process.
cg_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
zygote_pid() { pgrep -P "$(cat $dir/sessiond.pid)" -x pyexec-sessiond | head -n 1; }

# session_checks MODE SUBTREE: the checks every mode shares.
session_checks() {
	local mode=$1 sub=$2 sid uid pid cg i
	exec_code 'import os; print(os.getuid())'
	assert_eq "$mode: a session runs code" "$STATUS" 200
	sid=$(jget .id) uid=$(jget .stdout)
	pid=$(pgrep -U "$uid" -P "$(zygote_pid)" | head -n 1)
	cg=$CG$(cg_of "$pid")
	assert_match "$mode: the session's cgroup is under $sub" "$cg" "^$sub/s[0-9]+\$"
	assert_eq "$mode: memory.max" "$(cat "$cg/memory.max")" $((64 << 20))
	assert_eq "$mode: pids.max" "$(cat "$cg/pids.max")" 40
	assert_eq "$mode: cpu.max (one CPU)" "$(cat "$cg/cpu.max")" "100000 100000"
	exec_code 'x = bytearray(200 * 1024 * 1024); print("unnoticed")' "$sid"
	assert_eq "$mode: a memory hog" "$STATUS $(jget .error)" "200 memory limit exceeded"
	for i in $(seq 50); do [ -d "$cg" ] || break; sleep 0.1; done
	check "$mode: the killed session's cgroup is gone" test ! -d "$cg"

	exec_code 'x = 1'
	sid=$(jget .id)
	exec_code 'import os; print(os.getuid())' "$sid"
	pid=$(pgrep -U "$(jget .stdout)" -P "$(zygote_pid)" | head -n 1)
	cg=$CG$(cg_of "$pid")
	# A thread left running freezes the session between its runs.
	exec_code $'import threading, time\nc = [0]\ndef count():\n    while True:\n        c[0] += 1\nthreading.Thread(target=count, daemon=True).start()\ntime.sleep(0.05)' "$sid"
	for i in $(seq 20); do grep -qx 'frozen 1' "$cg/cgroup.events" && break; sleep 0.1; done
	assert_eq "$mode: frozen between runs (cgroup.freeze, cgroup.events)" \
	    "$(cat "$cg/cgroup.freeze") $(grep frozen "$cg/cgroup.events")" "1 frozen 1"
	exec_code $'a = c[0]\ntime.sleep(0.1)\nprint(c[0] > a)' "$sid"
	assert_eq "$mode: thawed for the next run" "$STATUS $(jget .stdout)" "200 True"
	req DELETE "/sessions/$sid"
	assert_eq "$mode: DELETE" "$STATUS" 204
	for i in $(seq 50); do [ -d "$cg" ] || break; sleep 0.1; done
	check "$mode: the deleted session's cgroup is gone ($cg)" test ! -d "$cg"
}

# restart_daemon CGROUP [crowd|container]: stops the stack's daemon
# (SIGTERM), starts it again as the only process of CGROUP, or with a
# sleeping neighbour, or alone at the root of a cgroup namespace rooted at
# CGROUP (with its own mount of cgroup2, as a container has).
restart_daemon() {
	local cg=$1 how=${2:-} old i daemon
	old=$(cat $dir/sessiond.pid)
	kill -TERM "$old"
	for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
	mkdir -p "$cg"
	if [ "$how" = crowd ]; then
		sh -c "echo \$\$ > '$cg/cgroup.procs'; exec sleep 600" &
		NEIGHBOUR=$!
	fi
	daemon="exec '$dir/bin/pyexec-sessiond' -c '$dir/pyexec.conf'"
	[ "$how" = container ] &&
		daemon="exec unshare --cgroup --mount sh -c \"umount $CG && mount -t cgroup2 cgroup2 $CG && $daemon\""
	setsid sh -c "echo \$\$ > '$cg/cgroup.procs' && $daemon" \
	    </dev/null >>"$dir/sessiond.log" 2>&1 &
	echo $! > $dir/sessiond.pid
	for i in $(seq 300); do req GET /health; [ "$STATUS" = 200 ] && return 0; sleep 0.1; done
	tail -n 5 "$dir/sessiond.log" | sed 's/^/# /'
	return 1
}

# --- shell: started by deploy/stack.sh from this script's cgroup -------------
diag "the script's cgroup: $(cg_of $$)"
session_checks shell "$CG/pyexec-$port"
# pids_max (pids.max, and RLIMIT_NPROC of the session's uid) counts threads:
# the 41st task cannot start.
exec_code $'import threading\nev = threading.Event()\nts = []\ntry:\n    for i in range(100):\n        t = threading.Thread(target=ev.wait, daemon=True)\n        t.start()\n        ts.append(t)\n    print("ESCAPED", len(ts))\nexcept RuntimeError:\n    print("BLOCKED", len(ts) < 40)\nev.set()'
assert_eq "shell: pids_max stops a session's threads" "$STATUS $(jget .stdout)" $'200 BLOCKED True'

# --- crowded: a cgroup shared with another process ---------------------------
crowd=$CG/pyexec-vm-crowded
NEIGHBOUR=""
check "crowded: the daemon restarts" restart_daemon "$crowd" crowd
assert_eq "crowded: the daemon stays where it was started" \
    "$(cg_of "$(cat $dir/sessiond.pid)")" "${crowd#"$CG"}"
session_checks crowded "$CG/pyexec-$port"

# --- delegated: alone in a cgroup with the controllers ------------------------
unit=$CG/pyexec-vm.service
check "delegated: the daemon restarts" restart_daemon "$unit"
[ -n "$NEIGHBOUR" ] && kill "$NEIGHBOUR" 2>/dev/null
assert_eq "delegated: the daemon moved into its leaf" \
    "$(cg_of "$(cat $dir/sessiond.pid)")" "${unit#"$CG"}/pyexec-$port.daemon"
assert_eq "delegated: so did its zygote" "$(cg_of "$(zygote_pid)")" "${unit#"$CG"}/pyexec-$port.daemon"
check "delegated: nothing made at the root" test ! -d "$CG/pyexec-$port"
session_checks delegated "$unit/pyexec-$port"

# --- container: alone at the root of its cgroup namespace ---------------------
ctr=$CG/pyexec-vm-container
check "container: the daemon restarts" restart_daemon "$ctr" container
check "delegated: the restart removed the subtree" test ! -d "$unit/pyexec-$port"
dpid=$(cat $dir/sessiond.pid)
assert_eq "container: in its namespace, the daemon's leaf is at the root" \
    "$(nsenter -t "$dpid" -C cat "/proc/$dpid/cgroup")" "0::/pyexec-$port.daemon"
assert_eq "container: the daemon moved into its leaf" \
    "$(cg_of "$(cat $dir/sessiond.pid)")" "${ctr#"$CG"}/pyexec-$port.daemon"
session_checks container "$ctr/pyexec-$port"

t_stack_stop $port
check "container: the stop removes the subtree" test ! -d "$ctr/pyexec-$port"
rmdir "$unit/pyexec-$port.daemon" "$ctr/pyexec-$port.daemon" "$unit" "$ctr" "$crowd" 2>/dev/null
t_done
