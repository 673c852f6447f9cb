/*
 * The zygote: pyexec-sessiond re-executed as root with a fixed environment.
 * It starts the interpreter once, imports the configured modules, prepares
 * the sandbox (template root, seccomp program) and then only forks: one
 * session child per fork order from the daemon.  It runs trusted code only,
 * holds no client socket, and never runs user code (architecture.md, "Who
 * holds privilege").
 *
 * Each child is pid 1 of a new PID namespace: the zygote unshares
 * CLONE_NEWPID before fork() and returns to its own namespace right after,
 * so the child comes from a plain fork() (the C library's and Python's
 * at-fork handling stay correct).  Killing that pid 1 kills every process
 * the session made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "proto.h"
#include "sbx.h"
#include "sess.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif
#ifndef PYEXEC_PY_HOME
#define PYEXEC_PY_HOME	"/usr"
#endif

static struct cfg	 zcfg;
static struct sbx	*zsbx;
static int		 zlink = -1;	/* to the daemon */
static int		 own_pidns = -1;
static int		 devnull = -1;
static struct proto_msg	 zrx;

/*
 * The pages a child writes on its way to its first execution: learned once
 * from a probe child (zygote_learn), then copied by each child in a few
 * madvise(MADV_POPULATE_WRITE) calls right after fork (zygote_prefault).
 * Copy-on-write faults, one per page, cost a child more than the copies.
 */
struct zrange {
	uintptr_t	zr_start;
	size_t		zr_len;
};
#define ZWARM_MAX	4096	/* ranges; past this the rest fault as usual */
/*
 * Mappings larger than this are reservations (a sanitizer's shadow memory,
 * an allocator's arena space), not where a starting child writes: the scan
 * skips them, it would otherwise read a pagemap entry per page of terabytes.
 */
#define ZSCAN_VMA_MAX	(1ul << 30)
static struct zrange	 zwarm[ZWARM_MAX];
static size_t		 nzwarm;

static void
zygote_python(void)
{
	PyConfig pc;
	PyStatus st;
	char mods[sizeof(zcfg.preload)], *tok, *save = NULL;
	char *argv0[] = { "", NULL };
	PyObject *m, *r;

	PyConfig_InitIsolatedConfig(&pc);
	/* Ctrl-C semantics for the daemon's SIGINT at the time limit. */
	pc.install_signal_handlers = 1;
	/* The sandbox's files are read-only: never try to write .pyc files. */
	pc.write_bytecode = 0;
	pc.parse_argv = 0;
	pc.site_import = 1;
	pc.user_site_directory = 0;
	st = PyConfig_SetString(&pc, &pc.home, L"" PYEXEC_PY_HOME);
	if (!PyStatus_Exception(st))
		st = PyConfig_SetString(&pc, &pc.stdio_encoding, L"utf-8");
	if (!PyStatus_Exception(st))
		st = PyConfig_SetString(&pc, &pc.stdio_errors, L"strict");
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesString(&pc, &pc.program_name, "python3");
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesArgv(&pc, 1, argv0);	/* sys.argv == [''] */
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&pc);
	PyConfig_Clear(&pc);
	if (PyStatus_Exception(st))
		fatalx("Python initialization failed: %s", st.err_msg ? st.err_msg : "?");

	/* What the children need on every run, imported once here. */
	if ((m = PyImport_ImportModule("json")) == NULL ||
	    (Py_DECREF(m), m = PyImport_ImportModule("random")) == NULL) {
		PyErr_Print();
		fatalx("cannot import json and random");
	}
	Py_DECREF(m);
	snprintf(mods, sizeof(mods), "%s", zcfg.preload);
	for (tok = strtok_r(mods, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		if ((m = PyImport_ImportModule(tok)) == NULL) {
			PyErr_Clear();
			log_err("event=preload_failed module=%s", tok);
			continue;
		}
		Py_DECREF(m);
		log_debug("event=preloaded module=%s", tok);
	}
	child_prepare(devnull);
	/*
	 * Move what exists now out of the collector's sight, so a child's
	 * collections never touch (and copy) the pages it shares with us.
	 */
	if ((m = PyImport_ImportModule("gc")) == NULL ||
	    (r = PyObject_CallMethod(m, "collect", NULL)) == NULL ||
	    (Py_DECREF(r), r = PyObject_CallMethod(m, "freeze", NULL)) == NULL) {
		PyErr_Print();
		fatalx("gc.freeze failed");
	}
	Py_DECREF(r);
	Py_DECREF(m);
	/* Free heap given back now, not walked by every child's malloc. */
	malloc_trim(0);
}

