/*
 * The seccomp filter: an allowlist fitted to CPython 3.11 with numpy and
 * pandas (found by tracing real workloads, not guessed), compiled once in
 * the zygote with libseccomp and kept as a raw BPF program. Children only
 * hand that program to the kernel: no libseccomp code, no allocation, runs
 * in a child.
 *
 * Actions, and why:
 *   unlisted calls        EPERM: Python raises an OSError the user can read;
 *                         killing would look like a crash of our own.
 *   file changes          EACCES (os.remove('f') -> PermissionError [Errno 13],
 *                         open('x','w') the same); allowed when /tmp is on,
 *                         where the read-only mounts and Landlock still
 *                         refuse them everywhere but /tmp.
 *   socket, connect, ...  EACCES: socket.socket() -> PermissionError.
 *   execve, execveat      EACCES: subprocess.run(['id']) -> PermissionError.
 *   clone3, io_uring_*,   ENOSYS: glibc falls back from clone3 to clone, whose
 *   openat2               flags a filter can see; io_uring would run file and
 *                         socket operations the filter never sees.
 *   other arch, x32       kill the process (see sbx_bpf_prologue).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "sbx_int.h"

#if !defined(__x86_64__)
#error "sandbox/: the seccomp filter is fitted to x86_64 only"
#endif

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT	0x40000000
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41	/* glibc names anonymous mappings */
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

struct sbx_bpf {
	struct sock_filter	*b_insns;
	unsigned short		 b_len;
};

enum sbx_sc_act {
	SBX_SC_ALLOW,
	SBX_SC_EACCES,		/* refused, as a permission error */
	SBX_SC_ENOSYS,		/* refused, as "not implemented": callers fall back */
	SBX_SC_FILE,		/* file change: EACCES, or allowed when /tmp is on */
};

struct sbx_sc {
	const char	*sc_name;
	int		 sc_nr;		/* x86_64 number for calls newer than libseccomp, else 0 */
	enum sbx_sc_act	 sc_act;
};

