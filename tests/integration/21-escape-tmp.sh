#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Issue 4, points 4 and 5: the optional private /tmp (tmp_mb). On a stack of
# its own with tmp_mb=8: /tmp is writable and works; filling it (space or
# inodes) stops at ENOSPC/EFBIG without harm to the daemon; it is charged to
# the session's memory; sessions do not see each other's /tmp; nothing planted
# there can be executed; and writes anywhere else still fail.
. "$(dirname "$0")/../lib.sh"

PORT=18721
STATE=/run/pyexec-dev/$PORT

if ! t_stack_start "$PORT" tmp_mb=8; then
	not_ok "a stack with tmp_mb=8 starts on port $PORT"
	sed 's/^/# /' "$T_TMP/stack-$PORT.log"
	t_done
	exit 1
fi
ok "a stack with tmp_mb=8 starts on port $PORT"
SAVED_URL=$PYEXEC_URL
PYEXEC_URL=http://127.0.0.1:$PORT

run() {
	exec_code "$@"
	ID=$(jget '.id // empty')
}

PRELUDE='import os, sys, errno
def t(name, f):
    try:
        r = f()
    except OSError as e:
        print(name, "BLOCKED", type(e).__name__, "errno=%s" % e.errno)
    else:
        print(name, "ESCAPED", repr(r)[:60])
'
probe() {
	run "$PRELUDE$1" "${2:-}"
	OUT=$(jget '.stdout // empty')
	if [ "$STATUS" != 200 ] || [ "$(jget 'has("stderr") or has("error")')" = true ]; then
		diag "probe reply: $STATUS $BODY"
	fi
}
line() { printf '%s\n' "$OUT" | grep -F -- "$1 " | grep -m1 -E "^$(printf '%s' "$1" | sed 's/[][\.*^$/()+?{}|]/\\&/g') " || true; }
expect() { assert_eq "$1 -> $2" "$(line "$1")" "$1 $2"; }

assert_healthy() {
	req GET /health
	assert_eq "$1: GET /health is 200 healthy" "$STATUS $BODY" '200 {"status": "healthy"}'
	run 'print(6 * 7)'
	assert_eq "$1: a new session runs code" "$STATUS $(jget .stdout)" "200 42"
}

# The memory cgroup usage (bytes) of the session process running as UID.
cg_usage_of_uid() {
	local uid=$1 pid path
	for pid in $(ps -eo pid=,uid= | awk -v u="$uid" '$2 == u { print $1 }'); do
		path=$(sed -n 's/^[0-9]*:memory:\(.*pyexec-'"$PORT"'\/.*\)$/\1/p' "/proc/$pid/cgroup" 2>/dev/null)
		[ -n "$path" ] || continue
		cat "/sys/fs/cgroup/memory$path/memory.usage_in_bytes" 2>/dev/null && return
	done
}

# --- /tmp works ------------------------------------------------------------------

probe "import shutil
print('tmp listing', os.listdir('/tmp'))
st = os.statvfs('/tmp')
print('tmp size', st.f_blocks * st.f_frsize)
with open('/tmp/a.txt', 'w') as f:
    f.write('hello')
print('tmp read', open('/tmp/a.txt').read())
os.mkdir('/tmp/d')
os.rename('/tmp/a.txt', '/tmp/d/b.txt')
os.symlink('/tmp/d/b.txt', '/tmp/l')
os.chmod('/tmp/d/b.txt', 0o600)
print('tmp ops', sorted(os.listdir('/tmp')), os.listdir('/tmp/d'), open('/tmp/l').read())
os.remove('/tmp/l'); shutil.rmtree('/tmp/d')
print('tmp clean', os.listdir('/tmp'))
print('tmp cwd', os.getcwd())"
A=$ID
assert_eq "/tmp starts empty" "$(line 'tmp listing')" "tmp listing []"
assert_eq "/tmp is 8 MiB" "$(line 'tmp size')" "tmp size 8388608"
assert_eq "a file written in /tmp reads back" "$(line 'tmp read')" "tmp read hello"
assert_eq "mkdir, rename, symlink, chmod work in /tmp" "$(line 'tmp ops')" "tmp ops ['d', 'l'] ['b.txt'] hello"
assert_eq "remove and rmtree work in /tmp" "$(line 'tmp clean')" "tmp clean []"
assert_eq "the working directory is still /sandbox" "$(line 'tmp cwd')" "tmp cwd /sandbox"

# --- sessions do not see each other's /tmp ---------------------------------------------

