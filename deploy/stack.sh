#!/bin/bash
# The development stack: pyexec-sessiond, pyexec-fcgi workers and a web server
# in front, all on one port, with everything they make under
# /run/pyexec-dev/PORT (sockets, configuration, logs, pid files).
#
#   deploy/stack.sh run PORT [key=value ...]    foreground; Ctrl-C stops it all
#   deploy/stack.sh start PORT [key=value ...]  background; returns once it answers
#   deploy/stack.sh stop PORT                   stops that stack; harmless if none
#
# PYEXEC_SERVER chooses the web server (start and run; stop finds it by itself):
#   nginx           nginx, workers under spawn-fcgi on a Unix socket (default)
#   apache          a private Apache 2.4 whose mod_fcgid starts the workers
#   lighttpd        lighttpd, whose mod_fastcgi starts the workers (bin-path)
#   lighttpd-spawn  lighttpd, workers under spawn-fcgi on a Unix socket
# Each uses the configuration an operator would install (deploy/nginx,
# deploy/apache, deploy/lighttpd) with this stack's port and paths; none of
# them touches the system's own web server setup.  The workers run as
# www-data in every mode.  Exit status 3: that web server is not installed.
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
server=${PYEXEC_SERVER:-nginx}

log() { printf 'stack[%s]: %s\n' "$port" "$*" >&2; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# server_missing SERVER: prints what is missing to run that web server, if anything.
server_missing() {
	case "$1" in
	nginx) command -v nginx >/dev/null || echo "nginx"
		command -v spawn-fcgi >/dev/null || echo "spawn-fcgi" ;;
	apache) command -v apache2 >/dev/null || echo "apache2"
		[ -f /usr/lib/apache2/modules/mod_fcgid.so ] || echo "libapache2-mod-fcgid" ;;
	lighttpd) command -v lighttpd >/dev/null || echo "lighttpd" ;;
	lighttpd-spawn) command -v lighttpd >/dev/null || echo "lighttpd"
		command -v spawn-fcgi >/dev/null || echo "spawn-fcgi" ;;
	*) echo "a known server (PYEXEC_SERVER=nginx|apache|lighttpd|lighttpd-spawn)" ;;
	esac
}

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

# The pids of the processes running a program of this stack ($dir/bin/...),
# whoever started them (spawn-fcgi, mod_fcgid, lighttpd).
stack_pids() {
	find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$dir/bin/$1*" 2>/dev/null |
	    sed -n 's|^/proc/\([0-9]*\)/exe$|\1|p'
}

# The workers hold no state: they are killed, not asked (libfcgi catches
# SIGTERM and only stops accepting after the next request).
kill_workers() {
	local p
	for p in $(stack_pids pyexec-fcgi); do kill -KILL "$p" 2>/dev/null || true; done
}