static const struct sbx_sc sbx_sc_table[] = {
	/* I/O on descriptors the process holds (pipes, sockets, read-only files, memfds). */
	{ "read", 0, SBX_SC_ALLOW }, { "write", 0, SBX_SC_ALLOW },
	{ "readv", 0, SBX_SC_ALLOW }, { "writev", 0, SBX_SC_ALLOW },
	{ "pread64", 0, SBX_SC_ALLOW }, { "pwrite64", 0, SBX_SC_ALLOW },
	{ "preadv", 0, SBX_SC_ALLOW }, { "pwritev", 0, SBX_SC_ALLOW },
	{ "preadv2", 0, SBX_SC_ALLOW }, { "pwritev2", 0, SBX_SC_ALLOW },
	{ "lseek", 0, SBX_SC_ALLOW }, { "close", 0, SBX_SC_ALLOW },
	{ "close_range", 0, SBX_SC_ALLOW },
	{ "dup", 0, SBX_SC_ALLOW }, { "dup2", 0, SBX_SC_ALLOW }, { "dup3", 0, SBX_SC_ALLOW },
	{ "fcntl", 0, SBX_SC_ALLOW }, { "flock", 0, SBX_SC_ALLOW },
	{ "fsync", 0, SBX_SC_ALLOW }, { "fdatasync", 0, SBX_SC_ALLOW },
	{ "fadvise64", 0, SBX_SC_ALLOW }, { "readahead", 0, SBX_SC_ALLOW },
	{ "sendfile", 0, SBX_SC_ALLOW }, { "copy_file_range", 0, SBX_SC_ALLOW },
	{ "splice", 0, SBX_SC_ALLOW }, { "tee", 0, SBX_SC_ALLOW },
	{ "pipe", 0, SBX_SC_ALLOW }, { "pipe2", 0, SBX_SC_ALLOW },
	/*
	 * memfd is anonymous memory (charged to the cgroup, bounded by
	 * RLIMIT_FSIZE); ftruncate and fallocate only work on descriptors
	 * open for writing, which outside /tmp means a memfd.
	 */
	{ "memfd_create", 0, SBX_SC_ALLOW },
	{ "ftruncate", 0, SBX_SC_ALLOW }, { "fallocate", 0, SBX_SC_ALLOW },

	/* Reading the file tree. */
	{ "stat", 0, SBX_SC_ALLOW }, { "fstat", 0, SBX_SC_ALLOW },
	{ "lstat", 0, SBX_SC_ALLOW }, { "newfstatat", 0, SBX_SC_ALLOW },
	{ "statx", 0, SBX_SC_ALLOW }, { "statfs", 0, SBX_SC_ALLOW },
	{ "fstatfs", 0, SBX_SC_ALLOW },
	{ "access", 0, SBX_SC_ALLOW }, { "faccessat", 0, SBX_SC_ALLOW },
	{ "faccessat2", 0, SBX_SC_ALLOW },
	{ "readlink", 0, SBX_SC_ALLOW }, { "readlinkat", 0, SBX_SC_ALLOW },
	{ "getdents", 0, SBX_SC_ALLOW }, { "getdents64", 0, SBX_SC_ALLOW },
	{ "getcwd", 0, SBX_SC_ALLOW }, { "chdir", 0, SBX_SC_ALLOW },
	{ "fchdir", 0, SBX_SC_ALLOW }, { "umask", 0, SBX_SC_ALLOW },
	{ "getxattr", 0, SBX_SC_ALLOW }, { "lgetxattr", 0, SBX_SC_ALLOW },
	{ "fgetxattr", 0, SBX_SC_ALLOW }, { "listxattr", 0, SBX_SC_ALLOW },
	{ "llistxattr", 0, SBX_SC_ALLOW }, { "flistxattr", 0, SBX_SC_ALLOW },

	/* Memory. */
	{ "brk", 0, SBX_SC_ALLOW }, { "mmap", 0, SBX_SC_ALLOW },
	{ "munmap", 0, SBX_SC_ALLOW }, { "mremap", 0, SBX_SC_ALLOW },
	{ "mprotect", 0, SBX_SC_ALLOW }, { "madvise", 0, SBX_SC_ALLOW },
	{ "msync", 0, SBX_SC_ALLOW }, { "mincore", 0, SBX_SC_ALLOW },

	/* Waiting: asyncio, selectors, threading, time.sleep. */
	{ "poll", 0, SBX_SC_ALLOW }, { "ppoll", 0, SBX_SC_ALLOW },
	{ "select", 0, SBX_SC_ALLOW }, { "pselect6", 0, SBX_SC_ALLOW },
	{ "epoll_create", 0, SBX_SC_ALLOW }, { "epoll_create1", 0, SBX_SC_ALLOW },
	{ "epoll_ctl", 0, SBX_SC_ALLOW }, { "epoll_wait", 0, SBX_SC_ALLOW },
	{ "epoll_pwait", 0, SBX_SC_ALLOW }, { "epoll_pwait2", 0, SBX_SC_ALLOW },
	{ "eventfd", 0, SBX_SC_ALLOW }, { "eventfd2", 0, SBX_SC_ALLOW },
	{ "timerfd_create", 0, SBX_SC_ALLOW }, { "timerfd_settime", 0, SBX_SC_ALLOW },
	{ "timerfd_gettime", 0, SBX_SC_ALLOW },
	{ "signalfd", 0, SBX_SC_ALLOW }, { "signalfd4", 0, SBX_SC_ALLOW },
	{ "futex", 0, SBX_SC_ALLOW },

	/* Time. */
	{ "clock_gettime", 0, SBX_SC_ALLOW }, { "clock_getres", 0, SBX_SC_ALLOW },
	{ "clock_nanosleep", 0, SBX_SC_ALLOW }, { "nanosleep", 0, SBX_SC_ALLOW },
	{ "gettimeofday", 0, SBX_SC_ALLOW }, { "time", 0, SBX_SC_ALLOW },
	{ "times", 0, SBX_SC_ALLOW },
	{ "getitimer", 0, SBX_SC_ALLOW }, { "setitimer", 0, SBX_SC_ALLOW },
	{ "alarm", 0, SBX_SC_ALLOW },
	{ "timer_create", 0, SBX_SC_ALLOW }, { "timer_settime", 0, SBX_SC_ALLOW },
	{ "timer_gettime", 0, SBX_SC_ALLOW }, { "timer_getoverrun", 0, SBX_SC_ALLOW },
	{ "timer_delete", 0, SBX_SC_ALLOW },

	/* Who am I; read-only facts about the process and machine. */
	{ "getpid", 0, SBX_SC_ALLOW }, { "getppid", 0, SBX_SC_ALLOW },
	{ "gettid", 0, SBX_SC_ALLOW }, { "getuid", 0, SBX_SC_ALLOW },
	{ "geteuid", 0, SBX_SC_ALLOW }, { "getgid", 0, SBX_SC_ALLOW },
	{ "getegid", 0, SBX_SC_ALLOW }, { "getresuid", 0, SBX_SC_ALLOW },
	{ "getresgid", 0, SBX_SC_ALLOW }, { "getgroups", 0, SBX_SC_ALLOW },
	{ "getpgid", 0, SBX_SC_ALLOW }, { "getpgrp", 0, SBX_SC_ALLOW },
	{ "getsid", 0, SBX_SC_ALLOW }, { "getrusage", 0, SBX_SC_ALLOW },
	{ "getpriority", 0, SBX_SC_ALLOW }, { "sysinfo", 0, SBX_SC_ALLOW },
	{ "uname", 0, SBX_SC_ALLOW }, { "capget", 0, SBX_SC_ALLOW },
	{ "getcpu", 0, SBX_SC_ALLOW }, { "getrandom", 0, SBX_SC_ALLOW },
	/* Hard limits equal soft ones and cannot be raised without a capability. */
	{ "getrlimit", 0, SBX_SC_ALLOW }, { "setrlimit", 0, SBX_SC_ALLOW },
	{ "prlimit64", 0, SBX_SC_ALLOW },
	{ "sched_getaffinity", 0, SBX_SC_ALLOW }, { "sched_yield", 0, SBX_SC_ALLOW },
	{ "sched_getparam", 0, SBX_SC_ALLOW }, { "sched_getscheduler", 0, SBX_SC_ALLOW },
	{ "sched_get_priority_max", 0, SBX_SC_ALLOW },
	{ "sched_get_priority_min", 0, SBX_SC_ALLOW },
	{ "sched_rr_get_interval", 0, SBX_SC_ALLOW },

	/*
	 * Processes, threads and signals. The child is pid 1 of its own PID
	 * namespace: kill and wait reach only the session's own processes
	 * (and Landlock scopes signals too).
	 */
	{ "exit", 0, SBX_SC_ALLOW }, { "exit_group", 0, SBX_SC_ALLOW },
	{ "wait4", 0, SBX_SC_ALLOW }, { "waitid", 0, SBX_SC_ALLOW },
	{ "kill", 0, SBX_SC_ALLOW }, { "tkill", 0, SBX_SC_ALLOW },
	{ "tgkill", 0, SBX_SC_ALLOW }, { "rt_sigqueueinfo", 0, SBX_SC_ALLOW },
	{ "rt_tgsigqueueinfo", 0, SBX_SC_ALLOW },
	{ "rt_sigaction", 0, SBX_SC_ALLOW }, { "rt_sigprocmask", 0, SBX_SC_ALLOW },
	{ "rt_sigreturn", 0, SBX_SC_ALLOW }, { "rt_sigpending", 0, SBX_SC_ALLOW },
	{ "rt_sigsuspend", 0, SBX_SC_ALLOW }, { "rt_sigtimedwait", 0, SBX_SC_ALLOW },
	{ "sigaltstack", 0, SBX_SC_ALLOW }, { "pause", 0, SBX_SC_ALLOW },
	{ "restart_syscall", 0, SBX_SC_ALLOW },
	{ "fork", 0, SBX_SC_ALLOW }, { "vfork", 0, SBX_SC_ALLOW },
	{ "set_robust_list", 0, SBX_SC_ALLOW }, { "set_tid_address", 0, SBX_SC_ALLOW },
	{ "rseq", 0, SBX_SC_ALLOW }, { "arch_prctl", 0, SBX_SC_ALLOW },

	/*
	 * Sockets the process already holds (the session's channel to the
	 * daemon, a socketpair): data only. No new socket, and no naming of
	 * an existing one (bind/connect/listen/accept).
	 */
	{ "sendmsg", 0, SBX_SC_ALLOW }, { "recvmsg", 0, SBX_SC_ALLOW },
	{ "sendto", 0, SBX_SC_ALLOW }, { "recvfrom", 0, SBX_SC_ALLOW },
	{ "sendmmsg", 0, SBX_SC_ALLOW }, { "recvmmsg", 0, SBX_SC_ALLOW },
	{ "shutdown", 0, SBX_SC_ALLOW }, { "getsockname", 0, SBX_SC_ALLOW },
	{ "getpeername", 0, SBX_SC_ALLOW }, { "getsockopt", 0, SBX_SC_ALLOW },
	{ "setsockopt", 0, SBX_SC_ALLOW },
	{ "socket", 0, SBX_SC_EACCES }, { "connect", 0, SBX_SC_EACCES },
	{ "bind", 0, SBX_SC_EACCES }, { "listen", 0, SBX_SC_EACCES },
	{ "accept", 0, SBX_SC_EACCES }, { "accept4", 0, SBX_SC_EACCES },

	{ "execve", 0, SBX_SC_EACCES }, { "execveat", 0, SBX_SC_EACCES },

	{ "clone3", 0, SBX_SC_ENOSYS }, { "openat2", 0, SBX_SC_ENOSYS },
	{ "io_uring_setup", 0, SBX_SC_ENOSYS }, { "io_uring_enter", 0, SBX_SC_ENOSYS },
	{ "io_uring_register", 0, SBX_SC_ENOSYS },

	/* Changes to the file tree (open for writing is handled apart). */
	{ "unlink", 0, SBX_SC_FILE }, { "unlinkat", 0, SBX_SC_FILE },
	{ "rmdir", 0, SBX_SC_FILE }, { "mkdir", 0, SBX_SC_FILE },
	{ "mkdirat", 0, SBX_SC_FILE }, { "rename", 0, SBX_SC_FILE },
	{ "renameat", 0, SBX_SC_FILE }, { "renameat2", 0, SBX_SC_FILE },
	{ "link", 0, SBX_SC_FILE }, { "linkat", 0, SBX_SC_FILE },
	{ "symlink", 0, SBX_SC_FILE }, { "symlinkat", 0, SBX_SC_FILE },
	{ "chmod", 0, SBX_SC_FILE }, { "fchmod", 0, SBX_SC_FILE },
	{ "fchmodat", 0, SBX_SC_FILE }, { "fchmodat2", 452, SBX_SC_FILE },
	{ "chown", 0, SBX_SC_FILE }, { "fchown", 0, SBX_SC_FILE },
	{ "lchown", 0, SBX_SC_FILE }, { "fchownat", 0, SBX_SC_FILE },
	{ "truncate", 0, SBX_SC_FILE }, { "creat", 0, SBX_SC_FILE },
	{ "mknod", 0, SBX_SC_FILE }, { "mknodat", 0, SBX_SC_FILE },
	{ "utime", 0, SBX_SC_FILE }, { "utimes", 0, SBX_SC_FILE },
	{ "utimensat", 0, SBX_SC_FILE }, { "futimesat", 0, SBX_SC_FILE },
	{ "setxattr", 0, SBX_SC_FILE }, { "lsetxattr", 0, SBX_SC_FILE },
	{ "fsetxattr", 0, SBX_SC_FILE }, { "removexattr", 0, SBX_SC_FILE },
	{ "lremovexattr", 0, SBX_SC_FILE }, { "fremovexattr", 0, SBX_SC_FILE },
};