run "open('/tmp/secret-A', 'w').write('A-only'); print('written')" "$A"
assert_eq "session A writes /tmp/secret-A" "$(jget .stdout)" "written"
run "print(open('/tmp/secret-A').read())" "$A"
assert_eq "A's /tmp file persists across its executions" "$(jget .stdout)" "A-only"
probe "print('B listing', os.listdir('/tmp'))
t('B open', lambda: open('/tmp/secret-A').read())"
B=$ID
assert_eq "session B's /tmp is empty" "$(line 'B listing')" "B listing []"
expect "B open" "BLOCKED FileNotFoundError errno=2"
run "open('/tmp/secret-B', 'w').write('B-only'); print(sorted(os.listdir('/tmp')))" "$B"
run "import os; print(sorted(os.listdir('/tmp')))" "$A"
assert_eq "B's file does not appear in A's /tmp" "$(jget .stdout)" "['secret-A']"
req DELETE "/sessions/$A"
probe "print('C listing', os.listdir('/tmp'))"
C=$ID
assert_eq "a new session after A ended starts with an empty /tmp" "$(line 'C listing')" "C listing []"

# --- /tmp is charged to the session's memory ---------------------------------------------

run "import os; print(os.getuid())" "$C"
c_uid=$(jget .stdout)
before=$(cg_usage_of_uid "$c_uid")
run "with open('/tmp/fill', 'wb') as f:
    f.write(b'x' * (7 * 1024 * 1024))
print('filled')" "$C"
after=$(cg_usage_of_uid "$c_uid")
if [ -n "$before" ] && [ -n "$after" ]; then
	diag "session memory cgroup usage: before $before, after writing 7 MiB to /tmp $after"
	check "7 MiB written to /tmp raise the session's memory usage by at least 6 MiB" \
	    test $((after - before)) -ge $((6 * 1024 * 1024))
else
	skip "the session's memory cgroup was not found (uid ${c_uid:-?})"
fi
req DELETE "/sessions/$C"

# --- filling /tmp ------------------------------------------------------------------------

probe "n = 0
try:
    with open('/tmp/big', 'wb') as f:
        while True:
            f.write(b'x' * 65536)
            f.flush()
            n += 65536
    print('one file ESCAPED')
except OSError as e:
    print('one file BLOCKED errno=%d' % e.errno, n <= 8 * 1024 * 1024)"
F=$ID
assert_match "one growing file stops at EFBIG or ENOSPC, within 8 MiB" "$(line 'one file')" '^one file BLOCKED errno=(27|28) True$'
probe "os.remove('/tmp/big')
k = 0
try:
    for i in range(1000):
        with open('/tmp/f%d' % i, 'wb') as f:
            f.write(b'x' * (1024 * 1024))
        k += 1
    print('many files ESCAPED')
except OSError as e:
    print('many files BLOCKED errno=%d' % e.errno, k < 9)" "$F"
assert_eq "1 MiB files stop at ENOSPC before 9 of them" "$(line 'many files')" "many files BLOCKED errno=28 True"
probe "import shutil
for f in os.listdir('/tmp'):
    os.remove('/tmp/' + f)
k = 0
try:
    for i in range(100000):
        open('/tmp/e%d' % i, 'w').close()
        k += 1
    print('inodes ESCAPED')
except OSError as e:
    print('inodes BLOCKED errno=%d' % e.errno, k < 100000)
for f in os.listdir('/tmp'):
    os.remove('/tmp/' + f)
print('refill', open('/tmp/again', 'w').write('ok'))" "$F"
assert_eq "empty files stop at ENOSPC (inodes bounded)" "$(line 'inodes')" "inodes BLOCKED errno=28 True"
assert_eq "after freeing, /tmp is writable again" "$(line refill)" "refill 2"
run "print('alive')" "$F"
assert_eq "the session that filled /tmp lives on" "$(jget .stdout)" "alive"
check "the daemon is still running" kill -0 "$(cat "$STATE/sessiond.pid" 2>/dev/null || echo 0)"
assert_healthy "after filling /tmp"
req DELETE "/sessions/$F"

# --- nothing planted in /tmp runs ------------------------------------------------------

