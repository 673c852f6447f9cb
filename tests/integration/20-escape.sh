#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Issue 4, point 5: the sandbox escape suite. Each test attempts one attack
# through the real HTTP API and passes only when it failed in the expected
# way (the kernel's own error, checked exactly), and the service is still
# healthy afterwards.
#
# Probes print "NAME BLOCKED <Exception> errno=N" when the forbidden operation
# failed, "NAME ESCAPED ..." when it did not; the tests assert the whole line.
# Nothing here sends traffic off the machine: the one probe toward an outside
# address stops at socket creation, and would only do a UDP connect() (a route
# lookup, no packet) if that ever succeeded.
#
# Runs against the default configuration on $PYEXEC_URL (no /tmp: tmp_mb=0;
# 21-escape-tmp.sh covers /tmp). As root on the host it also reads the stack's
# pid files and log under /run/pyexec-dev/PORT to learn host pids.
. "$(dirname "$0")/../lib.sh"

# --- local helpers ---------------------------------------------------------

PORT=${PYEXEC_PORT:-}
if [ -z "$PORT" ]; then
	PORT=${PYEXEC_URL##*:}
	PORT=${PORT%%/*}
fi
STATE=/run/pyexec-dev/$PORT
# The stack's uid range (its pyexec.conf: the last line of a key wins).
conf_key() { awk -F ' *= *' -v k="$1" '$1 == k { v = $2 } END { print v }' "$STATE/pyexec.conf"; }
UID_BASE=$(conf_key uid_base)
UID_COUNT=$(conf_key uid_count)

L_SESSIONS=""
l_release() {
	local id
	for id in $L_SESSIONS; do
		curl -s -o /dev/null --max-time 5 -X DELETE "$PYEXEC_URL/sessions/$id" || true
	done
	L_SESSIONS=""
}
l_cleanup() {
	l_release
	t_cleanup
}
trap 'l_cleanup' EXIT

# run CODE [ID]: exec_code, and ID is set to the reply's session id.
run() {
	exec_code "$@"
	ID=$(jget '.id // empty')
	if [ -n "$ID" ]; then
		case " $L_SESSIONS " in *" $ID "*) ;; *) L_SESSIONS="$L_SESSIONS $ID" ;; esac
	fi
}

# Python helpers prepended to probes.
PRELUDE='import os, sys, errno, ctypes
def t(name, f):
    try:
        r = f()
    except OSError as e:
        print(name, "BLOCKED", type(e).__name__, "errno=%s" % e.errno)
    else:
        print(name, "ESCAPED", repr(r)[:60])
libc = ctypes.CDLL(None, use_errno=True)
def c(name, f):
    ctypes.set_errno(0)
    r = f()
    e = ctypes.get_errno()
    print(name, "BLOCKED errno=%d" % e if r == -1 else "ESCAPED r=%d" % r)
'

# probe CODE: runs PRELUDE + CODE in a new session; OUT is its stdout.
probe() {
	run "$PRELUDE$1" "${2:-}"
	OUT=$(jget '.stdout // empty')
	if [ "$STATUS" != 200 ] || [ "$(jget 'has("stderr") or has("error")')" = true ]; then
		diag "probe reply: $STATUS $BODY"
	fi
}

# line NAME: the line of OUT that begins with "NAME ".
line() { printf '%s\n' "$OUT" | grep -F -- "$1 " | grep -m1 -E "^$(printf '%s' "$1" | sed 's/[][\.*^$/()+?{}|]/\\&/g') " || true; }

# expect NAME WANT_REST: the probe line NAME is exactly "NAME WANT_REST".
expect() { assert_eq "$1 -> $2" "$(line "$1")" "$1 $2"; }
# Shorter: all lines of one probe with the same expected outcome.
expect_all() {
	local want=$1 n; shift
	for n in "$@"; do assert_eq "$n -> $want" "$(line "$n")" "$n $want"; done
}

# assert_healthy NAME
assert_healthy() {
	req GET /health
	assert_eq "$1: GET /health is 200 healthy" "$STATUS $BODY" '200 {"status": "healthy"}'
	run 'print(6 * 7)'
	assert_eq "$1: a new session runs code" "$STATUS $(jget .stdout)" "200 42"
}

# host_pid SESSION_UID: the host pid of the session process of this stack
# running as that uid ("" if it cannot be found).
host_pid() {
	local uid=$1 pid
	for pid in $(ps -eo pid=,uid= | awk -v u="$uid" '$2 == u { print $1 }'); do
		grep -q "pyexec-$PORT/" "/proc/$pid/cgroup" 2>/dev/null || continue
		# the session's pid 1 is the one whose parent is not in the session.
		if ! grep -q "pyexec-$PORT/" "/proc/$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status")/cgroup" 2>/dev/null; then
			echo "$pid"
			return
		fi
	done
}

# --- reading host files --------------------------------------------------------

probe "t('passwd', lambda: open('/etc/passwd').read())
t('shadow', lambda: open('/etc/shadow', 'rb').read())
t('hosts', lambda: open('/etc/hosts').read())
t('dotdot passwd', lambda: open('/sandbox/../../etc/passwd').read())
t('proc1 environ', lambda: open('/proc/1/environ', 'rb').read())
t('self environ', lambda: open('/proc/self/environ', 'rb').read())
t('self status', lambda: open('/proc/self/status').read())
t('self maps', lambda: open('/proc/self/maps').read())
t('self root passwd', lambda: open('/proc/self/root/etc/passwd').read())
t('sys', lambda: os.listdir('/sys'))
t('daemon socket', lambda: os.stat('$STATE/sessiond.sock'))
t('daemon config', lambda: open('$STATE/pyexec.conf').read())
t('daemon log', lambda: open('$STATE/sessiond.log').read())
t('installed config', lambda: open('/etc/pyexec/pyexec.conf').read())
t('run', lambda: os.listdir('/run'))
t('home', lambda: os.listdir('/home'))
t('root', lambda: os.listdir('/root'))
t('var', lambda: os.listdir('/var'))
t('boot', lambda: os.listdir('/boot'))
t('source tree', lambda: os.listdir('$PYEXEC_TOP'))
print('etc', sorted(os.listdir('/etc')))
print('stdlib', open('/usr/lib/python3.11/os.py').read(1) != '')"
expect_all "BLOCKED FileNotFoundError errno=2" passwd shadow hosts "dotdot passwd" "proc1 environ" \
    "self environ" "self status" "self maps" "self root passwd" sys "daemon socket" "daemon config" \
    "daemon log" "installed config" run home root var boot "source tree"
assert_eq "/etc holds only the BLAS alternatives link" "$(line etc)" "etc ['alternatives']"
assert_eq "the standard library is readable (the probes are not failing for another reason)" "$(line stdlib)" "stdlib True"

# --- writing anywhere ------------------------------------------------------------

run "open('x', 'w')"
assert_match "open('x', 'w'): stderr ends in PermissionError [Errno 13]" "$(jget .stderr)" "PermissionError: \[Errno 13\] Permission denied: 'x'\$"
run "import os; os.remove('file.txt')"
assert_eq "the statement's os.remove('file.txt'), byte for byte" "$BODY" "{\"id\": \"$ID\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\nPermissionError: [Errno 13] Permission denied: 'file.txt'\\n\"}"

probe "import io, posix
t('w sandbox', lambda: open('/sandbox/x', 'w'))
t('w cwd abs', lambda: open(os.getcwd() + '/y', 'wb'))
t('w stdlib new', lambda: open('/usr/lib/python3.11/x', 'w'))
t('a stdlib os.py', lambda: open('/usr/lib/python3.11/os.py', 'a'))
t('r+ stdlib os.py', lambda: open('/usr/lib/python3.11/os.py', 'r+'))
t('x exclusive', lambda: open('/sandbox/z', 'x'))
t('io.FileIO', lambda: io.FileIO('x', 'w'))
t('posix.open O_CREAT', lambda: posix.open('x', os.O_WRONLY | os.O_CREAT))
t('open O_RDWR', lambda: os.open('/usr/lib/python3.11/os.py', os.O_RDWR))
t('open O_TRUNC', lambda: os.open('/usr/lib/python3.11/os.py', os.O_RDONLY | os.O_TRUNC))
t('w dev', lambda: open('/dev/x', 'w'))
t('w etc', lambda: open('/etc/x', 'w'))
t('remove', lambda: os.remove('/usr/lib/python3.11/os.py'))
t('unlink', lambda: os.unlink('/etc/alternatives/libblas.so.3-x86_64-linux-gnu'))
t('mkdir', lambda: os.mkdir('d'))
t('mkdir dev', lambda: os.mkdir('/dev/shm'))
t('rmdir', lambda: os.rmdir('/sandbox'))
t('rename', lambda: os.rename('/usr/lib/python3.11/os.py', '/usr/lib/python3.11/os2.py'))
t('chmod', lambda: os.chmod('/sandbox', 0o777))
t('chown', lambda: os.chown('/sandbox', 0, 0))
t('symlink', lambda: os.symlink('/usr', 'l'))
t('link', lambda: os.link('/usr/lib/python3.11/os.py', 'l'))
t('mkfifo', lambda: os.mkfifo('f'))
t('mknod', lambda: os.mknod('n'))
t('truncate', lambda: os.truncate('/usr/lib/python3.11/os.py', 0))
t('utime', lambda: os.utime('/sandbox'))
t('setxattr', lambda: os.setxattr('/sandbox', 'user.x', b'1'))"
expect_all "BLOCKED PermissionError errno=13" "w sandbox" "w cwd abs" "w stdlib new" "a stdlib os.py" \
    "r+ stdlib os.py" "x exclusive" io.FileIO "posix.open O_CREAT" "open O_RDWR" "open O_TRUNC" "w dev" "w etc" \
    remove unlink mkdir "mkdir dev" rmdir rename chmod chown symlink link mkfifo mknod truncate utime setxattr

# --- network -----------------------------------------------------------------

run "import socket; socket.socket()"
assert_match "socket.socket(): stderr ends in PermissionError [Errno 13]" "$(jget .stderr)" 'PermissionError: \[Errno 13\] Permission denied$'

probe "import socket, _socket
t('socket', lambda: socket.socket())
t('_socket', lambda: _socket.socket())
t('inet udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
t('inet6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
t('inet raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
t('unix', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
t('unix seqpacket', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
t('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
t('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
t('own port', lambda: socket.create_connection(('127.0.0.1', $PORT), timeout=2))
t('loopback ssh', lambda: socket.create_connection(('127.0.0.1', 22), timeout=2))
t('loopback v6', lambda: socket.create_connection(('::1', $PORT), timeout=2))
def route():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Only reached if socket creation was allowed: connect() on UDP
        # is a route lookup, it sends nothing.
        s.connect(('192.0.2.1', 9))
        return s.getsockname()
    finally:
        s.close()
t('udp route outside', route)
c('libc socket', lambda: libc.socket(2, 1, 0))
c('raw syscall socket', lambda: libc.syscall(41, 2, 1, 0))
c('raw syscall socket unix', lambda: libc.syscall(41, 1, 1, 0))
import urllib.request
try:
    urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=3)
    print('urlopen ESCAPED')
except Exception as e:
    r = getattr(e, 'reason', None)
    print('urlopen BLOCKED', type(e).__name__, 'errno=%s' % getattr(r, 'errno', None))"
expect_all "BLOCKED PermissionError errno=13" socket _socket "inet udp" inet6 "inet raw" unix "unix seqpacket" \
    netlink packet "own port" "loopback ssh" "loopback v6" "udp route outside"
expect_all "BLOCKED errno=13" "libc socket" "raw syscall socket" "raw syscall socket unix"
assert_eq "urllib.request.urlopen of the service itself fails (URLError, EACCES)" "$(line urlopen)" "urlopen BLOCKED URLError errno=13"

# --- ctypes straight into libc ---------------------------------------------------

probe "c('open O_WRONLY|O_CREAT', lambda: libc.open(b'/sandbox/x', os.O_WRONLY | os.O_CREAT, 0o644))
c('openat O_RDWR', lambda: libc.openat(-100, b'/usr/lib/python3.11/os.py', os.O_RDWR))
c('creat', lambda: libc.creat(b'/sandbox/x', 0o644))
c('socket', lambda: libc.socket(1, 1, 0))
c('execve', lambda: libc.execve(b'/usr/bin/python3', None, None))
c('execve sh', lambda: libc.execve(b'/bin/sh', None, None))
c('ptrace attach 1', lambda: libc.ptrace(16, 1, None, None))
c('ptrace traceme', lambda: libc.ptrace(0, 0, None, None))
c('process_vm_readv', lambda: libc.process_vm_readv(1, None, 0, None, 0, 0))
c('mount', lambda: libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None))
c('umount', lambda: libc.umount2(b'/usr', 2))
c('chroot', lambda: libc.chroot(b'/'))
c('unshare user', lambda: libc.unshare(0x10000000))
c('setns', lambda: libc.setns(0, 0))
c('setuid 0', lambda: libc.setuid(0))
c('setgid 0', lambda: libc.setgid(0))
c('setresuid 0', lambda: libc.setresuid(0, 0, 0))
c('capset', lambda: libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)(~0 & 0xffffffff, ~0 & 0xffffffff, 0, 0, 0, 0)))
c('bpf', lambda: libc.syscall(321, 0, None, 0))
c('perf_event_open', lambda: libc.syscall(298, None, 0, -1, -1, 0))
c('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0, 0))
c('userfaultfd', lambda: libc.syscall(323, 0))
c('init_module', lambda: libc.syscall(175, None, 0, b''))
c('kexec_load', lambda: libc.syscall(246, 0, 0, None, 0))
c('shmget', lambda: libc.shmget(0, 4096, 0o1666))
c('kill 2', lambda: libc.kill(2, 9))
c('kill -1', lambda: libc.kill(-1, 9))
c('io_uring_setup', lambda: libc.syscall(425, 8, (ctypes.c_char * 120)()))
c('clone3', lambda: libc.syscall(435, None, 0))
r = libc.kill(1, 9)
print('kill 1 survived r=%d' % r)"
expect_all "BLOCKED errno=13" "open O_WRONLY|O_CREAT" "openat O_RDWR" creat socket execve "execve sh"
expect_all "BLOCKED errno=1" "ptrace attach 1" "ptrace traceme" process_vm_readv mount umount chroot \
    "unshare user" setns "setuid 0" "setgid 0" "setresuid 0" capset bpf perf_event_open keyctl userfaultfd \
    init_module kexec_load shmget
expect_all "BLOCKED errno=3" "kill 2" "kill -1"
expect_all "BLOCKED errno=38" io_uring_setup clone3
# pid 1 is the session itself (pid namespace): the kernel ignores SIGKILL to
# a namespace's init from inside it, so this is harmless, and nothing else is
# reachable.
assert_eq "kill(1, SIGKILL) reaches only the session itself, which survives" "$(line 'kill 1')" "kill 1 survived r=0"

# Other system-call ABIs: x32 (and i386 through int 0x80) must be refused
# before anything else; the filter kills the process. (This kernel may lack
# both ABIs: then the call fails without reaching the filter, also not an escape.)
run "$PRELUDE
r = libc.syscall(0x40000000 | 41, 2, 1, 0)
print('x32 socket', 'ESCAPED' if r >= 0 else 'BLOCKED errno=%d' % ctypes.get_errno())"
assert_match "x32 socket(): the process is killed (or the call fails)" "$(jget '.error // .stdout')" '^(session terminated|x32 socket BLOCKED errno=[0-9]+)'
diag "x32 probe: $BODY"
run "import ctypes, mmap
# push rbx; mov eax, 359 (i386 socket); mov ebx, 2; mov ecx, 1; xor edx, edx; int 0x80; pop rbx; ret
code = bytes([0x53, 0xb8, 0x67, 0x01, 0, 0, 0xbb, 2, 0, 0, 0, 0xb9, 1, 0, 0, 0, 0x31, 0xd2, 0xcd, 0x80, 0x5b, 0xc3])
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
r = f()
print('i386 socket', 'ESCAPED r=%d' % r if r >= 0 else 'BLOCKED errno=%d' % -r)"
assert_match "i386 socket() through int 0x80: the process is killed (or the call fails)" "$(jget '.error // .stdout')" '^(session terminated|i386 socket BLOCKED errno=[0-9]+)'
diag "i386 probe: $BODY"

# --- processes ---------------------------------------------------------------------

run "import subprocess; subprocess.run(['id'])"
assert_match "subprocess.run(['id']): PermissionError [Errno 13]" "$(jget .stderr)" "PermissionError: \[Errno 13\] Permission denied: 'id'\$"
run "import os; print('status', os.waitstatus_to_exitcode(os.system('id')))"
assert_eq "os.system('id'): the shell cannot start (127), nothing ran" "$BODY" "{\"id\": \"$ID\", \"stdout\": \"status 127\\n\"}"
run "import os; os.execv('/usr/bin/python3', ['python3', '-c', 'print(1)'])"
assert_match "os.execv: PermissionError [Errno 13]" "$(jget .stderr)" 'PermissionError: \[Errno 13\] Permission denied$'
probe "t('posix_spawn', lambda: os.posix_spawn('/usr/bin/python3', ['python3'], {}))
t('execve', lambda: os.execve('/usr/bin/python3', ['python3'], {}))"
expect_all "BLOCKED PermissionError errno=13" posix_spawn execve

# os.fork works, and the child is as confined as its parent.
probe "import socket
me = os.getuid()
pid = os.fork()
if pid == 0:
    out = []
    for name, f in [('write', lambda: open('x', 'w')), ('socket', lambda: socket.socket()),
                    ('exec', lambda: os.execv('/usr/bin/python3', ['python3'])),
                    ('setuid', lambda: os.setuid(0))]:
        try:
            f()
            out.append(name + ' ESCAPED')
        except OSError as e:
            out.append('%s errno=%d' % (name, e.errno))
    os.write(1, ('child ppid=%d same_uid=%s %s\n' % (os.getppid(), os.getuid() == me, ' '.join(out))).encode())
    os._exit(7)
_, st = os.waitpid(pid, 0)
print('parent child_exit=%d' % os.waitstatus_to_exitcode(st))"
assert_eq "os.fork: the child runs, as confined as the parent" "$(line child)" "child ppid=1 same_uid=True write errno=13 socket errno=13 exec errno=13 setuid errno=1"
assert_eq "os.fork: the parent reaps it" "$(line parent)" "parent child_exit=7"
# A child that is not _exit-ed ends with the code, as under `python3 < file`:
# it must never take over the session's channel to the daemon.
run $'import os\nx = 5\npid = os.fork()\nif pid:\n    os.waitpid(pid, 0)\nprint("child" if pid == 0 else "parent")'
fk=$ID
assert_eq "os.fork, child falls off the end: both outputs, child first" "$BODY" "{\"id\": \"$fk\", \"stdout\": \"child\\nparent\\n\"}"
run $'import os\nprint(x, os.getpid())' "$fk"
assert_eq "os.fork, child falls off the end: the session's own process (pid 1) serves the next execution" "$BODY" "{\"id\": \"$fk\", \"stdout\": \"5 1\\n\"}"
l_release

# --- other sessions: memory, signals, abstract sockets -------------------------------

run "secret = 'A-secret-1234'
import os
print(os.getpid(), os.getuid())"
A=$ID
read -r a_pid a_uid <<<"$(jget .stdout)"
assert_eq "session A is pid 1 of its own PID namespace" "${a_pid:-}" 1
A_HOST=$(host_pid "${a_uid:-x}")
run "import os; print(os.getpid(), os.getuid())"
B=$ID
read -r b_pid b_uid <<<"$(jget .stdout)"
assert_eq "session B is pid 1 of its own PID namespace" "${b_pid:-}" 1
assert_match "session A's uid is in the session range" "${a_uid:-}" '^[0-9]+$'
check "two concurrent sessions have different uids (${a_uid:-?}, ${b_uid:-?})" test "${a_uid:-x}" != "${b_uid:-y}"
check "A's uid in [$UID_BASE, $((UID_BASE + UID_COUNT)))" test "${a_uid:-0}" -ge "$UID_BASE" -a "${a_uid:-0}" -lt $((UID_BASE + UID_COUNT))
check "B's uid in [$UID_BASE, $((UID_BASE + UID_COUNT)))" test "${b_uid:-0}" -ge "$UID_BASE" -a "${b_uid:-0}" -lt $((UID_BASE + UID_COUNT))

if [ -n "$A_HOST" ]; then
	DAEMON_PID=$(cat "$STATE/sessiond.pid" 2>/dev/null || echo 999999)
	NGINX_PID=$(cat "$STATE/web.pid" 2>/dev/null || cat "$STATE/nginx.pid" 2>/dev/null || echo 999999)
	probe "import signal
t('read A mem', lambda: open('/proc/$A_HOST/mem', 'rb').read(1))
t('read A maps', lambda: open('/proc/$A_HOST/maps').read())
t('read A environ', lambda: open('/proc/$A_HOST/environ', 'rb').read())
c('process_vm_readv A', lambda: libc.process_vm_readv($A_HOST, None, 0, None, 0, 0))
c('ptrace attach A', lambda: libc.ptrace(16, $A_HOST, None, None))
t('kill A', lambda: os.kill($A_HOST, signal.SIGKILL))
t('kill A SIGINT', lambda: os.kill($A_HOST, signal.SIGINT))
t('kill daemon', lambda: os.kill($DAEMON_PID, signal.SIGKILL))
t('kill web server', lambda: os.kill($NGINX_PID, signal.SIGTERM))
t('kill group of A', lambda: os.killpg($A_HOST, signal.SIGKILL))
t('kill -1', lambda: os.kill(-1, signal.SIGKILL))" "$B"
	expect_all "BLOCKED FileNotFoundError errno=2" "read A mem" "read A maps" "read A environ"
	expect_all "BLOCKED errno=1" "process_vm_readv A" "ptrace attach A"
	expect_all "BLOCKED ProcessLookupError errno=3" "kill A" "kill A SIGINT" "kill daemon" "kill web server" "kill group of A" "kill -1"
	check "session A's host process is still alive" kill -0 "$A_HOST"
else
	skip "host pid of session A not found (stack state not under $STATE): /proc/<pid>/mem and signal probes"
fi
probe "t('proc mem of 1', lambda: open('/proc/1/mem', 'rb').read(1))
t('proc dir', lambda: os.listdir('/proc'))" "$B"
expect_all "BLOCKED FileNotFoundError errno=2" "proc mem of 1" "proc dir"
run "print(secret)" "$A"
assert_eq "session A untouched: its state and process live on" "$BODY" "{\"id\": \"$A\", \"stdout\": \"A-secret-1234\\n\"}"

# Standard input is /dev/null opened by each session for itself: status flags
# one session sets on it are not seen by another (a shared open file would
# carry them, and its locks, between sessions).
run "import fcntl, os
fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK | os.O_APPEND)
print(bool(fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK))" "$A"
assert_eq "session A sets O_NONBLOCK on its standard input" "$STATUS $(jget .stdout)" "200 True"
run "import fcntl, os; print(fcntl.fcntl(0, fcntl.F_GETFL) & (os.O_NONBLOCK | os.O_APPEND), os.read(0, 1))"
assert_eq "a new session's standard input has no flag A set, and reads as empty" "$STATUS $(jget .stdout)" "200 0 b''"

# Abstract Unix sockets: no new socket; a socketpair (allowed, asyncio needs
# it) can neither be named nor connected.
probe "import socket
t('A unix socket', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
a, b = socket.socketpair()
t('A bind abstract', lambda: a.bind(b'\\x00pyexec-escape-$$'))
t('A listen', lambda: a.listen(1))
c('A libc bind', lambda: libc.bind(a.fileno(), b'\\x01\\x00\\x00pyexec-escape-$$', 19))
a.sendall(b'ok'); print('socketpair works', b.recv(2) == b'ok')" "$A"
expect_all "BLOCKED PermissionError errno=13" "A unix socket" "A bind abstract" "A listen"
expect "A libc bind" "BLOCKED errno=13"
assert_eq "socketpair itself works (by design)" "$(line 'socketpair works')" "socketpair works True"
probe "import socket
a, b = socket.socketpair()
t('B connect abstract', lambda: a.connect(b'\\x00pyexec-escape-$$'))
t('B sendto abstract', lambda: b.sendto(b'x', b'\\x00pyexec-escape-$$'))
t('B unix dgram', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))" "$B"
expect_all "BLOCKED PermissionError errno=13" "B connect abstract" "B unix dgram"
assert_match "B sendto an abstract name fails" "$(line 'B sendto abstract')" '^B sendto abstract BLOCKED [A-Za-z]+Error errno=(13|106|56|95)$'
# A datagram socketpair with SO_PASSCRED gets an abstract name without bind()
# (the kernel's autobind): A names itself that way; B must still not reach it
# (each session has its own network namespace, and Landlock scopes abstract
# sockets).
probe "import socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
a.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
a.send(b'x')
b.recv(1)
n = a.getsockname()
print('autobind', n[:1] == b'\\x00' and len(n) > 1, n[1:].decode())" "$A"
aname=$(line autobind | awk '{ print $3 }')
assert_match "A's datagram socket got an autobound abstract name" "$(line autobind)" '^autobind True [0-9a-f]+$'
probe "import socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
t('B sendto A autobound', lambda: b.sendto(b'ESCAPED', b'\\x00${aname:-none}'))" "$B"
assert_match "B cannot send to A's autobound abstract name" "$(line 'B sendto A autobound')" '^B sendto A autobound BLOCKED [A-Za-z]+Error errno=(111|1|13)$'
probe "a.setblocking(False)
t('A received from B', lambda: a.recv(100))" "$A"
expect "A received from B" "BLOCKED BlockingIOError errno=11"
# Nor a host process's abstract socket.
hname="pyexec-escape-host-$$"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(b"\0" + sys.argv[1].encode())
s.settimeout(4)
print(open("/dev/null").read() + "listening", flush=True)
try:
    print("RECEIVED", s.recv(100))
except socket.timeout:
    print("NOTHING")
' "$hname" > "$T_TMP/host-abstract" 2>&1 &
hpid=$!
for i in $(seq 50); do grep -q listening "$T_TMP/host-abstract" 2>/dev/null && break; sleep 0.1; done
probe "import socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
t('sendto host abstract', lambda: b.sendto(b'ESCAPED', b'\\x00$hname'))"
wait "$hpid"
assert_match "a session cannot send to a host's abstract socket" "$(line 'sendto host abstract')" '^sendto host abstract BLOCKED [A-Za-z]+Error errno=(111|1|13)$'
assert_eq "the host's abstract socket received nothing" "$(tail -n 1 "$T_TMP/host-abstract")" "NOTHING"
l_release

# --- devices, /dev/shm, /proc/self/exe --------------------------------------------------

probe "print('dev', sorted(os.listdir('/dev')))
for p in ['/dev/mem', '/dev/kmem', '/dev/port', '/dev/kmsg', '/dev/tty', '/dev/console', '/dev/sda',
          '/dev/vda', '/dev/fuse', '/dev/net/tun', '/dev/random', '/dev/ptmx', '/dev/shm', '/dev/mqueue', '/dev/full']:
    t('open ' + p, lambda: open(p, 'rb'))
print('null', open('/dev/null', 'rb').read() == b'', 'zero', open('/dev/zero', 'rb').read(4) == bytes(4),
      'urandom', len(open('/dev/urandom', 'rb').read(16)) == 16)
t('mknod mem', lambda: os.mknod('/sandbox/mem', 0o20666, os.makedev(1, 1)))
t('shm create', lambda: open('/dev/shm/x', 'w'))
print('shm exists', os.path.exists('/dev/shm'))
from multiprocessing import shared_memory
t('SharedMemory', lambda: shared_memory.SharedMemory(name='pyexec-esc', create=True, size=4096))
t('self exe write', lambda: open('/proc/self/exe', 'wb'))
t('self exe read', lambda: open('/proc/self/exe', 'rb'))
t('argv0 write', lambda: open(sys.executable or '/usr/bin/python3', 'r+b'))"
assert_eq "/dev holds only null, urandom, zero" "$(line dev)" "dev ['null', 'urandom', 'zero']"
for p in /dev/mem /dev/kmem /dev/port /dev/kmsg /dev/tty /dev/console /dev/sda /dev/vda /dev/fuse /dev/net/tun \
    /dev/random /dev/ptmx /dev/shm /dev/mqueue /dev/full; do
	expect "open $p" "BLOCKED FileNotFoundError errno=2"
done
assert_eq "/dev/null, /dev/zero, /dev/urandom work" "$(line null)" "null True zero True urandom True"
expect_all "BLOCKED PermissionError errno=13" "mknod mem" "shm create" "SharedMemory" "self exe write"
assert_eq "/dev/shm is absent (no channel between sessions)" "$(line 'shm exists')" "shm exists False"
expect "self exe read" "BLOCKED FileNotFoundError errno=2"
assert_match "the interpreter binary cannot be opened for writing" "$(line 'argv0 write')" '^argv0 write BLOCKED (PermissionError errno=13|FileNotFoundError errno=2|IsADirectoryError errno=21)$'

# --- descriptors -----------------------------------------------------------------------

probe "import stat
fds = []
for fd in range(3, 4096):
    try:
        fds.append((fd, stat.S_ISSOCK(os.fstat(fd).st_mode)))
    except OSError:
        pass
print('inherited', len(fds), all(s for _, s in fds))
fs = []
try:
    for i in range(100000):
        fs.append(os.open('/dev/null', os.O_RDONLY))
    print('exhaust ESCAPED')
except OSError as e:
    print('exhaust BLOCKED errno=%d' % e.errno)
t('dup', lambda: os.dup(0))
t('dup2 high', lambda: os.dup2(0, 100000))
for f in fs:
    os.close(f)
print('after', open('/dev/null').read() == '')"
assert_eq "no descriptor inherited beyond the session's own channel" "$(line inherited)" "inherited 1 True"
assert_eq "descriptor exhaustion stops at EMFILE" "$(line exhaust)" "exhaust BLOCKED errno=24"
expect "dup" "BLOCKED OSError errno=24"
expect "dup2 high" "BLOCKED OSError errno=9"
assert_eq "descriptors free again after closing" "$(line after)" "after True"
EX=$ID
run "print('fd session alive')" "$EX"
assert_eq "the exhausting session lives on" "$(jget .stdout)" "fd session alive"
assert_healthy "after descriptor exhaustion"
l_release

# --- environment, capabilities, identity --------------------------------------------

DAEMON_PID=$(cat "$STATE/sessiond.pid" 2>/dev/null || true)
probe "import json
print('env', json.dumps(dict(os.environ), sort_keys=True))
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
r = libc.capget(hdr, data)
print('capget', r, list(data))
print('bounding', [n for n in range(64) if libc.prctl(23, n, 0, 0, 0) == 1])
print('ambient', [n for n in range(64) if libc.prctl(47, 1, n, 0, 0) == 1])
print('no_new_privs', libc.prctl(39, 0, 0, 0, 0), 'seccomp', libc.prctl(21, 0, 0, 0, 0))
t('setuid', lambda: os.setuid(0))
t('setgid', lambda: os.setgid(0))
t('setgroups', lambda: os.setgroups([0]))
t('seteuid', lambda: os.seteuid(0))
u = os.getuid()
print('ids', u == os.geteuid() == os.getgid() == os.getegid(), u != 0, os.getgroups())
print('resuid', os.getresuid() == (u, u, u), os.getresgid() == (u, u, u))"
assert_eq "capget: no capability effective, permitted or inheritable" "$(line capget)" "capget 0 [0, 0, 0, 0, 0, 0]"
assert_eq "the bounding set is empty" "$(line bounding)" "bounding []"
assert_eq "the ambient set is empty" "$(line ambient)" "ambient []"
assert_eq "no_new_privs is set, seccomp is in filter mode" "$(line no_new_privs)" "no_new_privs 1 seccomp 2"
expect_all "BLOCKED PermissionError errno=1" setuid setgid setgroups seteuid
assert_eq "uid = euid = gid = egid, not 0, no supplementary groups" "$(line ids)" "ids True True []"
assert_eq "real, effective and saved ids all the session's" "$(line resuid)" "resuid True True"
env_json=$(line env | sed 's/^env //')
if [ -n "$DAEMON_PID" ] && [ -r "/proc/$DAEMON_PID/environ" ]; then
	leaked=$(tr '\0' '\n' < "/proc/$DAEMON_PID/environ" | while IFS= read -r kv; do
		k=${kv%%=*} v=${kv#*=}
		# Deliberately passed on: the locale and path, and OpenBLAS's CPU
		# tuning (sessiond.c copies OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE).
		case $k in PATH|LANG|LC_ALL|HOME|OPENBLAS_CORETYPE|OPENBLAS_L2_SIZE) continue ;; esac
		printf '%s' "$env_json" | jq -e --arg k "$k" --arg v "$v" 'has($k) and .[$k] == $v' >/dev/null && echo "$k"
	done)
	assert_eq "the daemon's environment is not passed on (leaked keys)" "$leaked" ""
else
	skip "the daemon's environment is not readable here"
fi
assert_eq "no environment value mentions the daemon's state or sockets" \
    "$(printf '%s' "$env_json" | jq -r '[.[] | select(test("pyexec|/run|sock"))] | length')" 0

# --- random state -------------------------------------------------------------------

rand_code='import random, numpy
print(random.random(), numpy.random.random(), random.getrandbits(64))'
vals=""
for i in 1 2 3 4; do
	run "$rand_code"
	vals="$vals$(jget .stdout)"$'\n'
done
assert_eq "4 new sessions: 4 different random.random() values" "$(printf '%s' "$vals" | awk 'NF { print $1 }' | sort -u | wc -l)" 4
assert_eq "4 new sessions: 4 different numpy.random.random() values" "$(printf '%s' "$vals" | awk 'NF { print $2 }' | sort -u | wc -l)" 4
assert_eq "4 new sessions: 4 different getrandbits(64) values" "$(printf '%s' "$vals" | awk 'NF { print $3 }' | sort -u | wc -l)" 4
l_release

# --- a hostile session speaking to the daemon on its own channel ------------------------

run "import os, stat
n = 0
for fd in range(3, 64):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            for i in range(64):
                try:
                    os.write(fd, bytes([i]) * 4096)
                    os.write(fd, b'\\xff' * 65536)
                except OSError:
                    pass
            n += 1
    except OSError:
        pass
print('wrote garbage on', n)"
diag "garbage on the control channel: $STATUS $BODY"
assert_match "garbage on the control channel: a 200 reply (the session's own problem)" "$STATUS" '^200$'
assert_healthy "after garbage on the control channel"
l_release

# --- the end -----------------------------------------------------------------------------

assert_healthy "after the whole escape suite"
t_done