/*
 * Everything else gets the default EPERM; deliberately so, among others:
 * ptrace, process_vm_readv/writev, kcmp, pidfd_open, pidfd_getfd,
 * pidfd_send_signal (pidfd_open would only reach our own processes, but no
 * workload needs it and pidfd_getfd is the step after it), mount, umount2,
 * pivot_root, chroot, move_mount, open_tree, fsopen, fsconfig, fsmount,
 * fspick, mount_setattr, unshare, setns, bpf, perf_event_open, keyctl,
 * add_key, request_key, init_module, finit_module, delete_module,
 * kexec_load, kexec_file_load, userfaultfd, personality, capset and the set*id
 * calls, inotify/fanotify, SysV IPC, name_to_handle_at/open_by_handle_at.
 * (libseccomp refuses rules whose action equals the default, so they are
 * not listed; the unit test checks a sample of them.)
 */

/* ioctl requests CPython issues on its own descriptors (isatty, terminal size, FD flags). */
static const unsigned long sbx_ioctl_ok[] = {
	TCGETS, TIOCGWINSZ, FIONREAD, FIOCLEX, FIONCLEX, FIONBIO,
};

/*
 * prctl options: thread names and queries. PR_CAP_AMBIENT can only read or
 * lower here: raising is locked off by the securebits (sbx_caps.c).
 */