/* In a fresh child, once in its cgroup, before Python runs. */
static void
zygote_prefault(void)
{
	size_t i;

	for (i = 0; i < nzwarm; i++)
		if (madvise((void *)zwarm[i].zr_start, zwarm[i].zr_len,
		    MADV_POPULATE_WRITE) == -1 && errno == EINVAL)
			break;	/* a kernel without it: the faults will do */
}

/*
 * In the probe: the pages of the zygote's private writable mappings that are
 * now this process's own (/proc/self/pagemap: present and exclusively
 * mapped), that is, copied or first touched since the fork.  Written to fd
 * as struct zrange records.
 */
static void
zygote_probe_scan(int fd)
{
	static uint64_t pm[512];
	static struct zrange out[ZWARM_MAX];
	const unsigned long pg = (unsigned long)sysconf(_SC_PAGESIZE);
	char path[64], line[512], perms[8];
	unsigned long a, b, addr;
	size_t n = 0, k, cnt;
	FILE *maps;
	int pmfd;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)getppid());
	if ((maps = fopen(path, "re")) == NULL ||
	    (pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) == -1)
		_exit(1);
	while (n < ZWARM_MAX && fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3 ||
		    strcmp(perms, "rw-p") != 0 || b - a > ZSCAN_VMA_MAX)
			continue;
		for (addr = a; addr < b && n < ZWARM_MAX; addr += cnt * pg) {
			cnt = (b - addr) / pg < 512 ? (b - addr) / pg : 512;
			if (pread(pmfd, pm, cnt * 8, (off_t)(addr / pg) * 8) != (ssize_t)(cnt * 8))
				break;
			for (k = 0; k < cnt && n < ZWARM_MAX; k++) {
				uintptr_t at = addr + k * pg;

				/* bit 63: present; bit 56: mapped by this process only */
				if (!((pm[k] >> 63) & 1) || !((pm[k] >> 56) & 1))
					continue;	/* absent, or still shared */
				if (n > 0 && out[n - 1].zr_start + out[n - 1].zr_len == at)
					out[n - 1].zr_len += pg;
				else
					out[n++] = (struct zrange){ at, pg };
			}
		}
	}
	if (write(fd, out, n * sizeof(out[0])) != (ssize_t)(n * sizeof(out[0])))
		_exit(1);
	_exit(0);
}

/*
 * Forks a probe that starts like a child and runs a first small execution
 * (child_probe), and keeps the list of pages it wrote.  Its output goes
 * nowhere and it never speaks to the daemon.  Failing costs only speed.
 */
static void
zygote_learn(void)
{
	int p[2], st;
	size_t got = 0, pages = 0, i;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		return;
	fflush(NULL);
	PyOS_BeforeFork();
	pid = fork();
	if (pid == 0) {
		PyOS_AfterFork_Child();
		if (dup2(devnull, 0) == -1 || dup2(devnull, 1) == -1 ||
		    dup2(devnull, 2) == -1 || dup2(devnull, SESS_ZYGOTE_FD) == -1)
			_exit(1);
		child_probe(&zcfg);
		zygote_probe_scan(p[1]);
	}
	PyOS_AfterFork_Parent();
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		return;
	}
	while (got < sizeof(zwarm) &&
	    (n = read(p[0], (char *)zwarm + got, sizeof(zwarm) - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got % sizeof(zwarm[0]) != 0) {
		log_warn("event=prefault_probe_failed status=%d", st);
		return;
	}
	nzwarm = got / sizeof(zwarm[0]);
	for (i = 0; i < nzwarm; i++)
		pages += zwarm[i].zr_len / (size_t)sysconf(_SC_PAGESIZE);
	log_info("event=prefault_learned ranges=%zu pages=%zu", nzwarm, pages);
}

static void
zygote_reply(uint32_t serial, pid_t pid, int err, int pidfd)
{
	struct proto_forked fk;

	memset(&fk, 0, sizeof(fk));
	fk.pfk_serial = serial;
	fk.pfk_pid = pid;
	fk.pfk_errno = err;
	if (proto_send(zlink, PROTO_FORKED, PROTO_F_END, 0, &fk, sizeof(fk),
	    pidfd >= 0 ? &pidfd : NULL, pidfd >= 0 ? 1 : 0) == -1)
		fatal("cannot answer the daemon");
}

/* Moves fd to at least 'above' so the final dup2s cannot collide. */
static int
fd_lift(int fd, int above)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, above);

	if (n == -1)
		_exit(126);
	return n;
}

