/*
 * Unit test of sandbox/: escape probes run inside the real sandbox.
 *
 * Shape (style-anchors.md, convention 14 and the nsjail anchor): for each
 * configuration a forked "zygote" calls sbx_prepare (so this process's mount
 * namespace is untouched), then for each probe unshares CLONE_NEWPID, forks
 * a child, setns()es back as the real zygote does, and the child calls
 * sbx_enter and runs the probe. A probe exits with SBX_T_SENTINEL only if
 * every forbidden action failed with the expected errno (or, for the kill
 * probes, dies of SIGSYS). Results travel to this process over a pipe and
 * are printed as TAP. Exit status 0 only if everything passed.
 *
 * Needs root (it builds mount namespaces); without it, one SKIP line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sbx.h"

#ifndef PYEXEC_PY_STDLIB
#define PYEXEC_PY_STDLIB	"/usr/lib/python3.11"
#endif
#ifndef PYEXEC_PY_SITE
#define PYEXEC_PY_SITE		"/usr/lib/python3/dist-packages"
#endif
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT	0x40000000
#endif

#define SBX_T_UID	900123
#define SBX_T_GID	900123
#define SBX_T_SENTINEL	42	/* "the forbidden thing failed as expected" */
#define SBX_T_ENTER_FAIL 99	/* sbx_enter itself failed */
#define SBX_T_KEEP_FD	3	/* max_keep_fd given to sbx_enter */
#define SBX_T_LIBDIR	"/usr/lib/x86_64-linux-gnu"

/* Configuration under test, known to the probes (they run in forks of it). */
static struct sbx_params	 t_params;
static int			 t_abi;		/* Landlock ABI, from sbx_describe */
static int			 t_out = -1;	/* result pipe, zygote side */

/* ---- probe helpers (run inside the sandboxed child) ---- */

#define FAILF(...) do { dprintf(2, "    # " __VA_ARGS__); dprintf(2, "\n"); return 1; } while (0)

/* call must return -1 with errno e. */
#define WANT_ERR(call, e) do {						\
	long r_; errno = 0; r_ = (long)(call);				\
	if (r_ != -1 || errno != (e))					\
		FAILF("%s: got %ld errno %d (%s), want %s", #call, r_,	\
		    errno, strerror(errno), #e);			\
} while (0)

/* call must return -1 with errno e1 or e2 (which layer answers first may vary). */
#define WANT_ERR2(call, e1, e2) do {					\
	long r_; errno = 0; r_ = (long)(call);				\
	if (r_ != -1 || (errno != (e1) && errno != (e2)))		\
		FAILF("%s: got %ld errno %d (%s), want %s or %s", #call,	\
		    r_, errno, strerror(errno), #e1, #e2);		\
} while (0)

#define WANT(cond) do {							\
	if (!(cond))							\
		FAILF("%s: false (errno %d %s)", #cond, errno, strerror(errno)); \
} while (0)

static int
p_etc_passwd(void)
{
	WANT_ERR(open("/etc/passwd", O_RDONLY), ENOENT);
	WANT_ERR(open("/etc/hostname", O_RDONLY), ENOENT);
	return SBX_T_SENTINEL;
}

static int
p_write_eacces(void)
{
	WANT_ERR(open("/sandbox/new", O_WRONLY | O_CREAT, 0644), EACCES);
	WANT_ERR(open("x", O_WRONLY | O_CREAT | O_TRUNC, 0644), EACCES);
	WANT_ERR(open(PYEXEC_PY_STDLIB "/os.py", O_RDWR), EACCES);
	WANT_ERR(open(PYEXEC_PY_STDLIB "/os.py", O_RDONLY | O_TRUNC), EACCES);
	WANT_ERR(openat(AT_FDCWD, "/new", O_WRONLY | O_CREAT, 0644), EACCES);
	WANT_ERR(creat("y", 0644), EACCES);
	WANT_ERR(open("/dev/null", O_WRONLY), EACCES);
	return SBX_T_SENTINEL;
}

static int
p_file_changes(void)
{
	struct timespec	ts[2] = { { 0, 0 }, { 0, 0 } };

	WANT_ERR(unlink(PYEXEC_PY_STDLIB "/os.py"), EACCES);
	WANT_ERR(unlinkat(AT_FDCWD, "file.txt", 0), EACCES);
	WANT_ERR(rmdir(PYEXEC_PY_STDLIB), EACCES);
	WANT_ERR(mkdir("d", 0755), EACCES);
	WANT_ERR(rename(PYEXEC_PY_STDLIB "/os.py", "/sandbox/os.py"), EACCES);
	WANT_ERR(link(PYEXEC_PY_STDLIB "/os.py", "l"), EACCES);
	WANT_ERR(symlink("/", "s"), EACCES);
	WANT_ERR(chmod(PYEXEC_PY_STDLIB "/os.py", 0777), EACCES);
	WANT_ERR(chown(PYEXEC_PY_STDLIB "/os.py", SBX_T_UID, SBX_T_GID), EACCES);
	WANT_ERR(truncate(PYEXEC_PY_STDLIB "/os.py", 0), EACCES);
	WANT_ERR(utimensat(AT_FDCWD, PYEXEC_PY_STDLIB "/os.py", ts, 0), EACCES);
	WANT_ERR(mknod("n", S_IFIFO | 0600, 0), EACCES);
	return SBX_T_SENTINEL;
}

static int
p_socket(void)
{
	WANT_ERR(socket(AF_INET, SOCK_DGRAM, 0), EACCES);
	WANT_ERR(socket(AF_INET, SOCK_STREAM, 0), EACCES);
	WANT_ERR(socket(AF_INET6, SOCK_DGRAM, 0), EACCES);
	WANT_ERR(socket(AF_UNIX, SOCK_STREAM, 0), EACCES);
	WANT_ERR(socket(AF_NETLINK, SOCK_RAW, 0), EACCES);
	WANT_ERR(socket(AF_PACKET, SOCK_RAW, 0), EACCES);
	return SBX_T_SENTINEL;
}