static const int sbx_prctl_ok[] = {
	PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS,
	PR_GET_SECCOMP, PR_CAPBSET_READ, PR_GET_SECUREBITS, PR_GET_KEEPCAPS,
	PR_GET_TIMERSLACK, PR_SET_VMA, PR_CAP_AMBIENT,
};

/* Flags that would give a new namespace to the new process or thread. */
#define SBX_CLONE_NS	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
	CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* open() flags that ask to change the file tree or a file. */
static const int sbx_open_write[] = { O_WRONLY, O_RDWR, O_CREAT, O_TRUNC };
#define SBX_OPEN_WRITE	(O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

static int
sbx_sc_nr(const struct sbx_sc *e)
{
	int	nr = seccomp_syscall_resolve_name(e->sc_name);

	if (nr == __NR_SCMP_ERROR || nr < 0)
		return e->sc_nr > 0 ? e->sc_nr : -1;
	return nr;
}

static int
sbx_sc_add(scmp_filter_ctx ctx, uint32_t act, int nr, unsigned cnt,
    const struct scmp_arg_cmp *cmp, const char *what, char *err, size_t errlen)
{
	int	rc;

	rc = seccomp_rule_add_array(ctx, act, nr, cnt, cmp);
	if (rc < 0) {
		sbx_errf(err, errlen, -rc, "sbx_seccomp: rule for %s", what);
		return -1;
	}
	return 0;
}

