/*
 * Unit test of common/cfg.c: the built-in defaults agree with
 * deploy/pyexec.conf (which documents every key with its default), values
 * are checked by type and range, config files parse with their comments and
 * report file:line, and the relations between keys are checked.  Prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "tap.h"

/* Where deploy/pyexec.conf is: -DPYEXEC_CONF=..., $PYEXEC_TOP/deploy, the
 * working directory (tests/run.sh runs from the repository root) and its
 * parents, or two levels above this binary (build/tests/test_cfg). */
static const char *
conf_path(void)
{
	static char buf[PATH_MAX];
	static const char *rel[] = {
		"deploy/pyexec.conf", "../deploy/pyexec.conf", "../../deploy/pyexec.conf",
	};
	const char *top = getenv("PYEXEC_TOP");
	char exe[PATH_MAX], *slash;
	ssize_t n;
	size_t i;

#ifdef PYEXEC_CONF
	if (access(PYEXEC_CONF, R_OK) == 0)
		return PYEXEC_CONF;
#endif
	if (top != NULL) {
		if (snprintf(buf, sizeof(buf), "%s/deploy/pyexec.conf", top) <
		    (int)sizeof(buf) && access(buf, R_OK) == 0)
			return buf;
	}
	for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
		if (access(rel[i], R_OK) == 0)
			return rel[i];
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			if (snprintf(buf, sizeof(buf), "%s/../../deploy/pyexec.conf",
			    exe) < (int)sizeof(buf) && access(buf, R_OK) == 0)
				return buf;
		}
	}
	return NULL;
}

/* Every key of struct cfg, by type. */
#define CFG_STRS(X) X(socket) X(state_dir) X(socket_group) X(cgroup) X(preload)
#define CFG_UINTS(X) X(time_limit_ms) X(grace_ms) X(memory_limit_mb) \
	X(max_sessions) X(queue_max) X(output_limit) X(max_body) \
	X(idle_timeout_s) X(pids_max) X(nofile) X(tmp_mb) X(pool_size) \
	X(uid_base) X(uid_count) X(fcgi_threads) X(retry_after_s)
#define CFG_BOOLS(X) X(allow_degraded) X(landlock) X(seccomp) X(log_debug)
#define NAME(f)	#f,

static const char *key_names[] = { CFG_STRS(NAME) CFG_UINTS(NAME) CFG_BOOLS(NAME) };
#define NKEYS	(sizeof(key_names) / sizeof(key_names[0]))

/* Lines of the file that set key (key, white space, '='). */
static int
count_key_lines(const char *path, const char *key)
{
	char line[2048];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;
		size_t k = strlen(key);

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, key, k) != 0)
			continue;
		p += k;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=')
			n++;
	}
	fclose(f);
	return n;
}

static void
test_defaults_match_conf(void)
{
	struct cfg d, f;
	char err[512] = "";
	const char *path = conf_path();
	size_t i;
	int r;

	cfg_defaults(&d);
	if (!ok(path != NULL, "deploy/pyexec.conf found")) {
		diag("set PYEXEC_TOP or run from the repository root");
		return;
	}
	diag("reading %s", path);
	/* Over garbage, so that a key missing from the file shows. */
	memset(&f, 0xa5, sizeof(f));
	r = cfg_load(&f, path, 1, err, sizeof(err));
	if (!is_int(r, 0, "cfg_load(deploy/pyexec.conf)"))
		diag("error: %s", err);
	for (i = 0; i < NKEYS; i++)
		is_int(count_key_lines(path, key_names[i]), 1,
		    "pyexec.conf sets %s exactly once", key_names[i]);
#define CMP_S(k) is_str(f.k, d.k, "pyexec.conf %s = cfg_defaults (\"%s\")", #k, d.k);
#define CMP_U(k) is_int(f.k, d.k, "pyexec.conf %s = cfg_defaults (%u)", #k, d.k);
#define CMP_B(k) is_int(f.k, d.k, "pyexec.conf %s = cfg_defaults (%d)", #k, d.k);
	CFG_STRS(CMP_S)
	CFG_UINTS(CMP_U)
	CFG_BOOLS(CMP_B)
#undef CMP_S
#undef CMP_U
#undef CMP_B
	is_int(cfg_check(&d, err, sizeof(err)), 0, "the defaults pass cfg_check");

	/* The documented defaults of api.md. */
	is_int(d.time_limit_ms, 2000, "default time limit 2 s");
	is_int(d.memory_limit_mb, 100, "default memory limit 100 MB");
	is_int(d.max_sessions, 40, "default max sessions 40");
	is_int(d.queue_max, 8, "default queue 8");
	is_int(d.output_limit, 1048576, "default output cap 1 MiB");
	is_int(d.max_body, 1048576, "default body limit 1 MiB");
}