probe "import mmap, stat
open('/tmp/x.sh', 'w').write('#!/bin/sh\\nid\\n')
os.chmod('/tmp/x.sh', 0o755)
t('exec planted', lambda: os.execv('/tmp/x.sh', ['x.sh']))
open('/tmp/x.so', 'wb').write(b'\\0' * 8192)
fd = os.open('/tmp/x.so', os.O_RDONLY)
t('mmap exec planted', lambda: mmap.mmap(fd, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC))
os.chmod('/tmp/x.sh', 0o4755)
print('suid bit', bool(os.stat('/tmp/x.sh').st_mode & stat.S_ISUID), 'nosuid', bool(os.statvfs('/tmp').f_flag & os.ST_NOSUID))
t('mknod device', lambda: os.mknod('/tmp/mem', stat.S_IFCHR | 0o666, os.makedev(1, 1)))
t('symlink out then write', lambda: (os.symlink('/usr/lib/python3.11/os.py', '/tmp/os-link'), open('/tmp/os-link', 'a')))
t('hard link in', lambda: os.link('/usr/lib/python3.11/os.py', '/tmp/os.py'))
t('rename in', lambda: os.rename('/usr/lib/python3.11/os.py', '/tmp/os.py'))"
expect "exec planted" "BLOCKED PermissionError errno=13"
expect "mmap exec planted" "BLOCKED PermissionError errno=1"
assert_match "a set-uid bit in /tmp is void (nosuid mount)" "$(line 'suid bit')" '^suid bit (True|False) nosuid True$'
assert_match "device nodes cannot be made in /tmp" "$(line 'mknod device')" '^mknod device BLOCKED PermissionError errno=(1|13)$'
assert_match "a symlink in /tmp does not open the stdlib for writing" "$(line 'symlink out then write')" '^symlink out then write BLOCKED [A-Za-z]+Error errno=(13|30)$'
assert_match "hard-linking a stdlib file into /tmp fails" "$(line 'hard link in')" '^hard link in BLOCKED [A-Za-z]+Error errno=(1|13|18|30)$'
assert_match "moving a stdlib file into /tmp fails" "$(line 'rename in')" '^rename in BLOCKED [A-Za-z]+Error errno=(13|18|30)$'

# --- writes outside /tmp still fail ---------------------------------------------------------

# With /tmp on, the seccomp filter lets file changes through to the kernel,
# and the read-only mounts refuse them: EROFS (30) or EACCES (13).
probe "t('w cwd', lambda: open('x', 'w'))
t('w sandbox', lambda: open('/sandbox/x', 'w'))
t('w stdlib', lambda: open('/usr/lib/python3.11/x', 'w'))
t('a os.py', lambda: open('/usr/lib/python3.11/os.py', 'a'))
t('w etc', lambda: open('/etc/x', 'w'))
t('w dev', lambda: open('/dev/x', 'w'))
t('w root', lambda: open('/x', 'w'))
t('remove', lambda: os.remove('file.txt'))
t('remove os.py', lambda: os.remove('/usr/lib/python3.11/os.py'))
t('mkdir', lambda: os.mkdir('/sandbox/d'))
t('mkdir root', lambda: os.mkdir('/proc'))
t('rmdir', lambda: os.rmdir('/sandbox'))
t('chmod', lambda: os.chmod('/usr/lib/python3.11/os.py', 0o777))
t('chmod sandbox', lambda: os.chmod('/sandbox', 0o777))
t('symlink', lambda: os.symlink('/tmp', '/sandbox/l'))
t('rename', lambda: os.rename('/usr/lib/python3.11/os.py', '/usr/lib/python3.11/os2.py'))
t('truncate', lambda: os.truncate('/usr/lib/python3.11/os.py', 0))
t('utime', lambda: os.utime('/usr/lib/python3.11/os.py'))
t('dev shm', lambda: open('/dev/shm/x', 'w'))"
for n in "w cwd" "w sandbox" "w stdlib" "a os.py" "w etc" "w dev" "w root" remove "remove os.py" mkdir \
    "mkdir root" rmdir chmod "chmod sandbox" symlink rename truncate utime; do
	assert_match "outside /tmp: $n fails (EROFS or EACCES)" "$(line "$n")" "^$n BLOCKED [A-Za-z]+Error errno=(13|30)\$"
done
assert_match "no /dev/shm to create files in" "$(line 'dev shm')" '^dev shm BLOCKED [A-Za-z]+Error errno=(2|13|30)$'
diag "the statement's os.remove('file.txt') with /tmp on: $(line remove)"
# Still no network and no exec, /tmp or not.
probe "import socket
t('socket', lambda: socket.socket())
t('exec', lambda: os.execv('/usr/bin/python3', ['python3']))"
expect "socket" "BLOCKED PermissionError errno=13"
expect "exec" "BLOCKED PermissionError errno=13"

assert_healthy "at the end"
PYEXEC_URL=$SAVED_URL
t_stack_stop "$PORT"
check "the stack on port $PORT stopped and cleaned up" test ! -d "$STATE"
t_done
