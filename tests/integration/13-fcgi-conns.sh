#!/bin/bash
# servers: one
# The FastCGI workers' connections (issue 5): a web server may keep a
# connection for the next request (nginx fastcgi_keep_conn) or open one per
# request.  Kept connections carry request after request, an idle connection
# never holds a thread (a request on a new connection is answered at once
# even when more connections sit idle than the worker has threads), one the
# server closes frees its thread, one whose body was answered unread has that
# body read to its end and carries the next request, and one with more
# unread input than that is closed after its reply instead of carrying
# garbage into the next request.
# Over TCP, FCGI_WEB_SERVER_ADDRS lets in only the web servers it lists, on
# every path to a new connection.  Spoken to workers of our own with two
# threads, as a web server would.
. "$(dirname "$0")/../lib.sh"

dir=/run/pyexec-dev/${PYEXEC_PORT:-18700}
need_stack_files "no stack started by deploy/stack.sh in $dir" \
    "$dir/bin/pyexec-fcgi" "$dir/pyexec.conf"
client=$PYEXEC_TOP/tests/integration/helpers/fcgi_client.py
sock=$T_TMP/fcgi.sock
spawn-fcgi -n -s "$sock" -M 0600 -u www-data -g www-data -- "$dir/bin/pyexec-fcgi" \
    -c "$dir/pyexec.conf" --fcgi_threads=2 --fcgi_processes=1 2>"$T_TMP/fcgi.log" &
fcgi_pid=$!
trap 'kill $fcgi_pid 2>/dev/null; t_cleanup' EXIT
for ((i = 0; i < 100; i++)); do [ -S "$sock" ] && break; sleep 0.05; done
fc_at() { timeout 30 python3 "$client" "$@" 2>&1; }
fc() { fc_at "$sock" "$@"; }

out=$(fc keep 12)
assert_eq "12 requests on one kept connection, one session: all answered in turn" \
    "$(printf '%s\n' "$out" | grep -c '^Status: 200 OK {"id": "[0-9a-f-]*", "stdout": "')" 12
assert_match "the session's state carried over: the last answer" "$(printf '%s\n' "$out" | sed -n 12p)" '"stdout": "22\\n"}$'
assert_eq "the connection is kept after its last reply" "$(printf '%s\n' "$out" | tail -n 1)" "still open"

out=$(fc idle 4)
assert_eq "4 silent and 4 idle kept connections, 2 threads: a new request is answered" \
    "$(printf '%s\n' "$out" | head -n 1)" 'Status: 200 OK {"status": "healthy"}'
ms=$(printf '%s\n' "$out" | sed -n 's/^answered in \([0-9]*\) ms$/\1/p')
check "... at once (${ms:-?} ms), not after a connection times out" [ "${ms:-99999}" -lt 1000 ]

out=$(fc hangup 10)
assert_eq "10 kept connections the server closed: the threads serve again" \
    "$out" 'Status: 200 OK {"status": "healthy"}'
check "... closed quietly, not taken for broken ones" bash -c "! grep -q event=connection_error '$T_TMP/fcgi.log'"

out=$(fc unread)
assert_eq "bodies answered unread on a kept connection: 415, 413 (3 MiB announced), 404, 405" \
    "$(printf '%s\n' "$out" | sed -n 1,4p)" "$(printf '%s\n' 'Status: 415 Unsupported Media Type' \
    'Status: 413 Payload Too Large' 'Status: 404 Not Found' 'Status: 405 Method Not Allowed')"
assert_eq "... their input read to its end, the connection is kept" "$(printf '%s\n' "$out" | sed -n 5p)" "still open"
assert_match "... and carries the next request" "$(printf '%s\n' "$out" | sed -n 6p)" '^Status: 200 OK .*"stdout": "7\\n"}$'

out=$(fc leftover)
assert_eq "a body announced past what is read to its end (64 MiB) on a kept connection: the JSON 413" \
    "$(printf '%s\n' "$out" | sed -n 1p)" 'Status: 413 Payload Too Large {"error": "request body too large"}'
assert_eq "... then the connection is closed, its unread input with it" "$(printf '%s\n' "$out" | sed -n 2p)" "closed"
assert_match "... and the next connection is served" "$(printf '%s\n' "$out" | sed -n 3p)" '^Status: 200 OK .*"stdout": "7\\n"}$'

