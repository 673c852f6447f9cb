#!/bin/bash
# The development stack: pyexec-sessiond, pyexec-fcgi workers under spawn-fcgi,
# and nginx in front, all on one port, with everything they make under
# /run/pyexec-dev/PORT (sockets, configuration, logs, pid files).
#
#   deploy/stack.sh run PORT [key=value ...]    foreground; Ctrl-C stops it all
#   deploy/stack.sh start PORT [key=value ...]  background; returns once it answers
#   deploy/stack.sh stop PORT                   stops that stack; harmless if none
#
# key=value pairs override pyexec.conf for this stack only (tests use them).
# PYEXEC_SESSIOND_WRAP, if set, is a command prefix for the daemon (tests use it
# to run it where no cgroup can be written).
# Stacks on different ports are independent: own sockets, state, cgroups.
set -euo pipefail

cmd=${1:-}
port=${2:-}
case "$cmd" in run|start|stop) ;; *) echo "usage: $0 run|start|stop PORT [key=value ...]" >&2; exit 2;; esac
case "$port" in ''|*[!0-9]*) echo "$0: PORT must be a number" >&2; exit 2;; esac
shift 2

top=$(cd "$(dirname "$0")/.." && pwd)
build=${PYEXEC_BUILD:-$top/build}
dir=/run/pyexec-dev/$port
user=www-data