/* cfg_set that must fail, leaving c unchanged, with the key in the message. */
static void
set_fails(struct cfg *c, const char *kv, const char *mention)
{
	struct cfg before = *c;
	char err[256] = "";
	int r;

	r = cfg_set(c, kv, err, sizeof(err));
	is_int(r, -1, "cfg_set(\"%.60s\") refused", kv);
	if (mention != NULL)
		like(err, mention, "  the message names %s", mention);
	ok(memcmp(&before, c, sizeof(before)) == 0, "  the configuration is unchanged");
}

static int
set_ok(struct cfg *c, const char *kv)
{
	char err[256] = "";
	int r = cfg_set(c, kv, err, sizeof(err));

	if (!is_int(r, 0, "cfg_set(\"%.60s\")", kv))
		diag("error: %s", err);
	return r;
}

static void
test_set(void)
{
	struct cfg c;
	char big[700], err[8];

	cfg_defaults(&c);

	/* Whole numbers. */
	if (set_ok(&c, "time_limit_ms=5000") == 0)
		is_int(c.time_limit_ms, 5000, "  time_limit_ms is 5000");
	if (set_ok(&c, " queue_max = 3 ") == 0)
		is_int(c.queue_max, 3, "  spaces around key, '=' and value");
	if (set_ok(&c, "time_limit_ms=10") == 0)
		is_int(c.time_limit_ms, 10, "  the minimum 10 is accepted");
	if (set_ok(&c, "time_limit_ms=3600000") == 0)
		is_int(c.time_limit_ms, 3600000, "  the maximum 3600000 is accepted");
	if (set_ok(&c, "tmp_mb=0") == 0)
		is_int(c.tmp_mb, 0, "  tmp_mb 0 (its minimum)");
	if (set_ok(&c, "max_sessions=007") == 0)
		is_int(c.max_sessions, 7, "  leading zeros are decimal");
	set_fails(&c, "time_limit_ms=9", "time_limit_ms");
	set_fails(&c, "time_limit_ms=3600001", "time_limit_ms");
	set_fails(&c, "max_sessions=0", "max_sessions");
	set_fails(&c, "time_limit_ms=abc", "time_limit_ms");
	set_fails(&c, "time_limit_ms=", "time_limit_ms");
	set_fails(&c, "time_limit_ms=-1", "time_limit_ms");
	set_fails(&c, "time_limit_ms=+500", "time_limit_ms");
	set_fails(&c, "time_limit_ms=500ms", "time_limit_ms");
	set_fails(&c, "time_limit_ms=500 1", "time_limit_ms");
	set_fails(&c, "time_limit_ms=5.5", "time_limit_ms");
	set_fails(&c, "time_limit_ms=1e3", "time_limit_ms");
	set_fails(&c, "time_limit_ms=0x100", "time_limit_ms");
	set_fails(&c, "uid_base=4294967296", "uid_base");
	set_fails(&c, "uid_base=18446744073709551617", "uid_base");
	set_fails(&c, "uid_base=99999999999999999999999", "uid_base");

	/* Strings. */
	if (set_ok(&c, "socket=/tmp/pyexec-test.sock") == 0)
		is_str(c.socket, "/tmp/pyexec-test.sock", "  socket set");
	if (set_ok(&c, "preload = numpy  pandas ") == 0)
		is_str(c.preload, "numpy  pandas", "  inner spaces kept, outer trimmed");
	if (set_ok(&c, "preload=") == 0)
		is_str(c.preload, "", "  empty preload");
	if (set_ok(&c, "socket_group=a=b") == 0)
		is_str(c.socket_group, "a=b", "  the value may hold '='");
	memset(big, 0, sizeof(big));
	strcpy(big, "cgroup=");
	memset(big + 7, 'g', 63);
	if (set_ok(&c, big) == 0)
		is_int((long long)strlen(c.cgroup), 63, "  a 63-character cgroup fits");
	big[7 + 63] = 'g';
	set_fails(&c, big, "cgroup");
	strcpy(big, "socket=/");
	memset(big + 8, 's', 106);	/* 107 characters */
	if (set_ok(&c, big) == 0)
		is_int((long long)strlen(c.socket), 107, "  a 107-character socket path fits");
	big[8 + 106] = 's';
	set_fails(&c, big, "socket");

	/* Switches. */
	{
		static const struct { const char *v; int want; } b[] = {
			{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
			{ "1", 1 }, { "0", 0 }, { "on", 1 }, { "off", 0 },
		};
		size_t i;
		char kv[64];

		for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
			snprintf(kv, sizeof(kv), "seccomp=%s", b[i].v);
			if (set_ok(&c, kv) == 0)
				is_int(c.seccomp, b[i].want, "  seccomp = %s", b[i].v);
		}
	}
	set_fails(&c, "landlock=maybe", "landlock");
	set_fails(&c, "landlock=2", "landlock");
	set_fails(&c, "landlock=", "landlock");
	set_fails(&c, "landlock=YES", "landlock");

	/* Keys. */
	set_fails(&c, "nosuch=1", "nosuch");
	set_fails(&c, "time_limit=5", "time_limit");
	set_fails(&c, "time_limit_msx=5", "time_limit_msx");
	set_fails(&c, "TIME_LIMIT_MS=5", "TIME_LIMIT_MS");
	set_fails(&c, "=5", NULL);
	set_fails(&c, "time_limit_ms", NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "preload=", 8);
	set_fails(&c, big, NULL);

	/* A small error buffer is truncated, not overrun (ASan watches). */
	memset(err, 'z', sizeof(err));
	is_int(cfg_set(&c, "time_limit_ms=nope", err, sizeof(err)), -1,
	    "cfg_set with an 8-byte error buffer");
	ok(memchr(err, '\0', sizeof(err)) != NULL, "  the message is cut and terminated");
}