/*
 * In the child, just after fork: only its own descriptors, at their fixed
 * numbers (0 /dev/null, 1 and 2 the output pipes, 3 the control socket),
 * plus the go pipe.  Returns the go descriptor.  Its /dev/null is an open of
 * its own: a description shared with the zygote would share its status flags
 * and locks with every other session.
 */
static int
zygote_child_fds(int ctl, int out, int err, int go)
{
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC), c = fd_lift(ctl, 10),
	    o = fd_lift(out, 10), e = fd_lift(err, 10), g = fd_lift(go, 10);

	if (dn == -1 || (dn = fd_lift(dn, 10)) == -1)
		_exit(126);
	if (dup2(dn, 0) == -1 || dup2(o, 1) == -1 || dup2(e, 2) == -1 ||
	    dup2(c, SESS_CHILD_CTL_FD) == -1 || dup2(g, SESS_CHILD_CTL_FD + 1) == -1)
		_exit(126);
	/* Everything else: the daemon link, other sessions' ends, our own files. */
	syscall(SYS_close_range, SESS_CHILD_CTL_FD + 2, ~0U, 0);
	return SESS_CHILD_CTL_FD + 1;
}

static void
zygote_fork(struct proto_msg *m)
{
	struct proto_fork pf;
	int go[2] = { -1, -1 }, pidfd = -1, i, err = 0;
	char num[16];
	pid_t pid;

	if (!proto_payload_is(m, sizeof(pf)))
		fatalx("bad fork order from the daemon");
	memcpy(&pf, m->pm_payload, sizeof(pf));
	if (pf.pf_ncg > PROTO_MAX_FDS - 3 || m->pm_nfds != 3 + (int)pf.pf_ncg)
		fatalx("fork order with %d descriptors", m->pm_nfds);
	if (pipe2(go, O_CLOEXEC) == -1) {
		err = errno;
		goto out;
	}
	/* Children of this fork go into a new PID namespace; we stay in ours. */
	if (unshare(CLONE_NEWPID) == -1) {
		err = errno;
		goto out;
	}
	fflush(NULL);
	PyOS_BeforeFork();
	pid = fork();
	if (pid == 0) {
		ssize_t n;
		char g;

		close(go[1]);
		i = zygote_child_fds(m->pm_fds[0], m->pm_fds[1], m->pm_fds[2], go[0]);
		/*
		 * Nothing is written before the go byte says the child is in its
		 * cgroup: the pages it copies are charged there, not to us.
		 */
		while ((n = read(i, &g, 1)) == -1 && errno == EINTR)
			;
		if (n != 1)
			_exit(1);
		close(i);
		zygote_prefault();
		PyOS_AfterFork_Child();
		child_main(&zcfg, zsbx, pf.pf_uid, pf.pf_ncg == 0, pf.pf_warm != 0);
		/* NOTREACHED */
	}
	PyOS_AfterFork_Parent();
	if (setns(own_pidns, CLONE_NEWPID) == -1)
		fatal("cannot return to the zygote's PID namespace");
	if (pid == -1) {
		err = errno;
		goto out;
	}
	/* The child cannot be reaped before this: SIGCHLD waits in our signalfd. */
	if ((pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1) {
		err = errno;
		kill(pid, SIGKILL);
		goto out;
	}
	/* Place it in its cgroup while it waits for its go byte (convention 8). */
	snprintf(num, sizeof(num), "%d", (int)pid);
	for (i = 0; i < (int)pf.pf_ncg; i++)
		if (write(m->pm_fds[3 + i], num, strlen(num)) != (ssize_t)strlen(num)) {
			err = errno;
			log_err("event=cgroup_attach_failed pid=%d errno=\"%s\"", (int)pid,
			    strerror(errno));
			kill(pid, SIGKILL);
			close(pidfd);
			pidfd = -1;
			goto out;
		}
	if (write(go[1], "g", 1) != 1) {
		err = errno;
		kill(pid, SIGKILL);
		close(pidfd);
		pidfd = -1;
		goto out;
	}
out:
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	zygote_reply(pf.pf_serial, pidfd >= 0 ? pid : -1, err, pidfd);
	if (pidfd >= 0)
		close(pidfd);
	proto_msg_close_fds(m);
}

static void
zygote_reap(int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si))
		;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/*
 * A session frozen between runs in a v1 freezer cgroup takes its SIGKILL only
 * once thawed: thaw the cgroup the process is in (v2 needs nothing).
 */