log() { printf 'stack[%s]: %s\n' "$port" "$*" >&2; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Sends a signal to the pids in a file, then waits up to $3 tenths of a second.
stop_pids() {
	local file=$1 sig=$2 tenths=$3 pids p i
	[ -f "$file" ] || return 0
	pids=$(cat "$file")
	for p in $pids; do pid_alive "$p" && kill "-$sig" "$p" 2>/dev/null || true; done
	for ((i = 0; i < tenths; i++)); do
		local any=0
		for p in $pids; do pid_alive "$p" && any=1; done
		[ $any = 0 ] && return 0
		sleep 0.1
	done
	for p in $pids; do pid_alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
	return 0
}

do_stop() {
	[ -d "$dir" ] || return 0
	stop_pids "$dir/nginx.pid" QUIT 30
	stop_pids "$dir/fcgi.pid" TERM 30
	stop_pids "$dir/sessiond.pid" TERM 80
	# A daemon that had to be killed leaves its cgroups: remove them here.
	local d
	for d in /sys/fs/cgroup/pyexec-"$port" /sys/fs/cgroup/*/pyexec-"$port"; do
		[ -d "$d" ] || continue
		find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
		rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$dir"
}

dump_logs() {
	local f
	for f in sessiond.log fcgi.log nginx-error.log; do
		[ -s "$dir/$f" ] || continue
		log "last lines of $f:"
		tail -n 15 "$dir/$f" >&2
	done
}

wait_ready() {
	local i code
	for ((i = 0; i < 600; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
		[ "$code" = 200 ] && return 0
		if ! pid_alive "$(cat "$dir/sessiond.pid" 2>/dev/null)"; then
			log "pyexec-sessiond exited"
			dump_logs
			return 1
		fi
		sleep 0.1
	done
	log "no healthy answer on port $port after 60 s"
	dump_logs
	return 1
}

do_start() {
	local fg=$1; shift
	if [ -d "$dir" ]; then
		if [ -f "$dir/nginx.pid" ] && pid_alive "$(cat "$dir/nginx.pid")"; then
			log "a stack already runs on port $port (deploy/stack.sh stop $port)"
			exit 1
		fi
		do_stop
	fi
	for b in pyexec-sessiond pyexec-fcgi; do
		[ -x "$build/$b" ] || { log "$build/$b is missing: run make"; exit 1; }
	done
	mkdir -p "$dir/bin" "$dir/nginx-tmp"
	chmod 0755 /run/pyexec-dev "$dir" "$dir/bin"
	# The workers run as $user, who may not reach the source tree: copy the programs.
	install -m 0755 "$build/pyexec-sessiond" "$build/pyexec-fcgi" "$dir/bin/"
	{
		cat "$top/deploy/pyexec.conf"
		echo "# --- development stack on port $port ---"
		echo "socket = $dir/sessiond.sock"
		echo "state_dir = $dir"
		echo "socket_group = $user"
		echo "cgroup = pyexec-$port"
		local kv
		for kv in "$@"; do echo "$kv"; done
	} > "$dir/pyexec.conf"
	chmod 0644 "$dir/pyexec.conf"
	sed -e "s|listen 127.0.0.1:8000;|listen 127.0.0.1:$port;|" \
	    -e "s|/run/pyexec/fcgi.sock|$dir/fcgi.sock|" \
	    -e "s|/usr/local/share/pyexec/www|$top/deploy/www|" \
	    "$top/deploy/nginx/pyexec.conf" > "$dir/site.conf"
	cat > "$dir/nginx.conf" <<-EOF
	user $user;
	worker_processes 2;
	pid $dir/nginx.pid;
	error_log $dir/nginx-error.log warn;
	events { worker_connections 1024; }
	http {
	    access_log off;
	    client_body_temp_path $dir/nginx-tmp/body;
	    fastcgi_temp_path $dir/nginx-tmp/fastcgi;
	    proxy_temp_path $dir/nginx-tmp/proxy;
	    uwsgi_temp_path $dir/nginx-tmp/uwsgi;
	    scgi_temp_path $dir/nginx-tmp/scgi;
	    include /etc/nginx/mime.types;
	    include $dir/site.conf;
	}
	EOF

	local out=/dev/stderr
	[ "$fg" = 1 ] || out=$dir/sessiond.log
	# The daemon (root): sessions, zygote, cgroups.
	if [ "$fg" = 1 ]; then
		${PYEXEC_SESSIOND_WRAP:-} "$dir/bin/pyexec-sessiond" -c "$dir/pyexec.conf" </dev/null &
	else
		setsid ${PYEXEC_SESSIOND_WRAP:-} "$dir/bin/pyexec-sessiond" -c "$dir/pyexec.conf" \
		    </dev/null >>"$out" 2>&1 &
	fi
	echo $! > "$dir/sessiond.pid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$dir/sessiond.sock" ] && break
		pid_alive "$(cat "$dir/sessiond.pid")" || { log "pyexec-sessiond failed to start"; [ "$fg" = 1 ] || tail -n 20 "$out" >&2; do_stop; exit 1; }
		sleep 0.05
	done
	# The FastCGI workers, unprivileged, two processes sharing one socket.
	if [ "$fg" = 1 ]; then
		spawn-fcgi -s "$dir/fcgi.sock" -M 0660 -U "$user" -G "$user" -u "$user" -g "$user" \
		    -F 2 -P "$dir/fcgi.pid" -- "$dir/bin/pyexec-fcgi" -c "$dir/pyexec.conf" >/dev/null
	else
		setsid spawn-fcgi -s "$dir/fcgi.sock" -M 0660 -U "$user" -G "$user" -u "$user" -g "$user" \
		    -F 2 -P "$dir/fcgi.pid" -- "$dir/bin/pyexec-fcgi" -c "$dir/pyexec.conf" \
		    >>"$dir/fcgi.log" 2>&1 </dev/null
	fi
	if [ "$fg" = 1 ]; then
		nginx -e "$dir/nginx-error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
		echo $! > "$dir/nginx.pid"
	else
		nginx -e "$dir/nginx-error.log" -c "$dir/nginx.conf"
	fi
	if ! wait_ready; then
		do_stop
		exit 1
	fi
	log "serving on http://127.0.0.1:$port"
}

case "$cmd" in
stop)
	do_stop
	;;
start)
	do_start 0 "$@"
	;;
run)
	trap 'trap - INT TERM; log "stopping"; do_stop; exit 0' INT TERM
	do_start 1 "$@"
	log "Ctrl-C stops it"
	while pid_alive "$(cat "$dir/sessiond.pid" 2>/dev/null)"; do sleep 1; done
	log "pyexec-sessiond exited"
	do_stop
	;;
esac
