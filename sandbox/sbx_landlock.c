/*
 * Landlock: a second, independent filesystem layer under the read-only
 * mounts. Reads everywhere in the (already minimal) root; writes only under
 * /tmp when it is on, and to /dev/null and /dev/zero; no execute right
 * anywhere. With ABI >= 4 TCP bind/connect are refused, with ABI >= 6
 * abstract Unix sockets and signals are scoped to the session's own domain.
 *
 * The kernel headers on the build machine may predate parts of the ABI
 * (Debian 12 ships 6.1's): every constant past ABI 1 is defined here when
 * missing, and only what the running kernel's ABI knows is ever used.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx_int.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset	444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule		445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self	446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION	(1U << 0)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER		/* ABI 2 */
#define LANDLOCK_ACCESS_FS_REFER	(1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE		/* ABI 3 */
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV		/* ABI 5 */
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP		/* ABI 4 */
#define LANDLOCK_ACCESS_NET_BIND_TCP	(1ULL << 0)
#endif
#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP		/* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP	(1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET	/* ABI 6 */
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL			/* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL		(1ULL << 1)
#endif

/*
 * The ruleset attribute as of ABI 6. The kernel takes a size and reads only
 * that much, so an older kernel is given the prefix it knows (8 bytes for
 * ABI 1-3, 16 for ABI 4-5, 24 from ABI 6).
 */
struct sbx_ll_attr {
	uint64_t	la_fs;		/* handled_access_fs */
	uint64_t	la_net;		/* handled_access_net, ABI >= 4 */
	uint64_t	la_scoped;	/* scoped, ABI >= 6 */
};

/* The ABI 1 rights: all the header of any Landlock kernel has. */
#define SBX_LL_FS_V1	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
	LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
	LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK | \
	LANDLOCK_ACCESS_FS_MAKE_SYM)

/* The rights a rule on a single file (not a directory) may carry. */
#define SBX_LL_FS_FILE	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
	LANDLOCK_ACCESS_FS_IOCTL_DEV)

int
sbx_landlock_prepare(int *abi, char *err, size_t errlen)
{
	long	v;

	v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (v == -1) {
		/*
		 * ENOSYS: not built in; EOPNOTSUPP: built in but not enabled
		 * at boot. Either way the kernel lacks it, the one case in
		 * which configuration's "required" may be skipped.
		 */
		if (errno == ENOSYS || errno == EOPNOTSUPP) {
			*abi = 0;
			return 0;
		}
		sbx_errf(err, errlen, errno, "sbx_landlock: ABI probe");
		return -1;
	}
	*abi = (int)v;
	return 0;
}

static uint64_t
sbx_ll_fs_handled(int abi)
{
	uint64_t	fs = SBX_LL_FS_V1;

	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

static int
sbx_ll_rule(int rfd, const char *path, uint64_t access, char *err, size_t errlen)
{
	struct landlock_path_beneath_attr	pb;
	int					fd, rc;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1) {
		sbx_errf(err, errlen, errno, "sbx_landlock: open %s", path);
		return -1;
	}
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = access;
	pb.parent_fd = fd;
	rc = (int)syscall(__NR_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	if (rc == -1)
		sbx_errf(err, errlen, errno, "sbx_landlock: rule for %s", path);
	close(fd);
	return rc == -1 ? -1 : 0;
}

int
sbx_landlock_child(const struct sbx *s, char *err, size_t errlen)
{
	struct sbx_ll_attr	attr;
	size_t			attr_size;
	uint64_t		fs, rd, dev_rw, dev_ro, tmp;
	int			abi = s->sb_landlock_abi, rfd, rc = -1;

	memset(&attr, 0, sizeof(attr));
	/* Every right the kernel knows is handled: unlisted means denied. */
	fs = attr.la_fs = sbx_ll_fs_handled(abi);
	attr_size = sizeof(attr.la_fs);
	if (abi >= 4) {
		/* No rule grants these: TCP bind and connect are refused. */
		attr.la_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
		attr_size = offsetof(struct sbx_ll_attr, la_scoped);
	}
	if (abi >= 6) {
		/*
		 * No connecting to an abstract Unix socket, and no signal to
		 * a process, outside this session's domain. The network and
		 * PID namespaces already hide both; this holds if they fail.
		 */
		attr.la_scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
	if (rfd == -1) {
		sbx_errf(err, errlen, errno, "sbx_landlock: create ruleset (abi %d)", abi);
		return -1;
	}

	/*
	 * Read the whole root; EXECUTE is granted nowhere: it governs only
	 * execve (mapping a library executable is not a Landlock right), so
	 * this refuses exec even if seccomp were off.
	 */
	rd = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	dev_ro = (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV) & fs;
	dev_rw = dev_ro | ((LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE) & fs);
	if (sbx_ll_rule(rfd, "/", rd, err, errlen) == -1 ||
	    sbx_ll_rule(rfd, "/dev/null", dev_rw & SBX_LL_FS_FILE, err, errlen) == -1 ||
	    sbx_ll_rule(rfd, "/dev/zero", dev_rw & SBX_LL_FS_FILE, err, errlen) == -1 ||
	    sbx_ll_rule(rfd, "/dev/urandom", dev_ro & SBX_LL_FS_FILE, err, errlen) == -1)
		goto out;
	if (s->sb_tmp_mb > 0) {
		/*
		 * Anything a program does with its scratch files, including
		 * renames inside /tmp (REFER); no exec, no device nodes, no
		 * socket files, no ioctl on devices.
		 */
		tmp = fs & ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
		    LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		    LANDLOCK_ACCESS_FS_IOCTL_DEV);
		if (sbx_ll_rule(rfd, "/tmp", tmp, err, errlen) == -1)
			goto out;
	}
	if (syscall(__NR_landlock_restrict_self, rfd, 0) == -1) {
		sbx_errf(err, errlen, errno, "sbx_landlock: restrict_self");
		goto out;
	}
	rc = 0;
out:
	close(rfd);
	return rc;
}