/* open (flags in arg 1) or openat (flags in arg 2) without /tmp: read-only opens only. */
static int
sbx_sc_open(scmp_filter_ctx ctx, int nr, unsigned arg, const char *what,
    char *err, size_t errlen)
{
	struct scmp_arg_cmp	c;
	size_t			i;

	c = (struct scmp_arg_cmp){ arg, SCMP_CMP_MASKED_EQ, SBX_OPEN_WRITE, 0 };
	if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, nr, 1, &c, what, err, errlen) == -1)
		return -1;
	for (i = 0; i < sizeof(sbx_open_write) / sizeof(sbx_open_write[0]); i++) {
		c = (struct scmp_arg_cmp){ arg, SCMP_CMP_MASKED_EQ,
		    (scmp_datum_t)sbx_open_write[i], (scmp_datum_t)sbx_open_write[i] };
		if (sbx_sc_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 1, &c, what, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static int
sbx_sc_rules(scmp_filter_ctx ctx, int tmp_on, char *err, size_t errlen)
{
	struct scmp_arg_cmp	c;
	const struct sbx_sc	*e;
	uint32_t		act;
	size_t			i;
	int			nr;

	for (i = 0; i < sizeof(sbx_sc_table) / sizeof(sbx_sc_table[0]); i++) {
		e = &sbx_sc_table[i];
		/* Unknown to libseccomp and to us: it gets the default. */
		if ((nr = sbx_sc_nr(e)) < 0)
			continue;
		switch (e->sc_act) {
		case SBX_SC_ALLOW:
			act = SCMP_ACT_ALLOW;
			break;
		case SBX_SC_EACCES:
			act = SCMP_ACT_ERRNO(EACCES);
			break;
		case SBX_SC_ENOSYS:
			act = SCMP_ACT_ERRNO(ENOSYS);
			break;
		case SBX_SC_FILE:
			act = tmp_on ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EACCES);
			break;
		default:
			sbx_errf(err, errlen, 0, "sbx_seccomp: bad table entry %s", e->sc_name);
			return -1;
		}
		if (sbx_sc_add(ctx, act, nr, 0, NULL, e->sc_name, err, errlen) == -1)
			return -1;
	}

	if (tmp_on) {
		if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 0, NULL, "open",
		    err, errlen) == -1 ||
		    sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 0, NULL, "openat",
		    err, errlen) == -1)
			return -1;
	} else if (sbx_sc_open(ctx, SCMP_SYS(open), 1, "open", err, errlen) == -1 ||
	    sbx_sc_open(ctx, SCMP_SYS(openat), 2, "openat", err, errlen) == -1)
		return -1;

	/*
	 * fork, vfork and threads (glibc uses clone once clone3 says ENOSYS);
	 * never with a new namespace: a user namespace would hand user code
	 * a full capability set over its own namespaces.
	 */
	c = (struct scmp_arg_cmp){ 0, SCMP_CMP_MASKED_EQ, SBX_CLONE_NS, 0 };
	if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &c, "clone", err, errlen) == -1)
		return -1;

	/*
	 * socketpair(AF_UNIX) only: asyncio needs one for its self-pipe, and
	 * multiprocessing-style helpers use them. Both ends are born in this
	 * process, connected to each other and unnamed; they reach nothing
	 * outside it. Other families get EACCES like socket().
	 */
	c = (struct scmp_arg_cmp){ 0, SCMP_CMP_EQ, AF_UNIX, 0 };
	if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, &c, "socketpair",
	    err, errlen) == -1)
		return -1;
	c = (struct scmp_arg_cmp){ 0, SCMP_CMP_NE, AF_UNIX, 0 };
	if (sbx_sc_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 1, &c, "socketpair",
	    err, errlen) == -1)
		return -1;

	/*
	 * ioctl: a short list rather than all of it. The child holds no
	 * terminal and no device beyond null/zero/urandom, so CPython's own
	 * requests are all it needs, and the list shuts out whatever a
	 * future driver or socket family adds (TIOCSTI-style surprises).
	 * Unlisted requests get EPERM, which callers treat like ENOTTY.
	 */
	for (i = 0; i < sizeof(sbx_ioctl_ok) / sizeof(sbx_ioctl_ok[0]); i++) {
		c = (struct scmp_arg_cmp){ 1, SCMP_CMP_EQ, sbx_ioctl_ok[i], 0 };
		if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &c, "ioctl",
		    err, errlen) == -1)
			return -1;
	}
	for (i = 0; i < sizeof(sbx_prctl_ok) / sizeof(sbx_prctl_ok[0]); i++) {
		c = (struct scmp_arg_cmp){ 0, SCMP_CMP_EQ, (scmp_datum_t)sbx_prctl_ok[i], 0 };
		if (sbx_sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, &c, "prctl",
		    err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * Our own first instructions, ahead of libseccomp's program: any
 * architecture but x86_64 (an i386 call made with int $0x80 from a 64-bit
 * process) and any x32 call (number with __X32_SYSCALL_BIT, same audit
 * arch) kill the process before a rule is looked at. libseccomp does both
 * checks too (bad-arch action, x32 number check); these hold whatever its
 * version does, and x32 and 32-bit entry points are exactly how past
 * filters were bypassed (lessons.md).
 */
static const struct sock_filter sbx_bpf_prologue[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};
#define SBX_PROLOGUE_LEN	(sizeof(sbx_bpf_prologue) / sizeof(sbx_bpf_prologue[0]))

/* libseccomp 2.5 exports only to a descriptor: go through a memfd. */
static struct sbx_bpf *
sbx_bpf_export(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	struct sbx_bpf	*b = NULL;
	struct stat	 st;
	size_t		 n, len;
	ssize_t		 r;
	int		 fd, rc;

	if ((fd = memfd_create("sbx-bpf", MFD_CLOEXEC)) == -1) {
		sbx_errf(err, errlen, errno, "sbx_seccomp: memfd_create");
		return NULL;
	}
	if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
		sbx_errf(err, errlen, -rc, "sbx_seccomp: export");
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		sbx_errf(err, errlen, errno, "sbx_seccomp: fstat");
		goto fail;
	}
	n = (size_t)st.st_size;
	if (n == 0 || n % sizeof(struct sock_filter) != 0 ||
	    n / sizeof(struct sock_filter) + SBX_PROLOGUE_LEN > BPF_MAXINSNS) {
		sbx_errf(err, errlen, 0, "sbx_seccomp: exported program has bad size %zu", n);
		goto fail;
	}
	len = n / sizeof(struct sock_filter) + SBX_PROLOGUE_LEN;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->b_insns = calloc(len, sizeof(struct sock_filter))) == NULL) {
		sbx_errf(err, errlen, errno, "sbx_seccomp");
		goto fail;
	}
	memcpy(b->b_insns, sbx_bpf_prologue, sizeof(sbx_bpf_prologue));
	if ((r = pread(fd, b->b_insns + SBX_PROLOGUE_LEN, n, 0)) != (ssize_t)n) {
		sbx_errf(err, errlen, r == -1 ? errno : EIO, "sbx_seccomp: read back");
		goto fail;
	}
	b->b_len = (unsigned short)len;
	close(fd);
	return b;