/* Writes text to a new temporary file; returns its path (static). */
static const char *
tmp_conf(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/pyexec-test-cfg.XXXXXX");
	if ((fd = mkstemp(path)) == -1) {
		perror("mkstemp");
		exit(2);
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("write");
		exit(2);
	}
	close(fd);
	return path;
}

/* cfg_load of text must fail with "<path>:<line>: " and mention. */
static void
load_fails(const char *text, int line, const char *mention, const char *desc)
{
	struct cfg c;
	char err[512] = "", want[128];
	const char *path = tmp_conf(text);

	cfg_defaults(&c);
	is_int(cfg_load(&c, path, 1, err, sizeof(err)), -1, "cfg_load refuses %s", desc);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	ok(strncmp(err, want, strlen(want)) == 0, "  the message starts with file:%d:", line);
	if (strncmp(err, want, strlen(want)) != 0)
		diag("got: %s", err);
	like(err, mention, "  and names %s", mention);
	unlink(path);
}

static void
test_load(void)
{
	struct cfg c, d;
	char err[512] = "";
	const char *path;
	char *text;
	size_t i;
	int r;

	cfg_defaults(&d);
	path = tmp_conf(
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "time_limit_ms=1500\n"
	    "  queue_max   =   4   \n"
	    "\tpreload = numpy\t# modules, then a comment\n"
	    "max_sessions = 10 # ten\n"
	    "socket = /tmp/t.sock\r\n"
	    "   # an indented comment = with an equals sign\n"
	    "seccomp = off\n"
	    "pool_size = 3");	/* no newline at the end */
	cfg_defaults(&c);
	r = cfg_load(&c, path, 1, err, sizeof(err));
	if (!is_int(r, 0, "cfg_load of a file with comments, blank lines and spaces"))
		diag("error: %s", err);
	is_int(c.time_limit_ms, 1500, "  key=value");
	is_int(c.queue_max, 4, "  spaces around '=' and at both ends");
	is_str(c.preload, "numpy", "  tab before the key, comment after the value");
	is_int(c.max_sessions, 10, "  comment after a number");
	is_str(c.socket, "/tmp/t.sock", "  CRLF line end");
	is_int(c.seccomp, 0, "  seccomp = off");
	is_int(c.pool_size, 3, "  last line without a newline");
	is_int(c.grace_ms, d.grace_ms, "  keys not in the file keep their value");
	is_str(c.cgroup, d.cgroup, "  strings too");
	unlink(path);

	load_fails("# one\ntime_limit_ms = 100\nbogus_key = 1\n", 3, "bogus_key",
	    "an unknown key");
	load_fails("\n\n\n\nqueue_max = lots\n", 5, "queue_max", "a bad number");
	load_fails("queue_max = 0\n", 1, "queue_max", "a number out of range");
	load_fails("landlock = perhaps\n", 1, "landlock", "a bad switch");
	load_fails("a line without equals\n", 1, "key = value", "a line without '='");

	text = malloc(3000);
	if (text == NULL)
		exit(2);
	strcpy(text, "queue_max = 2\npreload = ");
	for (i = strlen(text); i < 2500; i++)
		text[i] = 'p';
	strcpy(text + i, "\n");
	load_fails(text, 2, "too long", "a 2500-character line");
	/* A long comment line within the buffer is fine. */
	text[0] = '#';
	memset(text + 1, 'c', 1000);
	strcpy(text + 1001, "\nqueue_max = 6\n");
	path = tmp_conf(text);
	cfg_defaults(&c);
	r = cfg_load(&c, path, 1, err, sizeof(err));
	ok(r == 0 && c.queue_max == 6, "a 1001-character comment line is read");
	if (r != 0)
		diag("error: %s", err);
	unlink(path);
	free(text);

	/* Missing files. */
	cfg_defaults(&c);
	r = cfg_load(&c, "/nonexistent/pyexec.conf", 0, err, sizeof(err));
	ok(r == 0 && memcmp(&c, &d, sizeof(c)) == 0,
	    "a missing optional file: 0, nothing changed");
	err[0] = '\0';
	r = cfg_load(&c, "/nonexistent/pyexec.conf", 1, err, sizeof(err));
	is_int(r, -1, "a missing required file: -1");
	like(err, "/nonexistent/pyexec.conf", "  the message names the file");
	like(err, "No such file", "  and says why");
	err[0] = '\0';
	r = cfg_load(&c, "/tmp", 1, err, sizeof(err));
	is_int(r, -1, "a directory given as the file: -1 (read error reported)");
}