static int
p_socketpair(void)
{
	struct sockaddr_un	sun;
	int			sv[2];
	char			c = 0;

	WANT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	WANT(write(sv[0], "z", 1) == 1 && read(sv[1], &c, 1) == 1 && c == 'z');
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, "\0sbx-x", 6);
	WANT_ERR(connect(sv[0], (struct sockaddr *)&sun, sizeof(sun)), EACCES);
	WANT_ERR(bind(sv[0], (struct sockaddr *)&sun, sizeof(sun)), EACCES);
	WANT_ERR(listen(sv[0], 1), EACCES);
	WANT_ERR(socketpair(AF_INET, SOCK_STREAM, 0, sv), EACCES);
	return SBX_T_SENTINEL;
}

static int
p_exec(void)
{
	char	*argv[] = { "x", NULL }, *envp[] = { NULL };

	WANT_ERR(execve(SBX_T_LIBDIR "/libc.so.6", argv, envp), EACCES);
	WANT_ERR(execve("/usr/bin/id", argv, envp), EACCES);
	WANT_ERR(syscall(SYS_execveat, AT_FDCWD, SBX_T_LIBDIR "/libc.so.6", argv, envp, 0),
	    EACCES);
	return SBX_T_SENTINEL;
}

static int
p_ptrace(void)
{
	pid_t	pid;
	int	st;

	WANT_ERR(ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
	if ((pid = fork()) == 0) {
		pause();
		_exit(0);
	}
	WANT(pid > 0);
	WANT_ERR(ptrace(PTRACE_ATTACH, pid, NULL, NULL), EPERM);
	WANT_ERR(ptrace(PTRACE_SEIZE, pid, NULL, NULL), EPERM);
	{
		char		buf[8];
		struct iovec	l = { buf, sizeof(buf) }, r = { (void *)&st, sizeof(buf) };

		WANT_ERR(syscall(SYS_process_vm_readv, pid, &l, 1, &r, 1, 0), EPERM);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return SBX_T_SENTINEL;
}

static int
p_mount(void)
{
	WANT_ERR(mount("none", "/sandbox", "tmpfs", 0, NULL), EPERM);
	WANT_ERR(umount2(PYEXEC_PY_STDLIB, MNT_DETACH), EPERM);
	WANT_ERR(syscall(SYS_pivot_root, ".", "."), EPERM);
	WANT_ERR(chroot("/usr"), EPERM);
	WANT_ERR(syscall(SYS_fsopen, "tmpfs", 0), EPERM);
	WANT_ERR(syscall(SYS_open_tree, AT_FDCWD, "/usr", 0), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_unshare(void)
{
	WANT_ERR(unshare(CLONE_NEWUSER), EPERM);
	WANT_ERR(unshare(CLONE_NEWNS), EPERM);
	WANT_ERR(unshare(CLONE_NEWNET), EPERM);
	WANT_ERR(setns(0, 0), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_clone_ns(void)
{
	long	r;

	/* If the filter let these through, the clone's child leaves at once. */
	errno = 0;
	r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	if (r != -1 || errno != EPERM)
		FAILF("clone(CLONE_NEWUSER): %ld errno %d", r, errno);
	errno = 0;
	r = syscall(SYS_clone, CLONE_NEWNET | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	if (r != -1 || errno != EPERM)
		FAILF("clone(CLONE_NEWNET): %ld errno %d", r, errno);
	return SBX_T_SENTINEL;
}

static int
p_clone3_uring(void)
{
	uint64_t	args[11];
	char		params[120];
	uint64_t	how[3] = { O_RDONLY, 0, 0 };

	memset(args, 0, sizeof(args));
	memset(params, 0, sizeof(params));
	args[4] = SIGCHLD;	/* exit_signal */
	WANT_ERR(syscall(SYS_clone3, args, sizeof(args)), ENOSYS);
	WANT_ERR(syscall(SYS_io_uring_setup, 8, params), ENOSYS);
	WANT_ERR(syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0), ENOSYS);
	WANT_ERR(syscall(SYS_openat2, AT_FDCWD, "/", how, sizeof(how)), ENOSYS);
	return SBX_T_SENTINEL;
}

/* Must die of SIGSYS: the x32 ABI is killed before any rule is read. */
static int
p_x32(void)
{
	syscall(__X32_SYSCALL_BIT | SYS_getpid);
	return 1;
}

/* Must die of SIGSYS: an i386 call (int $0x80) from a 64-bit process. */
static int
p_i386(void)
{
	long	ret;

	__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory");	/* i386 getpid */
	(void)ret;
	return 1;
}

static int
p_caps(void)
{
	struct __user_cap_header_struct	h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	d[2];
	int				cap, want;

	memset(d, 0xff, sizeof(d));
	WANT(syscall(SYS_capget, &h, d) == 0);
	WANT(d[0].effective == 0 && d[0].permitted == 0 && d[0].inheritable == 0);
	WANT(d[1].effective == 0 && d[1].permitted == 0 && d[1].inheritable == 0);
	for (cap = 0; cap <= 63; cap++) {
		int	b = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (b == -1 && errno == EINVAL)
			break;
		if (b != 0)
			FAILF("bounding set still has cap %d (%d)", cap, b);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) != 0)
			FAILF("ambient set has cap %d", cap);
	}
	WANT(cap > 30);
	want = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
	    SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
	    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	WANT((prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) & want) == want);
	WANT_ERR(syscall(SYS_capset, &h, d), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_ids(void)
{
	uid_t	r, e, s;
	gid_t	rg, eg, sg;

	WANT(getresuid(&r, &e, &s) == 0 && r == SBX_T_UID && e == SBX_T_UID && s == SBX_T_UID);
	WANT(getresgid(&rg, &eg, &sg) == 0 && rg == SBX_T_GID && eg == SBX_T_GID &&
	    sg == SBX_T_GID);
	WANT(getgroups(0, NULL) == 0);
	WANT_ERR(setuid(0), EPERM);
	WANT_ERR(setgid(0), EPERM);
	WANT_ERR(setgroups(0, NULL), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_nnp(void)
{
	WANT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	WANT(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2);
	WANT(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
	return SBX_T_SENTINEL;
}

static int
p_root_contents(void)
{
	static const char *const	absent[] = { "/proc", "/sys", "/home", "/root", "/var",
	    "/run", "/tmp", "/etc/passwd", "/usr/bin", "/bin/sh", "/dev/shm", "/dev/tty" };
	static const char *const	want[] = { "dev", "etc", "lib", "sandbox", "usr" };
	struct stat			st;
	struct dirent			*de;
	DIR				*d;
	size_t				i, n = 0;

	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (stat(absent[i], &st) == 0 || errno != ENOENT)
			FAILF("%s: present or not ENOENT (errno %d)", absent[i], errno);
	WANT_ERR(open("/proc/self/mem", O_RDONLY), ENOENT);
	WANT((d = opendir("/")) != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strcmp(de->d_name, want[i]) == 0)
				break;
		if (i == sizeof(want) / sizeof(want[0]))
			FAILF("unexpected /%s", de->d_name);
		n++;
	}
	closedir(d);
	WANT(n == sizeof(want) / sizeof(want[0]));
	WANT((d = opendir("/etc")) != NULL);
	n = 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "alternatives") != 0)
			FAILF("unexpected /etc/%s", de->d_name);
	closedir(d);
	return SBX_T_SENTINEL;
}

static int
p_devices(void)
{
	unsigned char	buf[64];
	int		fd;
	size_t		i;

	WANT((fd = open("/dev/null", O_RDONLY)) >= 0);
	WANT(read(fd, buf, sizeof(buf)) == 0);
	close(fd);
	WANT(write(0, "x", 1) == 1);	/* fd 0 is /dev/null, opened before the sandbox */
	WANT((fd = open("/dev/urandom", O_RDONLY)) >= 0);
	WANT(read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
	WANT((fd = open("/dev/zero", O_RDONLY)) >= 0);
	WANT(read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		WANT(buf[i] == 0);
	close(fd);
	WANT(getrandom(buf, 16, 0) == 16);
	return SBX_T_SENTINEL;
}

static int
p_fork(void)
{
	pid_t	pid;
	int	st;

	if ((pid = fork()) == 0)
		_exit(7);
	WANT(pid > 0);
	WANT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	return SBX_T_SENTINEL;
}

static void *
p_thread_fn(void *arg)
{
	return (char *)arg + 1;
}

static int
p_threads(void)
{
	pthread_t	th[4];
	void		*rv;
	static char	base[8];
	int		i;

	for (i = 0; i < 4; i++)
		WANT(pthread_create(&th[i], NULL, p_thread_fn, base + i) == 0);
	for (i = 0; i < 4; i++) {
		WANT(pthread_join(th[i], &rv) == 0);
		WANT(rv == base + i + 1);
	}
	return SBX_T_SENTINEL;
}

static int
p_fds(void)
{
	int	fd;

	WANT(fcntl(0, F_GETFD) != -1 && fcntl(1, F_GETFD) != -1 && fcntl(2, F_GETFD) != -1);
	WANT(fcntl(SBX_T_KEEP_FD, F_GETFD) != -1);
	for (fd = SBX_T_KEEP_FD + 1; fd < 128; fd++)
		WANT_ERR(fcntl(fd, F_GETFD), EBADF);
	return SBX_T_SENTINEL;
}

static int
p_python_files(void)
{
	char	buf[256];
	int	fd;
	DIR	*d;

	WANT((fd = open(PYEXEC_PY_STDLIB "/os.py", O_RDONLY)) >= 0);
	WANT(read(fd, buf, sizeof(buf)) > 0);
	close(fd);
	WANT((d = opendir(PYEXEC_PY_STDLIB "/lib-dynload")) != NULL);
	closedir(d);
	WANT((fd = open(PYEXEC_PY_SITE "/numpy/__init__.py", O_RDONLY)) >= 0);
	close(fd);
	/* Through libblas.so.3 -> /etc/alternatives/... -> blas/libblas.so.3. */
	WANT((fd = open(SBX_T_LIBDIR "/libblas.so.3", O_RDONLY)) >= 0);
	close(fd);
	WANT((fd = open("/usr/share/zoneinfo/UTC", O_RDONLY)) >= 0);
	close(fd);
	return SBX_T_SENTINEL;
}

static int
p_cwd_host(void)
{
	char		buf[64];
	struct utsname	u;
	DIR		*d;
	struct dirent	*de;

	WANT(getcwd(buf, sizeof(buf)) != NULL && strcmp(buf, "/sandbox") == 0);
	WANT((d = opendir(".")) != NULL);
	while ((de = readdir(d)) != NULL)
		WANT(de->d_name[0] == '.');
	closedir(d);
	WANT(uname(&u) == 0 && strcmp(u.nodename, "pyexec") == 0);
	WANT(getpid() == 1);
	return SBX_T_SENTINEL;
}

static int
p_misc_denied(void)
{
	WANT_ERR(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	WANT_ERR(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	WANT_ERR(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
	WANT_ERR(syscall(SYS_add_key, "user", "d", "x", 1, 0), EPERM);
	WANT_ERR(syscall(SYS_request_key, "user", "d", NULL, 0), EPERM);
	WANT_ERR(syscall(SYS_userfaultfd, 0), EPERM);
	WANT_ERR(syscall(SYS_kcmp, 1, 1, 0, 0, 0), EPERM);
	WANT_ERR(syscall(SYS_pidfd_open, 1, 0), EPERM);
	WANT_ERR(syscall(SYS_pidfd_getfd, 0, 0, 0), EPERM);
	WANT_ERR(syscall(SYS_init_module, NULL, 0, ""), EPERM);
	WANT_ERR(syscall(SYS_finit_module, 0, "", 0), EPERM);
	WANT_ERR(syscall(SYS_delete_module, "x", 0), EPERM);
	WANT_ERR(syscall(SYS_kexec_load, 0, 0, NULL, 0), EPERM);
	WANT_ERR(syscall(SYS_personality, 0x0040000), EPERM);
	WANT_ERR(syscall(SYS_inotify_init1, 0), EPERM);
	WANT_ERR(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), EPERM);
	WANT_ERR(prctl(PR_SET_SECCOMP, 0, 0, 0, 0), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_ioctl(void)
{
	char	c = 'x';
	int	n;

	WANT_ERR(ioctl(0, TIOCSTI, &c), EPERM);	/* not on the list */
	WANT_ERR(ioctl(0, TCGETS + 0x100000000UL, &c), EPERM);	/* high bits: no match */
	WANT_ERR(ioctl(0, TIOCGWINSZ, &c), ENOTTY);	/* allowed, the kernel answers */
	WANT(ioctl(0, FIOCLEX) == 0 && ioctl(0, FIONCLEX) == 0);
	WANT(ioctl(SBX_T_KEEP_FD, FIONREAD, &n) == 0);
	return SBX_T_SENTINEL;
}

static int
p_rlimits(void)
{
	struct rlimit	rl;

	WANT(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);
	WANT(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == t_params.sp_nofile &&
	    rl.rlim_max == t_params.sp_nofile);
	WANT(getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur == t_params.sp_nproc &&
	    rl.rlim_max == t_params.sp_nproc);
	WANT(getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
	    rl.rlim_max == (rlim_t)t_params.sp_fsize_mb << 20);
	rl.rlim_cur = rl.rlim_max = t_params.sp_nofile + 1;
	WANT_ERR(setrlimit(RLIMIT_NOFILE, &rl), EPERM);
	return SBX_T_SENTINEL;
}

static int
p_memfd(void)
{
	char	buf[4] = { 0 };
	int	fd;

	WANT((fd = memfd_create("t", MFD_CLOEXEC)) >= 0);
	WANT(ftruncate(fd, 1 << 20) == 0);
	WANT(pwrite(fd, "abc", 3, 4096) == 3);
	WANT(pread(fd, buf, 3, 4096) == 3 && memcmp(buf, "abc", 3) == 0);
	close(fd);
	return SBX_T_SENTINEL;
}

static int
p_nproc(void)
{
	pid_t	pids[256];
	int	n = 0, i, st, err = 0;

	/* The per-uid process cap holds once we are not root. */
	for (i = 0; i < (int)t_params.sp_nproc + 8 && i < 256; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			pause();
			_exit(0);
		}
		if (pid == -1) {
			err = errno;
			break;
		}
		pids[n++] = pid;
	}
	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < n; i++)
		waitpid(pids[i], &st, 0);
	if (err != EAGAIN || n >= (int)t_params.sp_nproc)
		FAILF("forked %d children, last errno %d", n, err);
	return SBX_T_SENTINEL;
}

/* Signal scope: the zygote's helper puts a same-uid, unsandboxed process in our PID namespace. */
static int
p_signal_scope(void)
{
	int32_t	target = 0;

	WANT(write(SBX_T_KEEP_FD, "R", 1) == 1);
	WANT(read(SBX_T_KEEP_FD, &target, sizeof(target)) == (ssize_t)sizeof(target));
	WANT(target > 1);
	WANT(kill(getpid(), 0) == 0);
	WANT_ERR(kill(target, 0), EPERM);
	WANT_ERR(kill(target, SIGTERM), EPERM);
	(void)!write(SBX_T_KEEP_FD, "D", 1);
	return SBX_T_SENTINEL;
}

/* ---- configuration /tmp on ---- */

static int
p_tmp_works(void)
{
	struct stat	st;
	char		buf[8] = { 0 };
	int		fd;

	WANT(stat("/tmp", &st) == 0 && st.st_uid == SBX_T_UID && (st.st_mode & 0777) == 0700);
	WANT((fd = open("/tmp/a", O_RDWR | O_CREAT | O_EXCL, 0600)) >= 0);
	WANT(write(fd, "hello", 5) == 5 && pread(fd, buf, 5, 0) == 5 && strcmp(buf, "hello") == 0);
	WANT(ftruncate(fd, 2) == 0);
	close(fd);
	WANT(rename("/tmp/a", "/tmp/b") == 0);
	WANT(mkdir("/tmp/d", 0700) == 0 && rename("/tmp/b", "/tmp/d/b") == 0);
	WANT(symlink("d/b", "/tmp/l") == 0 && unlink("/tmp/l") == 0);
	WANT(unlink("/tmp/d/b") == 0 && rmdir("/tmp/d") == 0);
	WANT((fd = open("/dev/null", O_RDWR)) >= 0 && write(fd, "x", 1) == 1);
	close(fd);
	return SBX_T_SENTINEL;
}

static int
p_tmp_outside(void)
{
	/* Seccomp lets these through now; the read-only mounts and Landlock refuse. */
	WANT_ERR2(open("/sandbox/f", O_WRONLY | O_CREAT, 0644), EROFS, EACCES);
	WANT_ERR2(open(PYEXEC_PY_STDLIB "/os.py", O_RDWR), EROFS, EACCES);
	WANT_ERR2(unlink(PYEXEC_PY_STDLIB "/os.py"), EROFS, EACCES);
	WANT_ERR2(mkdir("/sandbox/d", 0755), EROFS, EACCES);
	WANT_ERR2(rename("/tmp", "/sandbox/t"), EROFS, EACCES);
	WANT_ERR(open("/dev/urandom", O_WRONLY), EACCES);	/* Landlock: read-only rule */
	return SBX_T_SENTINEL;
}

static int
p_tmp_limits(void)
{
	static char	chunk[256 << 10];
	struct rlimit	rl;
	size_t		fsize = (size_t)t_params.sp_fsize_mb << 20, total = 0, i;
	ssize_t		w;
	char		name[32];
	int		fd, files = 0;

	signal(SIGXFSZ, SIG_IGN);
	/* One file may not pass RLIMIT_FSIZE. */
	WANT((fd = open("/tmp/big", O_WRONLY | O_CREAT, 0600)) >= 0);
	for (i = 0; i <= fsize / sizeof(chunk); i++)
		if (write(fd, chunk, sizeof(chunk)) == -1)
			break;
	WANT(i == fsize / sizeof(chunk) && errno == EFBIG);
	close(fd);
	/* All files together may not pass the tmpfs size. */
	WANT(getrlimit(RLIMIT_FSIZE, &rl) == 0);
	for (files = 0; files < 64; files++) {
		snprintf(name, sizeof(name), "/tmp/f%d", files);
		WANT((fd = open(name, O_WRONLY | O_CREAT, 0600)) >= 0);
		for (i = 0; i < fsize / sizeof(chunk); i++) {
			if ((w = write(fd, chunk, sizeof(chunk))) == -1)
				break;
			total += (size_t)w;
		}
		close(fd);
		if (i < fsize / sizeof(chunk))
			break;
	}
	if (errno != ENOSPC || total > ((size_t)t_params.sp_tmp_mb << 20))
		FAILF("wrote %zu bytes in %d files, errno %d", total, files, errno);
	return SBX_T_SENTINEL;
}

static int
p_tmp_noexec(void)
{
	static char	page[4096];
	void		*m;
	int		fd;

	WANT((fd = open("/tmp/x.so", O_RDWR | O_CREAT, 0700)) >= 0);
	WANT(write(fd, page, sizeof(page)) == (ssize_t)sizeof(page));
	m = mmap(NULL, sizeof(page), PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	if (m != MAP_FAILED || errno != EPERM)
		FAILF("mmap PROT_EXEC of a /tmp file: %p errno %d", m, errno);
	close(fd);
	return SBX_T_SENTINEL;
}

/* ---- configuration seccomp off: the layers under it ---- */

static int
p_net_lo_only(void)
{
	struct if_nameindex	*ifs;
	struct sockaddr_in	 sin;
	int			 n, s;

	WANT((ifs = if_nameindex()) != NULL);
	for (n = 0; ifs[n].if_index != 0; n++)
		if (strcmp(ifs[n].if_name, "lo") != 0)
			FAILF("interface %s in the sandbox", ifs[n].if_name);
	if_freenameindex(ifs);
	WANT(n == 1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	sin.sin_addr.s_addr = inet_addr("1.1.1.1");
	WANT((s = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
	WANT_ERR(connect(s, (struct sockaddr *)&sin, sizeof(sin)), ENETUNREACH);
	close(s);
	/* TCP: Landlock (ABI >= 4) refuses before routing does. */
	sin.sin_addr.s_addr = inet_addr("127.0.0.1");
	WANT((s = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	if (t_abi >= 4)
		WANT_ERR(connect(s, (struct sockaddr *)&sin, sizeof(sin)), EACCES);
	else
		WANT_ERR(connect(s, (struct sockaddr *)&sin, sizeof(sin)), ENETUNREACH);
	close(s);
	return SBX_T_SENTINEL;
}

static int
p_layers_no_seccomp(void)
{
	char	*argv[] = { "x", NULL }, *envp[] = { NULL };

	WANT_ERR2(open("/sandbox/f", O_WRONLY | O_CREAT, 0644), EROFS, EACCES);
	WANT_ERR2(unlink(PYEXEC_PY_STDLIB "/os.py"), EROFS, EACCES);
	WANT_ERR2(mkdir("/sandbox/d", 0755), EROFS, EACCES);
	WANT_ERR(mount("none", "/sandbox", "tmpfs", 0, NULL), EPERM);
	WANT_ERR(chroot("/usr"), EPERM);
	WANT_ERR(setuid(0), EPERM);
	WANT_ERR(open("/dev/urandom", O_WRONLY), EACCES);	/* Landlock */
	/* libc.so.6 is an executable ELF; only Landlock's missing EXECUTE right stops it. */
	if (t_abi >= 1)
		WANT_ERR(execve(SBX_T_LIBDIR "/libc.so.6", argv, envp), EACCES);
	return SBX_T_SENTINEL;
}

#define SBX_T_ABSTRACT	"\0sbx-test-scope"

static int
p_abstract_scope(void)
{
	struct sockaddr_un	sun, own;
	socklen_t		len = offsetof(struct sockaddr_un, sun_path) + sizeof(SBX_T_ABSTRACT) - 1;
	char			c;
	int			s, l;

	WANT(write(SBX_T_KEEP_FD, "R", 1) == 1);
	WANT(read(SBX_T_KEEP_FD, &c, 1) == 1 && c == 'L');
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, SBX_T_ABSTRACT, sizeof(SBX_T_ABSTRACT) - 1);
	WANT((s = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	WANT_ERR(connect(s, (struct sockaddr *)&sun, len), EPERM);
	close(s);
	/* Control: a socket of our own domain is reachable, so EPERM was the scope. */
	own = sun;
	own.sun_path[1] = 'S';
	WANT((l = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	WANT(bind(l, (struct sockaddr *)&own, len) == 0 && listen(l, 1) == 0);
	WANT((s = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	WANT(connect(s, (struct sockaddr *)&own, len) == 0);
	close(s);
	close(l);
	(void)!write(SBX_T_KEEP_FD, "D", 1);
	return SBX_T_SENTINEL;
}

/* ---- zygote-side helpers ---- */

/* Run in the zygote while the child waits: an unsandboxed, same-uid process in its PID ns. */
static pid_t
h_signal_scope(pid_t child, int sock)
{
	char	path[64], c;
	pid_t	h, h2;
	int	fd;

	if (read(sock, &c, 1) != 1)
		return -1;
	if ((h = fork()) != 0)
		return h;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)child);
	if ((fd = open(path, O_RDONLY)) == -1 || setns(fd, CLONE_NEWPID) == -1)
		_exit(1);
	if ((h2 = fork()) == 0) {
		int32_t	me;

		if (setgroups(0, NULL) == -1 || setresgid(SBX_T_GID, SBX_T_GID, SBX_T_GID) == -1 ||
		    setresuid(SBX_T_UID, SBX_T_UID, SBX_T_UID) == -1)
			_exit(1);
		me = getpid();	/* our pid in the child's namespace */
		(void)!write(sock, &me, sizeof(me));
		(void)!read(sock, &c, 1);	/* until the child is done (it kills us as it exits) */
		_exit(0);
	}
	waitpid(h2, NULL, 0);
	_exit(0);
}

/* An unsandboxed process in the child's network namespace listening on an abstract name. */
static pid_t
h_abstract_scope(pid_t child, int sock)
{
	struct sockaddr_un	sun;
	char			path[64], c;
	pid_t			h;
	int			fd, l;

	if (read(sock, &c, 1) != 1)
		return -1;
	if ((h = fork()) != 0)
		return h;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
	if ((fd = open(path, O_RDONLY)) == -1 || setns(fd, CLONE_NEWNET) == -1)
		_exit(1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, SBX_T_ABSTRACT, sizeof(SBX_T_ABSTRACT) - 1);
	if ((l = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + sizeof(SBX_T_ABSTRACT) - 1) == -1 ||
	    listen(l, 1) == -1)
		_exit(1);
	(void)!write(sock, "L", 1);
	(void)!read(sock, &c, 1);
	_exit(0);
}

/*
 * Skip check for the i386 probe: some kernels (ia32_emulation=0, or
 * virtual machines that do not deliver int $0x80) fault on it before
 * seccomp ever sees the call; then SIGSEGV, not SIGSYS, is all there is.
 */
static const char *
s_no_ia32(void)
{
	pid_t	pid;
	int	st;

	if ((pid = fork()) == 0) {
		/* A sanitizer's SIGSEGV handler would turn the fault into an exit. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		_exit(p_i386() == 1 ? 0 : 1);
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid)
		return "cannot test ia32 entry";
	if (WIFSIGNALED(st))
		return "this kernel does not run int $0x80 even unsandboxed (signal)";
	return NULL;
}

/* ---- the harness ---- */

struct sbx_t_probe {
	const char	*tp_desc;
	int		(*tp_fn)(void);
	int		 tp_sig;	/* 0: exit SBX_T_SENTINEL expected; else this signal */
	int		 tp_min_abi;	/* Landlock ABI needed, else SKIP */
	pid_t		(*tp_helper)(pid_t, int);
	const char	*(*tp_skip)(void);	/* NULL, or why the probe cannot mean anything here */
};

static void
t_report(const char *status, const char *desc, const char *detail)
{
	char	line[512];
	int	n;

	n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", status, desc, detail ? detail : "");
	if (n > 0)
		(void)!write(t_out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Zygote: run one probe in a fresh sandboxed child. */
static void
t_run_probe(const struct sbx *s, int pidns, const struct sbx_t_probe *tp)
{
	char		 err[256], why[128];
	const char	*skip;
	pid_t		 pid, helper = -1;
	int		 sv[2], st;

	if (tp->tp_skip != NULL && (skip = tp->tp_skip()) != NULL) {
		t_report("skip", tp->tp_desc, skip);
		return;
	}
	if (tp->tp_min_abi > 0 && t_abi < tp->tp_min_abi) {
		snprintf(why, sizeof(why), "Landlock ABI %d < %d", t_abi, tp->tp_min_abi);
		t_report("skip", tp->tp_desc, why);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 || unshare(CLONE_NEWPID) == -1) {
		t_report("not ok", tp->tp_desc, strerror(errno));
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		int nul = open("/dev/null", O_RDWR), extra = open("/dev/null", O_RDONLY);
		int se = dup(2);

		/* Park everything high first, then lay out 0..4 as the daemon would. */
		if (nul == -1 || extra == -1 || se == -1 ||
		    dup2(sv[1], 200) == -1 || dup2(nul, 201) == -1 || dup2(extra, 202) == -1 ||
		    dup2(se, 203) == -1 || dup2(201, 0) == -1 || dup2(203, 1) == -1 ||
		    dup2(203, 2) == -1 || dup2(200, SBX_T_KEEP_FD) == -1 ||
		    dup2(202, SBX_T_KEEP_FD + 1) == -1 || setsid() == -1)
			_exit(SBX_T_ENTER_FAIL);
		if (sbx_enter(s, SBX_T_UID, SBX_T_GID, SBX_T_KEEP_FD, err, sizeof(err)) == -1) {
			dprintf(2, "    # sbx_enter: %s\n", err);
			_exit(SBX_T_ENTER_FAIL);
		}
		_exit(tp->tp_fn());
	}
	if (setns(pidns, CLONE_NEWPID) == -1) {
		t_report("not ok", tp->tp_desc, "setns back to own pid ns");
		_exit(1);
	}
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		t_report("not ok", tp->tp_desc, strerror(errno));
		return;
	}
	if (tp->tp_helper != NULL)
		helper = tp->tp_helper(pid, sv[0]);
	waitpid(pid, &st, 0);
	close(sv[0]);
	if (helper > 0)
		waitpid(helper, NULL, 0);
	if (tp->tp_sig != 0) {
		if (WIFSIGNALED(st) && WTERMSIG(st) == tp->tp_sig)
			t_report("ok", tp->tp_desc, NULL);
		else {
			snprintf(why, sizeof(why), "status %#x, want signal %d", st, tp->tp_sig);
			t_report("not ok", tp->tp_desc, why);
		}
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == SBX_T_SENTINEL)
		t_report("ok", tp->tp_desc, NULL);
	else {
		snprintf(why, sizeof(why), "status %#x%s", st,
		    WIFEXITED(st) && WEXITSTATUS(st) == SBX_T_ENTER_FAIL ? " (sbx_enter failed)" : "");
		t_report("not ok", tp->tp_desc, why);
	}
}

static const struct sbx_t_probe t_full[] = {
	{ "open /etc/passwd fails with ENOENT", p_etc_passwd, 0, 0, NULL, NULL },
	{ "opening for writing anywhere fails with EACCES", p_write_eacces, 0, 0, NULL, NULL },
	{ "unlink/rename/mkdir/chmod/... fail with EACCES", p_file_changes, 0, 0, NULL, NULL },
	{ "socket() of any family fails with EACCES", p_socket, 0, 0, NULL, NULL },
	{ "socketpair(AF_UNIX) works; connect/bind/listen EACCES", p_socketpair, 0, 0, NULL, NULL },
	{ "execve/execveat fail with EACCES", p_exec, 0, 0, NULL, NULL },
	{ "ptrace and process_vm_readv fail with EPERM", p_ptrace, 0, 0, NULL, NULL },
	{ "mount/umount/pivot_root/chroot/fsopen fail with EPERM", p_mount, 0, 0, NULL, NULL },
	{ "unshare/setns fail with EPERM", p_unshare, 0, 0, NULL, NULL },
	{ "clone with CLONE_NEWUSER/NEWNET fails with EPERM", p_clone_ns, 0, 0, NULL, NULL },
	{ "clone3/io_uring/openat2 fail with ENOSYS", p_clone3_uring, 0, 0, NULL, NULL },
	{ "x32 system call kills with SIGSYS", p_x32, SIGSYS, 0, NULL, NULL },
	{ "i386 system call (int 0x80) kills with SIGSYS", p_i386, SIGSYS, 0, NULL, s_no_ia32 },
	{ "capabilities all zero, bounding/ambient empty, securebits locked", p_caps, 0, 0, NULL, NULL },
	{ "uid/gid are the session's, no groups, no way back to 0", p_ids, 0, 0, NULL, NULL },
	{ "no_new_privs set, seccomp filter mode, not dumpable", p_nnp, 0, 0, NULL, NULL },
	{ "root holds only dev etc lib sandbox usr; no /proc /sys /tmp", p_root_contents, 0, 0, NULL, NULL },
	{ "/dev/null /dev/zero /dev/urandom usable", p_devices, 0, 0, NULL, NULL },
	{ "fork still works", p_fork, 0, 0, NULL, NULL },
	{ "threads (pthread_create) still work", p_threads, 0, 0, NULL, NULL },
	{ "descriptors above max_keep_fd closed, 0..max kept", p_fds, 0, 0, NULL, NULL },
	{ "stdlib, numpy, libblas chain and zoneinfo readable", p_python_files, 0, 0, NULL, NULL },
	{ "cwd is empty /sandbox, hostname pyexec, pid 1", p_cwd_host, 0, 0, NULL, NULL },
	{ "bpf/perf/keyctl/userfaultfd/kcmp/pidfd/modules/kexec EPERM", p_misc_denied, 0, 0, NULL, NULL },
	{ "ioctl limited to CPython's requests", p_ioctl, 0, 0, NULL, NULL },
	{ "rlimits set and cannot be raised", p_rlimits, 0, 0, NULL, NULL },
	{ "memfd + ftruncate work", p_memfd, 0, 0, NULL, NULL },
	{ "RLIMIT_NPROC bounds fork", p_nproc, 0, 0, NULL, NULL },
	{ "Landlock signal scope: no signal to a same-uid process outside", p_signal_scope,
	    0, 6, h_signal_scope, NULL },
};

static const struct sbx_t_probe t_tmp[] = {
	{ "tmp on: /tmp is the session's, writable, renames work", p_tmp_works, 0, 0, NULL, NULL },
	{ "tmp on: writes outside /tmp still refused", p_tmp_outside, 0, 1, NULL, NULL },
	{ "tmp on: RLIMIT_FSIZE and tmpfs size hold", p_tmp_limits, 0, 0, NULL, NULL },
	{ "tmp on: /tmp is noexec", p_tmp_noexec, 0, 0, NULL, NULL },
	{ "tmp on: socket still EACCES", p_socket, 0, 0, NULL, NULL },
};

static const struct sbx_t_probe t_nosec[] = {
	{ "no seccomp: only lo, no route to 1.1.1.1, TCP refused", p_net_lo_only, 0, 0, NULL, NULL },
	{ "no seccomp: mounts, Landlock and caps still refuse", p_layers_no_seccomp, 0, 1, NULL, NULL },
	{ "no seccomp: Landlock abstract-socket scope", p_abstract_scope, 0, 6, h_abstract_scope, NULL },
};

struct sbx_t_config {
	const char			*tc_name;
	struct sbx_params		 tc_params;
	const struct sbx_t_probe	*tc_probes;
	size_t				 tc_n;
	const char			*tc_want_desc;	/* prefix expected from sbx_describe */
};

/* Fork a zygote for one configuration; it reports one line per probe. */
static void
t_zygote(const struct sbx_t_config *tc, int out)
{
	char		 err[256], desc[256];
	const char	*d, *a;
	struct sbx	*s;
	size_t		 i;
	int		 pidns;

	t_out = out;
	t_params = tc->tc_params;
	if ((s = sbx_prepare(&tc->tc_params, err, sizeof(err))) == NULL) {
		snprintf(desc, sizeof(desc), "%s: sbx_prepare", tc->tc_name);
		t_report("not ok", desc, err);
		_exit(1);
	}
	d = sbx_describe(s);
	if ((a = strstr(d, "landlock=abi")) != NULL)
		t_abi = atoi(a + strlen("landlock=abi"));
	snprintf(desc, sizeof(desc), "%s: sbx_prepare, describe \"%s\"", tc->tc_name, d);
	t_report(strstr(d, tc->tc_want_desc) != NULL ? "ok" : "not ok", desc, NULL);
	if ((pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) == -1) {
		t_report("not ok", "open own pid ns", strerror(errno));
		_exit(1);
	}
	for (i = 0; i < tc->tc_n; i++)
		t_run_probe(s, pidns, &tc->tc_probes[i]);
	sbx_free(s);
	_exit(0);
}

static int	t_num, t_failed;

static void
t_tap(const char *status, const char *desc, const char *detail)
{
	t_num++;
	if (strcmp(status, "skip") == 0)
		printf("ok %d - %s # SKIP %s\n", t_num, desc, detail);
	else {
		if (strcmp(status, "ok") != 0)
			t_failed++;
		printf("%s %d - %s%s%s\n", status, t_num, desc,
		    detail && *detail ? " # " : "", detail ? detail : "");
	}
	fflush(stdout);
}

static void
t_config(const struct sbx_t_config *tc)
{
	char	buf[8192], *line, *nl, *f1, *f2;
	size_t	have = 0;
	ssize_t	r;
	pid_t	pid;
	int	p[2], st;

	if (pipe(p) == -1) {
		t_tap("not ok", tc->tc_name, "pipe");
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(p[0]);
		t_zygote(tc, p[1]);
	}
	close(p[1]);
	for (;;) {
		r = read(p[0], buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if ((f1 = strchr(line, '\t')) != NULL && (f2 = strchr(f1 + 1, '\t')) != NULL) {
				*f1 = *f2 = '\0';
				t_tap(line, f1 + 1, f2 + 1);
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
	}
	close(p[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		t_tap("not ok", tc->tc_name, "zygote died");
}

/* sbx_prepare's refusals, and the NULL cases, in a throwaway process. */
static void
t_api(const char *root)
{
	struct sbx_params	p = { root, 0, 256, 64, 16, 1, 1 };
	char			err[256] = "", dir[64];
	pid_t			pid;
	int			st;

	sbx_free(NULL);
	t_tap(strcmp(sbx_describe(NULL), "none") == 0 ? "ok" : "not ok",
	    "sbx_free(NULL) and sbx_describe(NULL) are safe", NULL);
	t_tap(sbx_enter(NULL, SBX_T_UID, SBX_T_GID, 3, err, sizeof(err)) == -1 && err[0] ?
	    "ok" : "not ok", "sbx_enter(NULL) refuses", NULL);
	if ((pid = fork()) == 0) {
		struct sbx	*s;
		int		 ok = 1;

		p.sp_root_dir = "/nonexistent/sbx";
		err[0] = '\0';
		ok &= sbx_prepare(&p, err, sizeof(err)) == NULL && err[0] != '\0';
		snprintf(dir, sizeof(dir), "%s/ww", root);
		ok &= mkdir(dir, 0777) == 0 && chmod(dir, 0777) == 0;
		p.sp_root_dir = dir;
		err[0] = '\0';
		ok &= sbx_prepare(&p, err, sizeof(err)) == NULL && strstr(err, "writable") != NULL;
		rmdir(dir);
		p.sp_root_dir = root;
		p.sp_nofile = 0;
		ok &= sbx_prepare(&p, err, sizeof(err)) == NULL;
		p.sp_nofile = 256;
		if ((s = sbx_prepare(&p, err, sizeof(err))) == NULL)
			_exit(2);
		err[0] = '\0';
		ok &= sbx_enter(s, 0, SBX_T_GID, 3, err, sizeof(err)) == -1 && err[0] != '\0';
		ok &= sbx_enter(s, SBX_T_UID, 0, 3, err, sizeof(err)) == -1;
		sbx_free(s);
		_exit(ok ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	t_tap(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "not ok",
	    "sbx_prepare refuses bad roots/limits; sbx_enter refuses uid/gid 0", NULL);
}

int
main(void)
{
	char			 root[] = "/tmp/test_sandbox.XXXXXX";
	struct sbx_t_config	 cfg[3];

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (mount namespaces, uid switch)\n");
		return 0;
	}
	if (mkdtemp(root) == NULL || chmod(root, 0755) == -1) {
		printf("1..1\nnot ok 1 - mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	/* OpenBLAS/numexpr are not loaded here, but keep the zygote's rule honest. */
	memset(cfg, 0, sizeof(cfg));
	cfg[0] = (struct sbx_t_config){ "full sandbox (no /tmp)",
	    { root, 0, 256, 64, 16, 1, 1 }, t_full, sizeof(t_full) / sizeof(t_full[0]),
	    "seccomp=on tmp=off" };
	cfg[1] = (struct sbx_t_config){ "sandbox with /tmp",
	    { root, 8, 256, 64, 2, 1, 1 }, t_tmp, sizeof(t_tmp) / sizeof(t_tmp[0]),
	    "seccomp=on tmp=8m" };
	cfg[2] = (struct sbx_t_config){ "sandbox without seccomp (layers below)",
	    { root, 0, 256, 64, 16, 1, 0 }, t_nosec, sizeof(t_nosec) / sizeof(t_nosec[0]),
	    "seccomp=off tmp=off" };
	t_api(root);
	for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
		t_config(&cfg[i]);
	rmdir(root);
	printf("1..%d\n", t_num);
	return t_failed == 0 ? 0 : 1;
}