fail:
	sbx_seccomp_free(b);
	close(fd);
	return NULL;
}

struct sbx_bpf *
sbx_seccomp_prepare(int tmp_on, char *err, size_t errlen)
{
	scmp_filter_ctx	 ctx;
	struct sbx_bpf	*b = NULL;
	int		 rc;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL) {
		sbx_errf(err, errlen, 0, "sbx_seccomp: seccomp_init failed");
		return NULL;
	}
	/*
	 * Native arch only (libseccomp's default): every other arch hits
	 * the bad-arch action. NNP is set by sbx_caps, not at load (we do
	 * not load through libseccomp). The binary-tree layout keeps the
	 * cost of the hot calls (read, futex, mmap) low with ~200 rules.
	 */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0) {
		sbx_errf(err, errlen, -rc, "sbx_seccomp: filter attributes");
		goto out;
	}
	if (sbx_sc_rules(ctx, tmp_on, err, errlen) == -1)
		goto out;
	b = sbx_bpf_export(ctx, err, errlen);
out:
	seccomp_release(ctx);
	return b;
}

int
sbx_seccomp_child(const struct sbx_bpf *b, char *err, size_t errlen)
{
	struct sock_fprog	prog;

	prog.len = b->b_len;
	prog.filter = b->b_insns;
	/* No TSYNC: the child is single-threaded here, and every later thread inherits the filter. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1) {
		sbx_errf(err, errlen, errno, "sbx_seccomp: install filter");
		return -1;
	}
	return 0;
}

void
sbx_seccomp_free(struct sbx_bpf *b)
{
	if (b == NULL)
		return;
	free(b->b_insns);
	free(b);
}
