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

#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

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
#ifndef PYEXEC_PY_HOME
#define PYEXEC_PY_HOME	"/usr"
#endif

static struct cfg	 zcfg;
static struct sbx	*zsbx;
static int		 zlink = -1;	/* to the daemon */
static int		 own_pidns = -1;
static int		 devnull = -1;
static struct proto_msg	 zrx;

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
	child_prepare();
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
 * plus the go pipe, which child_main consumes.  Returns the go descriptor.
 */
static int
zygote_child_fds(int ctl, int out, int err, int go)
{
	int dn = fd_lift(devnull, 10), c = fd_lift(ctl, 10), o = fd_lift(out, 10),
	    e = fd_lift(err, 10), g = fd_lift(go, 10);

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
	if (pf.pf_ncg > 3 || m->pm_nfds != 3 + (int)pf.pf_ncg)
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
		PyOS_AfterFork_Child();
		close(go[1]);
		i = zygote_child_fds(m->pm_fds[0], m->pm_fds[1], m->pm_fds[2], go[0]);
		child_main(&zcfg, zsbx, i, pf.pf_uid, pf.pf_ncg == 0);
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
			_exit(0);	/* the daemon is gone: so are we */
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