static void
check_fails(const struct cfg *c, const char *mention, const char *desc)
{
	char err[256] = "";

	is_int(cfg_check(c, err, sizeof(err)), -1, "cfg_check refuses %s", desc);
	like(err, mention, "  the message names %s", mention);
}

static void
test_check(void)
{
	struct cfg c;
	char err[256];

	cfg_defaults(&c);
	c.max_sessions = 100;
	c.pool_size = 4;
	c.uid_count = 104;
	check_fails(&c, "uid_count", "uid_count = max_sessions + pool_size");
	c.uid_count = 50;
	check_fails(&c, "uid_count", "uid_count < max_sessions");
	c.uid_count = 105;
	is_int(cfg_check(&c, err, sizeof(err)), 0,
	    "cfg_check accepts uid_count = max_sessions + pool_size + 1");
	c.max_sessions = 100000;
	c.pool_size = 1000;
	c.uid_count = 1000000;
	is_int(cfg_check(&c, err, sizeof(err)), 0, "cfg_check at the largest values");

	cfg_defaults(&c);
	strcpy(c.socket, "run/pyexec.sock");
	check_fails(&c, "socket", "a relative socket path");
	c.socket[0] = '\0';
	check_fails(&c, "socket", "an empty socket path");
	cfg_defaults(&c);
	strcpy(c.state_dir, "pyexec");
	check_fails(&c, "state_dir", "a relative state_dir");

	cfg_defaults(&c);
	strcpy(c.cgroup, "a/b");
	check_fails(&c, "cgroup", "a cgroup name with '/'");
	strcpy(c.cgroup, "/pyexec");
	check_fails(&c, "cgroup", "a cgroup name starting with '/'");
	strcpy(c.cgroup, "..");
	check_fails(&c, "cgroup", "cgroup \"..\"");
	strcpy(c.cgroup, ".");
	check_fails(&c, "cgroup", "cgroup \".\"");
	c.cgroup[0] = '\0';
	check_fails(&c, "cgroup", "an empty cgroup name");
	strcpy(c.cgroup, "pyexec-test.2");
	is_int(cfg_check(&c, err, sizeof(err)), 0, "cfg_check accepts cgroup pyexec-test.2");
}