static void
zygote_thaw(long pid)
{
	char path[PATH_MAX], line[512], *rel;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((rel = strstr(line, ":freezer:")) == NULL)
			continue;
		rel += strlen(":freezer:");
		rel[strcspn(rel, "\n")] = '\0';
		if (snprintf(path, sizeof(path), "/sys/fs/cgroup/freezer%s/freezer.state",
		    rel) >= (int)sizeof(path) || strstr(rel, "..") != NULL)
			break;
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) != -1) {
			(void)write(fd, "THAWED", 6);
			close(fd);
		}
		break;
	}
	fclose(f);
}

/*
 * The daemon is gone, and with it every session's time limit: end the
 * sessions (each child is pid 1 of its namespace, so all their processes
 * go), reap them, then exit.  Our children are the processes whose parent
 * we are; not reaped yet, none of their pids can have been reused.
 */
static void
zygote_orphaned(void)
{
	char path[64], buf[256], *p;
	struct dirent *de;
	pid_t self = getpid();
	DIR *d;
	int fd, n, killed = 0;
	long pid, ppid;

	if ((d = opendir("/proc")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if ((pid = strtol(de->d_name, &p, 10)) <= 0 || *p != '\0')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
				continue;
			n = (int)read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n <= 0)
				continue;
			buf[n] = '\0';
			/* "pid (comm) state ppid ...": comm may hold anything. */
			if ((p = strrchr(buf, ')')) != NULL &&
			    sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == self &&
			    kill((pid_t)pid, SIGKILL) == 0) {
				zygote_thaw(pid);
				killed++;
			}
		}
		closedir(d);
	}
	if (killed > 0)
		log_warn("event=zygote_orphaned children_killed=%d", killed);
	alarm(5);	/* a child that cannot die must not keep us */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	_exit(0);
}

void
zygote_main(int fd)
{
	struct sbx_params sp;
	struct pollfd pfd[2];
	char err[512];
	sigset_t mask;
	int sfd, r;
	const char *desc;

	zlink = fd;
	/* The daemon's configuration, as a struct: nothing to parse. */
	r = proto_recv(zlink, &zrx);
	if (r != 1 || zrx.pm_hdr.ph_type != PROTO_ZYGOTE_HELLO ||
	    !proto_payload_is(&zrx, sizeof(zcfg)))
		fatalx("no configuration from the daemon");
	memcpy(&zcfg, zrx.pm_payload, sizeof(zcfg));
	log_debug_on = zcfg.log_debug;
	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		fatal("open /dev/null");
	if ((own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("open /proc/self/ns/pid");

	/* Children are reaped here; the daemon watches them through pidfds. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1 ||
	    (sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");

	/*
	 * No fastbins: a large allocation in a child would first consolidate
	 * every free fastbin chunk of the heap, copying the pages they lie on.
	 */
	(void)mallopt(M_MXFAST, 0);
	zygote_python();

	memset(&sp, 0, sizeof(sp));
	{
		static char root[sizeof(zcfg.state_dir) + 8];

		snprintf(root, sizeof(root), "%s/root", zcfg.state_dir);
		sp.sp_root_dir = root;
	}
	sp.sp_tmp_mb = zcfg.tmp_mb;
	sp.sp_nofile = zcfg.nofile;
	sp.sp_nproc = zcfg.pids_max;
	sp.sp_fsize_mb = zcfg.tmp_mb ? zcfg.tmp_mb : 1;
	sp.sp_landlock = zcfg.landlock;
	sp.sp_seccomp = zcfg.seccomp;
	if ((zsbx = sbx_prepare(&sp, err, sizeof(err))) == NULL)
		fatalx("sandbox: %s", err);
	zygote_learn();
	desc = sbx_describe(zsbx);
	if (proto_send(zlink, PROTO_ZYGOTE_READY, PROTO_F_END, 0, desc, strlen(desc),
	    NULL, 0) == -1)
		fatal("cannot reach the daemon");

	pfd[0].fd = zlink;
	pfd[0].events = POLLIN;
	pfd[1].fd = sfd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[1].revents)
			zygote_reap(sfd);
		if (!pfd[0].revents)
			continue;
		r = proto_recv(zlink, &zrx);
		if (r == 0)
			zygote_orphaned();	/* the daemon is gone: so are we */
		if (r == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fatal("recv from the daemon");
		}
		if (zrx.pm_hdr.ph_type != PROTO_FORK) {
			proto_msg_close_fds(&zrx);
			fatalx("unexpected frame type %u from the daemon", zrx.pm_hdr.ph_type);
		}
		zygote_fork(&zrx);
	}
}