do_stop() {
	[ -d "$dir" ] || return 0
	local d web=nginx
	[ -f "$dir/server" ] && web=$(cat "$dir/server")
	# The web server first (no new requests), its workers with it.
	case "$web" in
	apache)
		if [ -f "$dir/web.pid" ] && pid_alive "$(cat "$dir/web.pid")"; then
			kill -TERM "$(cat "$dir/web.pid")" 2>/dev/null || true
			kill_workers
			stop_pids "$dir/web.pid" TERM 100
		fi ;;
	lighttpd*) kill_workers; stop_pids "$dir/web.pid" TERM 50 ;;
	*) stop_pids "$dir/web.pid" QUIT 30 ;;
	esac
	stop_pids "$dir/nginx.pid" QUIT 30	# a stack started by an older stack.sh
	kill_workers
	stop_pids "$dir/fcgi.pid" KILL 30
	stop_pids "$dir/sessiond.pid" TERM 80
	# Whatever of this stack is still running (a daemon run by hand, a
	# worker a server restarted meanwhile).
	for d in $(stack_pids pyexec-fcgi) $(stack_pids pyexec-sessiond); do
		kill -KILL "$d" 2>/dev/null || true
	done
	# A daemon that had to be killed leaves its cgroups: remove them here.
	for d in /sys/fs/cgroup/pyexec-"$port" /sys/fs/cgroup/*/pyexec-"$port"; do
		[ -d "$d" ] || continue
		find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
		rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$dir"
}

dump_logs() {
	local f
	for f in sessiond.log fcgi.log nginx-error.log apache-error.log lighttpd/error.log; do
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
		if ! pid_alive "$(cat "$dir/web.pid" 2>/dev/null)" && [ $i -gt 20 ]; then
			log "the web server ($server) exited"
			dump_logs
			return 1
		fi
		sleep 0.1
	done
	log "no healthy answer on port $port after 60 s"
	dump_logs
	return 1
}

# The static site (deploy/www), copied: the servers' users may not reach the
# source tree.  Only what is served: no node_modules, no package files.
copy_www() {
	mkdir -p "$dir/www"
	if [ -d "$top/deploy/www" ]; then
		tar -C "$top/deploy/www" --exclude=./node_modules --exclude='./package*.json' \
		    --exclude='./*.sh' -cf - . | tar -C "$dir/www" -xf -
	fi
	chmod -R a+rX "$dir/www"
}

# spawn-fcgi workers: one supervising pyexec-fcgi that keeps two worker
# processes on the socket and replaces any that dies.  -n: spawn-fcgi binds
# the socket and becomes pyexec-fcgi (same pid, in fcgi.pid); without it,
# spawn-fcgi would send the workers' stderr, their log, to /dev/null.
start_spawn_fcgi() {
	local fg=$1
	if [ "$fg" = 1 ]; then
		spawn-fcgi -n -s "$dir/fcgi.sock" -M 0660 -U "$user" -G "$user" -u "$user" -g "$user" \
		    -- "$dir/bin/pyexec-fcgi" -c "$dir/pyexec.conf" --fcgi_processes=2 &
	else
		setsid spawn-fcgi -n -s "$dir/fcgi.sock" -M 0660 -U "$user" -G "$user" -u "$user" -g "$user" \
		    -- "$dir/bin/pyexec-fcgi" -c "$dir/pyexec.conf" --fcgi_processes=2 \
		    >>"$dir/fcgi.log" 2>&1 </dev/null &
	fi
	echo $! > "$dir/fcgi.pid"
	local i
	for ((i = 0; i < 100; i++)); do
		[ -S "$dir/fcgi.sock" ] && return 0
		sleep 0.05
	done
	log "spawn-fcgi did not create $dir/fcgi.sock"
	return 1
}

start_nginx() {
	local fg=$1
	start_spawn_fcgi "$fg"
	mkdir -p "$dir/nginx-tmp"
	sed -e "s|listen 127.0.0.1:8000;|listen 127.0.0.1:$port;|" \
	    -e "s|/run/pyexec/fcgi.sock|$dir/fcgi.sock|" \
	    -e "s|/usr/local/share/pyexec/www|$dir/www|" \
	    "$top/deploy/nginx/pyexec.conf" > "$dir/site.conf"
	cat > "$dir/nginx.conf" <<-EOF
	user $user;
	worker_processes 2;
	pid $dir/web.pid;
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
	if [ "$fg" = 1 ]; then
		nginx -e "$dir/nginx-error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
		echo $! > "$dir/web.pid"
	else
		nginx -e "$dir/nginx-error.log" -c "$dir/nginx.conf"
	fi
}

# A private Apache: own ServerRoot, pid file, mutexes, logs, mod_fcgid sockets
# and process table, all under $dir/apache; the site is deploy/apache/pyexec.conf.
start_apache() {
	local fg=$1 a=$dir/apache m=/usr/lib/apache2/modules mod
	mkdir -p "$a/fcgid" "$a/errors"
	chown "$user:$user" "$a/fcgid"
	cp "$top"/deploy/apache/errors/*.asis "$a/errors/"
	chmod -R a+rX "$a"
	sed -e "s|127.0.0.1:8000|127.0.0.1:$port|g" \
	    -e "s|/usr/local/sbin/pyexec-fcgi|$dir/bin/pyexec-fcgi -c $dir/pyexec.conf|" \
	    -e "s|/usr/local/share/pyexec/www|$dir/www|g" \
	    -e "s|/usr/local/share/pyexec/apache/errors|$a/errors|g" \
	    "$top/deploy/apache/pyexec.conf" > "$a/site.conf"
	{
		echo "# Generated by deploy/stack.sh for port $port: a private Apache instance."
		echo "ServerRoot $a"
		echo "PidFile $dir/web.pid"
		echo "DefaultRuntimeDir $a"
		echo "Mutex file:$a default"
		echo "ErrorLog $dir/apache-error.log"
		echo "LogLevel warn"
		echo "ServerName 127.0.0.1"
		echo "ServerTokens Prod"
		echo "User $user"
		echo "Group $user"
		for mod in mpm_event authz_core alias mime rewrite asis fcgid; do
			echo "LoadModule ${mod}_module $m/mod_$mod.so"
		done
		echo "TypesConfig /etc/mime.types"
		echo "AddDefaultCharset off"
		echo "Timeout 120"
		echo "StartServers 1"
		echo "ServerLimit 4"
		echo "ThreadsPerChild 64"
		echo "MaxRequestWorkers 256"
		echo "MinSpareThreads 16"
		echo "MaxSpareThreads 128"
		echo "FcgidIPCDir $a/fcgid"
		echo "FcgidProcessTableFile $a/fcgid/shm"
		echo "Include $a/site.conf"
	} > "$a/httpd.conf"
	if [ "$fg" = 1 ]; then
		apache2 -f "$a/httpd.conf" -DFOREGROUND &
		echo $! > "$dir/web.pid"
	else
		apache2 -f "$a/httpd.conf" -k start
	fi
}

# lighttpd: MODE "bin-path" (lighttpd starts the workers) or "spawn".
start_lighttpd() {
	local fg=$1 mode=$2 l=$dir/lighttpd conf
	# lighttpd opens its log and binds the workers' sockets as $user.
	mkdir -p "$l/errors"
	chown "$user:$user" "$l"
	cp "$top"/deploy/lighttpd/errors/* "$l/errors/"
	install -m 0755 "$top/deploy/lighttpd/pyexec-error.sh" "$l/pyexec-error.sh"
	conf=pyexec.conf
	if [ "$mode" = spawn ]; then
		start_spawn_fcgi "$fg"
		conf=pyexec-spawn-fcgi.conf
	fi
	local sub=(-e "s|^server.port .*|server.port          = $port|"
	    -e "s|/usr/local/sbin/pyexec-fcgi|$dir/bin/pyexec-fcgi -c $dir/pyexec.conf|"
	    -e "s|/usr/local/share/pyexec/www|$dir/www|"
	    -e "s|/usr/local/share/pyexec/lighttpd|$l|"
	    -e "s|/run/lighttpd-pyexec.pid|$dir/web.pid|"
	    -e "s|/var/log/lighttpd/pyexec-error.log|$l/error.log|"
	    -e "s|/run/lighttpd/pyexec-fcgi.sock|$l/fcgi.sock|"
	    -e "s|/run/pyexec/fcgi.sock|$dir/fcgi.sock|")
	sed "${sub[@]}" "$top/deploy/lighttpd/pyexec-common.conf" > "$l/pyexec-common.conf"
	sed "${sub[@]}" "$top/deploy/lighttpd/$conf" > "$l/lighttpd.conf"
	chmod -R a+rX "$l"
	if [ "$fg" = 1 ]; then
		lighttpd -D -f "$l/lighttpd.conf" &
		echo $! > "$dir/web.pid"
	else
		lighttpd -f "$l/lighttpd.conf"
	fi
}

# mod_fcgid gives each process one request at a time and starts another only
# after a request has waited for a busy one (100 ms to 1 s): start a few at
# once, holding them with queued executions in one session that ends at once.
warm_fcgid() {
	local n=${PYEXEC_FCGID_WARM:-8} id i u=http://127.0.0.1:$port pids=""
	id=$(curl -s --max-time 10 "$u/execute" -H 'Content-Type: application/json' \
	    -d '{"code": ""}' | sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p')
	[ -n "$id" ] || return 0
	for ((i = 0; i < n; i++)); do
		curl -s -o /dev/null --max-time 20 "$u/execute" -H 'Content-Type: application/json' \
		    -d "{\"id\": \"$id\", \"code\": \"import time; time.sleep(0.2)\"}" &
		pids="$pids $!"
	done
	wait $pids
	curl -s -o /dev/null --max-time 10 -X DELETE "$u/sessions/$id" || true
}

do_start() {
	local fg=$1; shift
	local missing
	missing=$(server_missing "$server")
	if [ -n "$missing" ]; then
		log "PYEXEC_SERVER=$server needs:" $missing
		exit 3
	fi
	if [ -d "$dir" ]; then
		if [ -f "$dir/web.pid" ] && pid_alive "$(cat "$dir/web.pid")"; then
			log "a stack already runs on port $port (deploy/stack.sh stop $port)"
			exit 1
		fi
		do_stop
	fi
	for b in pyexec-sessiond pyexec-fcgi; do
		[ -x "$build/$b" ] || { log "$build/$b is missing: run make"; exit 1; }
	done
	mkdir -p "$dir/bin"
	chmod 0755 /run/pyexec-dev "$dir" "$dir/bin"
	echo "$server" > "$dir/server"
	# The workers run as $user, who may not reach the source tree: copy the programs.
	install -m 0755 "$build/pyexec-sessiond" "$build/pyexec-fcgi" "$dir/bin/"
	copy_www
	{
		cat "$top/deploy/pyexec.conf"
		echo "# --- development stack on port $port ---"
		echo "socket = $dir/sessiond.sock"
		echo "state_dir = $dir"
		echo "socket_group = $user"
		echo "cgroup = pyexec-$port"
		# Session uids of this stack's own: stacks side by side never share
		# one (a uid's RLIMIT_NPROC counts across the machine).
		echo "uid_base = $((900000 + port % 1000 * 4096))"
		local kv
		for kv in "$@"; do echo "$kv"; done
	} > "$dir/pyexec.conf"
	chmod 0644 "$dir/pyexec.conf"

	local out=/dev/stderr
	[ "$fg" = 1 ] || out=$dir/sessiond.log
	# The daemon (root): sessions, zygote, cgroups.  It gives the zygote (and so every session) a fixed environment
	# of its own; nothing of this shell's reaches user code.
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
	# The web server and its FastCGI workers (unprivileged).
	case "$server" in
	nginx) start_nginx "$fg" ;;
	apache) start_apache "$fg" ;;
	lighttpd) start_lighttpd "$fg" bin-path ;;
	lighttpd-spawn) start_lighttpd "$fg" spawn ;;
	esac || { log "$server failed to start"; dump_logs; do_stop; exit 1; }
	if ! wait_ready; then
		do_stop
		exit 1
	fi
	[ "$server" = apache ] && warm_fcgid
	log "serving on http://127.0.0.1:$port ($server)"
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