# Over TCP, FCGI_WEB_SERVER_ADDRS lists the web servers allowed to connect.
# One worker at a time on one port.
tport=${PYEXEC_FCGI_TCP_PORT:-18743}	# within the range the scripts' own listeners use
tcp_pid=
trap 'kill $fcgi_pid $tcp_pid 2>/dev/null; t_cleanup' EXIT
# tcp_start ADDRESS ALLOWED LOGNAME [option ...]
tcp_start() {
	local addr=$1 allow=$2 log=$3 i
	shift 3
	FCGI_WEB_SERVER_ADDRS=$allow spawn-fcgi -n -a "$addr" -p "$tport" -u www-data -g www-data \
	    -- "$dir/bin/pyexec-fcgi" -c "$dir/pyexec.conf" --fcgi_threads=2 --fcgi_processes=1 "$@" \
	    2>"$T_TMP/$log.log" &
	tcp_pid=$!
	for ((i = 0; i < 100; i++)); do
		tcp_listening && return
		sleep 0.05
	done
}
tcp_stop() { kill "$tcp_pid" 2>/dev/null; wait "$tcp_pid" 2>/dev/null; tcp_pid=; }
tcp_listening() {
	awk -v port=":$(printf %04X "$tport")" '$2 ~ port "$" && $4 == "0A" { found = 1 }
	    END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

tcp_start 127.0.0.1 192.0.2.1,127.0.0.1 tcp-ok
assert_eq "over TCP from an address FCGI_WEB_SERVER_ADDRS lists: served" \
    "$(fc_at "tcp:127.0.0.1:$tport" one)" 'Status: 200 OK {"status": "healthy"}'
tcp_stop
tcp_start 127.0.0.1 192.0.2.1 tcp-no
assert_eq "over TCP from an address it does not list: closed unanswered" \
    "$(fc_at "tcp:127.0.0.1:$tport" one)" refused
check "... and logged" grep -q "event=peer_refused addr=127.0.0.1" "$T_TMP/tcp-no.log"
tcp_stop
# A dual-stack socket: an IPv4 client is listed by its IPv4 address, ::1 is not listed.
if grep -qs '^0\{31\}1 .* lo$' /proc/net/if_inet6; then
	tcp_start :: 127.0.0.1 tcp-v6
	assert_eq "dual-stack socket: the listed IPv4 client is served" \
	    "$(fc_at "tcp:127.0.0.1:$tport" one)" 'Status: 200 OK {"status": "healthy"}'
	assert_eq "dual-stack socket: ::1, not listed, is closed unanswered" "$(fc_at "tcp:[::1]:$tport" one)" refused
	tcp_stop
	# libfcgi, given a connection that yields no request, accepts on the
	# listening socket itself and lets any IPv6 peer in: a kept connection
	# the server closes while ::1 waits in the backlog, one thread.
	tcp_start :: 127.0.0.1 tcp-fallback --fcgi_threads=1
	out=$(fc_at "tcp:127.0.0.1:$tport" fallback "tcp:[::1]:$tport")
	assert_match "a kept connection closed while ::1 waits: the busy request answered" \
	    "$(printf '%s\n' "$out" | sed -n 1p)" '^Status: 200 OK .*"stdout": "5\\n"}$'
	assert_eq "... then ::1, not listed, is closed unanswered all the same" \
	    "$(printf '%s\n' "$out" | sed -n 2p)" refused
	check "... and logged" grep -q "event=peer_refused addr=::1" "$T_TMP/tcp-fallback.log"
	tcp_stop
else
	skip "no IPv6 on this machine: the dual-stack case"
	skip "no IPv6 on this machine: the kept connection closed while ::1 waits"
fi

# Descriptors.  A worker holds at most its open files limit less one per
# thread and 32 connections (64 - 2 - 32 = 30 here): the others wait in the
# backlog, and it can still reach the daemon.
cap_sock=$T_TMP/cap.sock
prlimit --nofile=64 spawn-fcgi -n -s "$cap_sock" -M 0600 -u www-data -g www-data -- "$dir/bin/pyexec-fcgi" \
    -c "$dir/pyexec.conf" --fcgi_threads=2 --fcgi_processes=1 2>"$T_TMP/cap.log" &
cap_pid=$!
trap 'kill $fcgi_pid $tcp_pid $cap_pid 2>/dev/null; t_cleanup' EXIT
for ((i = 0; i < 100; i++)); do [ -S "$cap_sock" ] && break; sleep 0.05; done
out=$(fc_at "$cap_sock" silent 80)
assert_eq "80 silent connections, open files limit 64: a new request waits" "$(printf '%s\n' "$out" | sed -n 1p)" waiting
assert_match "... and is answered once they are closed" "$(printf '%s\n' "$out" | sed -n 2p)" \
    '^answered .* after the closes: Status: 200 OK [{]"status": "healthy"[}]$'
check "... the limit logged" grep -q "event=connection_limit open=30 max=30" "$T_TMP/cap.log"
check "... and no accept failed" bash -c "! grep -q accept '$T_TMP/cap.log'"
kill "$cap_pid"
# Out of descriptors all the same (the limit lowered under a running worker,
# as www-data: root here may lack CAP_SYS_RESOURCE): accept is retried after
# a back-off, its failure logged once, not at every try by every thread.
as_www() { setpriv --reuid=www-data --regid=www-data --clear-groups "$@"; }
ef_sock=$T_TMP/emfile.sock
spawn-fcgi -n -s "$ef_sock" -M 0600 -u www-data -g www-data -- "$dir/bin/pyexec-fcgi" \
    -c "$dir/pyexec.conf" --fcgi_threads=2 --fcgi_processes=1 2>"$T_TMP/emfile.log" &
ef_pid=$!
trap 'kill $fcgi_pid $tcp_pid $ef_pid 2>/dev/null; t_cleanup' EXIT
for ((i = 0; i < 100; i++)); do grep -qs event=started "$T_TMP/emfile.log" && break; sleep 0.05; done
nofile=$(as_www prlimit --pid "$ef_pid" --nofile --output SOFT --noheadings | tr -d ' ')
as_www prlimit --pid "$ef_pid" --nofile=3:
fc_at "$ef_sock" silent 0 >"$T_TMP/emfile.out" &
ef_client=$!
for ((i = 0; i < 200; i++)); do grep -q accept "$T_TMP/emfile.log" && break; sleep 0.05; done
sleep 2
n=$(grep -c accept "$T_TMP/emfile.log")
check "out of descriptors for 2 s: accept's failure logged once ($n lines), not at every try" [ "$n" = 1 ]
as_www prlimit --pid "$ef_pid" --nofile="$nofile":
wait "$ef_client"
assert_match "... and the waiting request is answered once there are descriptors again" \
    "$(sed -n 2p "$T_TMP/emfile.out")" '^answered .* after the closes: Status: 200 OK'
kill "$ef_pid"

# fcgi_processes > 1: the supervisor replaces a worker that dies, and one it
# could not start (fork failing at the process limit) it starts later,
# sleeping meanwhile, also with no worker left.
workers() { pgrep -P "$sup_pid" | sort | tr '\n' ' '; }
# wait_workers N TENTHS: until the supervisor has N workers.
wait_workers() {
	local i
	for ((i = 0; i < $2; i++)); do
		[ "$(workers | wc -w)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$sup_pid/stat"; }
sup_sock=$T_TMP/sup.sock
spawn-fcgi -n -s "$sup_sock" -M 0600 -u www-data -g www-data -- "$dir/bin/pyexec-fcgi" \
    -c "$dir/pyexec.conf" --fcgi_threads=2 --fcgi_processes=2 2>"$T_TMP/sup.log" &
sup_pid=$!
trap 'kill $fcgi_pid $tcp_pid $sup_pid 2>/dev/null; t_cleanup' EXIT
wait_workers 2 50
before=$(workers)
kill -KILL "${before%% *}"
check "a killed worker is replaced" wait_workers 2 30
check "... by a new one" [ "$(workers)" != "$before" ]
nproc=$(as_www prlimit --pid "$sup_pid" --nproc --output SOFT --noheadings | tr -d ' ')
as_www prlimit --pid "$sup_pid" --nproc=0:
kill -KILL $(workers)
sleep 1.5
check "both workers killed, fork failing: the supervisor retries" \
    [ "$(grep -c event=worker_fork_failed "$T_TMP/sup.log")" -ge 2 ]
t0=$(cpu_ticks)
sleep 1
t1=$(cpu_ticks)
check "... and sleeps in between, with no worker left ($((t1 - t0)) ticks of CPU in 1 s)" [ $((t1 - t0)) -lt 10 ]
as_www prlimit --pid "$sup_pid" --nproc="$nproc":
check "once fork works again, both workers are back" wait_workers 2 150
assert_eq "... and serve" "$(fc_at "$sup_sock" one)" 'Status: 200 OK {"status": "healthy"}'
kill "$sup_pid"

check "the worker is still running" kill -0 "$fcgi_pid"
check "no error and no sanitizer report in its log" bash -c "! grep -E 'level=(error|fatal)|Sanitizer|runtime error' '$T_TMP/fcgi.log'"
t_done