static void
test_reply_bound(void)
{
	struct cfg c;
	unsigned b0, b1, b2;

	cfg_defaults(&c);
	b0 = cfg_reply_bound_ms(&c);
	ok(b0 >= (c.queue_max + 1) * (c.time_limit_ms + c.grace_ms),
	    "reply bound (%u ms) covers a full queue of executions and the running one", b0);
	c.queue_max *= 2;
	b1 = cfg_reply_bound_ms(&c);
	ok(b1 > b0, "  grows with queue_max (%u > %u)", b1, b0);
	c.time_limit_ms *= 2;
	b2 = cfg_reply_bound_ms(&c);
	ok(b2 > b1, "  grows with time_limit_ms (%u > %u)", b2, b1);
	c.grace_ms += 1000;
	ok(cfg_reply_bound_ms(&c) > b2, "  grows with grace_ms");
	c.queue_max = 1;
	c.time_limit_ms = 10;
	c.grace_ms = 10;
	ok(cfg_reply_bound_ms(&c) > 2 * 20, "  above the work itself at the smallest values");
	c.queue_max = 10000;
	c.time_limit_ms = 3600000;
	c.grace_ms = 60000;
	is_int(cfg_reply_bound_ms(&c), UINT_MAX, "  saturates at UINT_MAX, never wraps");
}

/* cfg_from_args in a child (it exits on errors); returns the exit status. */
static int
from_args_status(char **argv, int argc)
{
	pid_t pid = fork();
	int st, fd;

	if (pid == 0) {
		struct cfg c;

		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, 2);
		cfg_from_args(&c, argc, argv);
		_exit(0);
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void
test_from_args(void)
{
	struct cfg c;
	const char *path = tmp_conf("queue_max = 5\nlog_debug = yes\n");
	char a0[] = "prog", a1[] = "-c", a2[64], a3[] = "--time_limit_ms=777",
	    a4[] = "rest", a5[] = "--queue_max=6", a6[] = "-x";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6, NULL };
	char b3[] = "--nosuch=1", b4[] = "--time_limit_ms=1";
	char *bad1[] = { a0, a1, a2, b3, NULL };
	char *bad2[] = { a0, a1, a2, b4, NULL };
	char m2[] = "/nonexistent/pyexec.conf";
	char *bad3[] = { a0, a1, m2, NULL };
	int rest;

	snprintf(a2, sizeof(a2), "%s", path);
	rest = cfg_from_args(&c, 7, argv);
	is_int(rest, 3, "cfg_from_args: 3 arguments left (prog, rest, -x)");
	ok(rest == 3 && !strcmp(argv[1], "rest") && !strcmp(argv[2], "-x"),
	    "  the others are moved to the front, in order");
	is_int(c.time_limit_ms, 777, "  --time_limit_ms=777 applied");
	is_int(c.queue_max, 6, "  --queue_max=6 overrides the file's 5");
	is_int(c.log_debug, 1, "  log_debug from the file");
	is_int(c.fcgi_threads, 40 * 7 + 32, "  fcgi_threads 0 becomes 40 sessions x (6 queued + 1) + 32");
	is_int(log_debug_on, 1, "  log_debug_on switched on");
	log_debug_on = 0;

	is_int(from_args_status(bad1, 4), 1, "cfg_from_args exits 1 on an unknown --key");
	is_int(from_args_status(bad2, 4), 1, "cfg_from_args exits 1 on a bad value");
	is_int(from_args_status(bad3, 3), 1, "cfg_from_args exits 1 on a missing -c file");
	unlink(path);
}

static void
test_fcgi_threads(void)
{
	struct cfg c;

	cfg_defaults(&c);
	is_int(c.fcgi_threads, 0, "fcgi_threads defaults to 0 (auto)");
	is_int(cfg_fcgi_threads_auto(&c), 40 * 9 + 32,
	    "auto: one thread per running or queued execution of every session, + 32");
	c.fcgi_processes = 2;
	is_int(cfg_fcgi_threads_auto(&c), (40 * 9 + 32) / 2, "auto: shared by fcgi_processes");
	c.fcgi_processes = 3;
	is_int(cfg_fcgi_threads_auto(&c), (40 * 9 + 32 + 2) / 3, "auto: rounded up");
	c.fcgi_processes = 1;
	c.max_sessions = 100000;
	c.queue_max = 10000;
	is_int(cfg_fcgi_threads_auto(&c), 4096, "auto: at most 4096 a process");
}

int
main(void)
{
	test_defaults_match_conf();
	test_set();
	test_load();
	test_check();
	test_reply_bound();
	test_fcgi_threads();
	test_from_args();
	return done();
}
