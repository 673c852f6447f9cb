#!/bin/bash
# CPU time each part of a running development stack spends while a command
# runs: nginx, pyexec-fcgi, the daemon, the zygote (with the session children
# it reaped: cutime+cstime), and the live session children.  Root only.
#
#   tests/bench/cpu-split.sh PORT COMMAND...
#
# Prints CPU milliseconds per part (user+system, from /proc/PID/stat), to be
# divided by the number of requests the command made.
set -euo pipefail
port=$1; shift
dir=/run/pyexec-dev/$port
daemon=$(cat "$dir/sessiond.pid")
zygote=$(pgrep -P "$daemon" -f -- '--zygote' | head -n 1)
nginx_master=$(cat "$dir/web.pid" 2>/dev/null || cat "$dir/nginx.pid")
# stat fields 14-17: utime stime cutime cstime, in clock ticks
ticks() { local p t=0; for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(sed 's/.*) //' /proc/$p/stat | awk -v c="${WITHC:-0}" '{print $12 + $13 + (c ? $14 + $15 : 0)}'))); done; echo $t; }
kids() { pgrep -P "$zygote" | tr '\n' ' '; }
snap() {
	echo "nginx $(ticks $(pgrep -P "$nginx_master"))"
	echo "fcgi $(ticks $(pgrep -f "$dir/bin/pyexec-fcgi"))"
	echo "daemon $(ticks "$daemon")"
	echo "zygote+reaped $(WITHC=1 ticks "$zygote")"
	echo "children $(ticks $(kids))"
}
hz=$(getconf CLK_TCK)
before=$(snap)
t0=$(date +%s.%N)
"$@"
t1=$(date +%s.%N)
after=$(snap)
echo "cpu-split: wall $(echo "$t1 - $t0" | bc) s; CPU ms per part (children: live ones only, may have changed):"
paste <(echo "$before") <(echo "$after") | awk -v hz="$hz" '{printf "  %-14s %8.0f ms\n", $1, ($4 - $2) * 1000 / hz}'
