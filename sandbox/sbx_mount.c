/*
 * The root a session child sees.
 *
 * sbx_mount_prepare() builds, once, in a private mount namespace of the
 * zygote, a template: a small tmpfs on the configured root dir holding
 *   /usr/lib/python3.11            (bind, the stdlib with lib-dynload)
 *   /usr/lib/python3/dist-packages (bind)
 *   /usr/share/zoneinfo            (bind, see SBX_ZONEINFO)
 *   the shared libraries that the extension modules of the stdlib, numpy
 *     and pandas need (DT_NEEDED, transitively), each bound as one file,
 *     with every symlink on the way reproduced as a symlink (Debian's
 *     libblas.so.3 -> /etc/alternatives/... -> .../blas/libblas.so.3)
 *   /lib -> usr/lib                (merged /usr: one of the loader's default dirs)
 *   /dev/null, /dev/zero, /dev/urandom (bind of the device nodes)
 *   /sandbox                       (empty working directory)
 *   /tmp                           (mount point, only when /tmp is on)
 * and nothing else: no /etc, /proc, /sys, /home, /root, /var, /run, no
 * daemon socket. Every mount is read-only and nosuid; all but the device
 * nodes are nodev; what never holds code is noexec.
 *
 * sbx_mount_child() then costs a session child only pivot_root and the
 * detach of the old root (plus its own /tmp), in the copy of that namespace
 * its unshare(CLONE_NEWNS) made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx_int.h"

#if defined(__x86_64__)
#define SBX_MULTIARCH	"x86_64-linux-gnu"
#else
#error "sandbox/: only x86_64 has been fitted (library dirs, seccomp filter)"
#endif

/*
 * Public time zone data, no secret in it: pandas (through the zoneinfo
 * module and Debian's pytz/dateutil, which read the system's data) needs it
 * for any tz-aware timestamp; without it tz_localize('Europe/Paris') fails.
 * /etc/localtime stays absent, so local time is UTC: deterministic, and it
 * tells nothing about where the host is.
 */
#define SBX_ZONEINFO	"/usr/share/zoneinfo"

/* Where the loader looks by default, in its order (merged /usr). */
static const char *const sbx_libdirs[] = {
	"/usr/lib/" SBX_MULTIARCH,
	"/usr/lib",
};

/*
 * Whose extension modules we resolve libraries for: the stdlib's, and the
 * packages pandas and numpy load (bottleneck and numexpr are optional
 * accelerators pandas uses when present). Other dist-packages modules stay
 * importable when they need no library beyond these; the rest fail with
 * ImportError, which is the price of not exposing all of
 * /usr/lib/x86_64-linux-gnu (LLVM, GLib, X11 and friends).
 */
static const char *const sbx_scan_dirs[] = {
	PYEXEC_PY_STDLIB "/lib-dynload",
	PYEXEC_PY_SITE "/numpy",
	PYEXEC_PY_SITE "/pandas",
	PYEXEC_PY_SITE "/bottleneck",
	PYEXEC_PY_SITE "/numexpr",
};

/*
 * _tkinter needs a display that a sandbox never has, and would pull in Tk,
 * X11, fontconfig and freetype: twenty libraries for a module that cannot
 * work.
 */
static const char *const sbx_scan_skip[] = {
	"_tkinter.",
};

#define SBX_WALK_DEPTH	12	/* deeper than numpy/pandas' trees go */
#define SBX_LINK_HOPS	40	/* the kernel's own symlink limit */
#define SBX_TMPL_OPTS	"mode=0755,size=1m,nr_inodes=4096"

/* Mount flags of the template's binds. */
#define SBX_MF_CODE	(MS_RDONLY | MS_NOSUID | MS_NODEV)
#define SBX_MF_DATA	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
#define SBX_MF_DEV	(MS_RDONLY | MS_NOSUID | MS_NOEXEC)

struct sbx_tmpl {
	const char	 *t_root;
	char		**t_done;	/* host paths exposed so far (owned) */
	size_t		  t_ndone;
	size_t		  t_cap;
	char		 *t_err;
	size_t		  t_errlen;
};

static int	sbx_tmpl_lib(const char *soname, void *arg);

static int
sbx_tmpl_path(struct sbx_tmpl *t, const char *host, char *out)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s%s", t->t_root, host) >= PATH_MAX) {
		sbx_errf(t->t_err, t->t_errlen, 0, "sbx_mount: path too long: %s", host);
		return -1;
	}
	return 0;
}

/* 1 if host (or a directory above it) has been exposed already. */
static int
sbx_tmpl_seen(const struct sbx_tmpl *t, const char *host)
{
	size_t	i, n;

	for (i = 0; i < t->t_ndone; i++) {
		n = strlen(t->t_done[i]);
		if (strncmp(t->t_done[i], host, n) == 0 &&
		    (host[n] == '\0' || host[n] == '/'))
			return 1;
	}
	return 0;
}

static int
sbx_tmpl_mark(struct sbx_tmpl *t, const char *host)
{
	char	**nd;

	if (t->t_ndone == t->t_cap) {
		t->t_cap = t->t_cap ? t->t_cap * 2 : 64;
		if ((nd = realloc(t->t_done, t->t_cap * sizeof(*nd))) == NULL) {
			sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount");
			return -1;
		}
		t->t_done = nd;
	}
	if ((t->t_done[t->t_ndone] = strdup(host)) == NULL) {
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount");
		return -1;
	}
	t->t_ndone++;
	return 0;
}

/* mkdir in the template; an existing directory is fine, anything else not. */
static int
sbx_tmpl_mkdir(struct sbx_tmpl *t, const char *host)
{
	char		p[PATH_MAX];
	struct stat	st;

	if (sbx_tmpl_path(t, host, p) == -1)
		return -1;
	if (mkdir(p, 0755) == 0)
		return 0;
	if (errno == EEXIST && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: mkdir %s", p);
	return -1;
}

/* Reproduce the host symlink `host` -> `target` in the template. */
static int
sbx_tmpl_symlink(struct sbx_tmpl *t, const char *host, const char *target)
{
	char	p[PATH_MAX], cur[PATH_MAX];
	ssize_t	n;

	if (sbx_tmpl_path(t, host, p) == -1)
		return -1;
	if (symlink(target, p) == 0)
		return 0;
	if (errno == EEXIST && (n = readlink(p, cur, sizeof(cur) - 1)) >= 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			return 0;
	}
	sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: symlink %s", p);
	return -1;
}

/*
 * Bind host path src (a directory, regular file or device node) onto the
 * same path in the template, then make that mount read-only with flags.
 * A bind mount has its own flags: the second call is what applies them
 * (MS_BIND ignores them), and it is why each bind gets its own mount.
 * Binds are not recursive: whatever is mounted below src stays out.
 */
static int
sbx_tmpl_bind(struct sbx_tmpl *t, const char *src, const struct stat *st,
    unsigned long flags)
{
	char	p[PATH_MAX];
	int	fd;

	if (sbx_tmpl_path(t, src, p) == -1)
		return -1;
	if (S_ISDIR(st->st_mode)) {
		if (sbx_tmpl_mkdir(t, src) == -1)
			return -1;
	} else if (S_ISREG(st->st_mode) || S_ISCHR(st->st_mode)) {
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
		if (fd == -1) {
			sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: create %s", p);
			return -1;
		}
		close(fd);
	} else {
		sbx_errf(t->t_err, t->t_errlen, 0, "sbx_mount: %s: unexpected file type", src);
		return -1;
	}
	if (mount(src, p, NULL, MS_BIND, NULL) == -1) {
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: bind %s", src);
		return -1;
	}
	if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | flags, NULL) == -1) {
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: remount %s", p);
		return -1;
	}
	return sbx_tmpl_mark(t, src);
}

/*
 * Make absolute host path `path` visible at the same path in the template.
 * Resolved one component at a time with lstat, like the kernel would: each
 * symlink met on the way is reproduced as it is (same target text), each
 * directory crossed becomes an empty directory, and the final object is
 * bound. That keeps every name a program may use (libblas.so.3) working
 * while exposing only the files it leads to.
 * On success, real (PATH_MAX bytes) holds the symlink-free host path, and
 * *fresh tells whether this call bound it (0: it was already visible).
 */
static int
sbx_tmpl_expose(struct sbx_tmpl *t, const char *path, unsigned long flags,
    char *real, int *fresh)
{
	char		rest[PATH_MAX], cur[PATH_MAX], cand[PATH_MAX];
	char		tgt[PATH_MAX], tmp[PATH_MAX];
	char		*comp, *next, *slash;
	struct stat	st;
	ssize_t		n;
	int		hops = 0;

	*fresh = 0;
	if (path[0] != '/' || strlen(path) >= sizeof(rest)) {
		sbx_errf(t->t_err, t->t_errlen, 0, "sbx_mount: bad path %s", path);
		return -1;
	}
	strcpy(rest, path);	/* length checked just above */
	cur[0] = '\0';
	comp = rest;
	for (;;) {
		while (*comp == '/')
			comp++;
		if (*comp == '\0')
			break;
		next = strchr(comp, '/');
		if (next != NULL)
			*next++ = '\0';
		else
			next = comp + strlen(comp);
		if (strcmp(comp, ".") == 0) {
			comp = next;
			continue;
		}
		if (strcmp(comp, "..") == 0) {
			/* cur has no symlink in it, so ".." is plain text. */
			if ((slash = strrchr(cur, '/')) != NULL)
				*slash = '\0';
			comp = next;
			continue;
		}
		if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", cur, comp) >= sizeof(cand))
			goto toolong;
		if (lstat(cand, &st) == -1) {
			sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: %s", cand);
			return -1;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++hops > SBX_LINK_HOPS) {
				sbx_errf(t->t_err, t->t_errlen, ELOOP, "sbx_mount: %s", path);
				return -1;
			}
			if ((n = readlink(cand, tgt, sizeof(tgt) - 1)) == -1) {
				sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: readlink %s", cand);
				return -1;
			}
			tgt[n] = '\0';
			if (!sbx_tmpl_seen(t, cand) &&
			    (sbx_tmpl_symlink(t, cand, tgt) == -1 ||
			    sbx_tmpl_mark(t, cand) == -1))
				return -1;
			/* Continue with the target followed by what is left. */
			if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", tgt, next) >= sizeof(tmp))
				goto toolong;
			strcpy(rest, tmp);	/* same size, fits */
			if (tgt[0] == '/')
				cur[0] = '\0';
			comp = rest;
			continue;
		}
		strcpy(cur, cand);	/* same size, fits */
		while (*next == '/')
			next++;
		if (*next == '\0')
			break;
		if (!S_ISDIR(st.st_mode)) {
			sbx_errf(t->t_err, t->t_errlen, ENOTDIR, "sbx_mount: %s", cand);
			return -1;
		}
		/* An exposed directory already shows everything below it. */
		if (sbx_tmpl_seen(t, cur)) {
			if ((size_t)snprintf(real, PATH_MAX, "%s/%s", cur, next) >= PATH_MAX)
				goto toolong;
			return 0;
		}
		if (sbx_tmpl_mkdir(t, cur) == -1)
			return -1;
		comp = next;
	}
	if (cur[0] == '\0') {
		sbx_errf(t->t_err, t->t_errlen, 0, "sbx_mount: cannot expose /");
		return -1;
	}
	strcpy(real, cur);	/* both PATH_MAX */
	if (sbx_tmpl_seen(t, cur))
		return 0;
	if (lstat(cur, &st) == -1) {
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: %s", cur);
		return -1;
	}
	if (sbx_tmpl_bind(t, cur, &st, flags) == -1)
		return -1;
	*fresh = 1;
	return 0;
toolong:
	sbx_errf(t->t_err, t->t_errlen, ENAMETOOLONG, "sbx_mount: %s", path);
	return -1;
}

/* DT_NEEDED callback: find soname in the loader's dirs and expose it. */
static int
sbx_tmpl_lib(const char *soname, void *arg)
{
	struct sbx_tmpl	*t = arg;
	char		 p[PATH_MAX], real[PATH_MAX];
	size_t		 i;
	int		 fresh;

	/* A name with a slash is a path the loader takes as is; none of ours. */
	if (strchr(soname, '/') != NULL || soname[0] == '\0')
		return 0;
	for (i = 0; i < sizeof(sbx_libdirs) / sizeof(sbx_libdirs[0]); i++) {
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", sbx_libdirs[i], soname) >= sizeof(p))
			return -1;
		if (access(p, F_OK) == -1)
			continue;
		if (sbx_tmpl_expose(t, p, SBX_MF_CODE, real, &fresh) == -1)
			return -1;
		if (fresh)
			return sbx_elf_needed(real, sbx_tmpl_lib, t, t->t_err, t->t_errlen);
		return 0;
	}
	/*
	 * Not installed: the module that wants it fails to import on the host
	 * too. Not our error to raise.
	 */
	return 0;
}

static int
sbx_tmpl_skipped(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(sbx_scan_skip) / sizeof(sbx_scan_skip[0]); i++)
		if (strncmp(name, sbx_scan_skip[i], strlen(sbx_scan_skip[i])) == 0)
			return 1;
	return 0;
}

/* Walk dir (no symlink followed) and resolve the libraries of every *.so. */
static int
sbx_tmpl_scan(struct sbx_tmpl *t, const char *dir, int depth)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 p[PATH_MAX];
	size_t		 n;
	int		 rc = 0;

	if (depth > SBX_WALK_DEPTH)
		return 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT && depth == 0)
			return 0;	/* optional package not installed */
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: opendir %s", dir);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= sizeof(p))
			continue;
		if (lstat(p, &st) == -1)
			continue;
		if (S_ISDIR(st.st_mode)) {
			rc = sbx_tmpl_scan(t, p, depth + 1);
			continue;
		}
		n = strlen(de->d_name);
		if (!S_ISREG(st.st_mode) || n < 4 ||
		    strcmp(de->d_name + n - 3, ".so") != 0 ||
		    sbx_tmpl_skipped(de->d_name))
			continue;
		rc = sbx_elf_needed(p, sbx_tmpl_lib, t, t->t_err, t->t_errlen);
	}
	closedir(d);
	return rc;
}

/* Expose an object that must exist (stdlib, site dir, device). */
static int
sbx_tmpl_need(struct sbx_tmpl *t, const char *path, unsigned long flags)
{
	char	real[PATH_MAX];
	int	fresh;

	return sbx_tmpl_expose(t, path, flags, real, &fresh);
}

/* Reproduce a top-level symlink of the host (merged /usr's /lib). */
static int
sbx_tmpl_toplink(struct sbx_tmpl *t, const char *path)
{
	struct stat	st;
	char		tgt[PATH_MAX];
	ssize_t		n;

	if (lstat(path, &st) == -1 || !S_ISLNK(st.st_mode))
		return 0;
	if ((n = readlink(path, tgt, sizeof(tgt) - 1)) == -1) {
		sbx_errf(t->t_err, t->t_errlen, errno, "sbx_mount: readlink %s", path);
		return -1;
	}
	tgt[n] = '\0';
	return sbx_tmpl_symlink(t, path, tgt);
}

static int
sbx_tmpl_build(struct sbx_tmpl *t, unsigned tmp_mb)
{
	size_t	i;

	if (sbx_tmpl_need(t, PYEXEC_PY_STDLIB, SBX_MF_CODE) == -1 ||
	    sbx_tmpl_need(t, PYEXEC_PY_SITE, SBX_MF_CODE) == -1 ||
	    sbx_tmpl_need(t, "/dev/null", SBX_MF_DEV) == -1 ||
	    sbx_tmpl_need(t, "/dev/zero", SBX_MF_DEV) == -1 ||
	    sbx_tmpl_need(t, "/dev/urandom", SBX_MF_DEV) == -1)
		return -1;
	if (access(SBX_ZONEINFO, F_OK) == 0 &&
	    sbx_tmpl_need(t, SBX_ZONEINFO, SBX_MF_DATA) == -1)
		return -1;
	for (i = 0; i < sizeof(sbx_scan_dirs) / sizeof(sbx_scan_dirs[0]); i++)
		if (sbx_tmpl_scan(t, sbx_scan_dirs[i], 0) == -1)
			return -1;
	if (sbx_tmpl_toplink(t, "/lib") == -1)
		return -1;
	if (sbx_tmpl_mkdir(t, SBX_SANDBOX_DIR) == -1)
		return -1;
	if (tmp_mb > 0 && sbx_tmpl_mkdir(t, "/tmp") == -1)
		return -1;
	return 0;
}

int
sbx_mount_prepare(const char *root, unsigned tmp_mb, char *err, size_t errlen)
{
	struct sbx_tmpl	t;
	struct stat	st;
	struct statvfs	sv;
	size_t		i;
	int		rc = -1;

	memset(&t, 0, sizeof(t));
	t.t_root = root;
	t.t_err = err;
	t.t_errlen = errlen;

	/*
	 * The root dir is ours (configuration, root-owned state dir): refuse
	 * a symlink or a directory that others could write into, since we
	 * are about to mount on it as root.
	 */
	if (lstat(root, &st) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount: %s", root);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0) {
		sbx_errf(err, errlen, 0,
		    "sbx_mount: %s must be a directory owned by root, not group/other writable",
		    root);
		return -1;
	}
	if (strlen(root) + 64 >= PATH_MAX) {
		sbx_errf(err, errlen, ENAMETOOLONG, "sbx_mount: %s", root);
		return -1;
	}
	/*
	 * A private mount namespace, and every mount in it made private
	 * before anything is mounted: with shared propagation (systemd's
	 * default) the template would appear in the host's namespace too.
	 */
	if (unshare(CLONE_NEWNS) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount: unshare(CLONE_NEWNS)");
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount: make / rprivate");
		return -1;
	}
	/* noexec: the template itself holds only directories and links. */
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    SBX_TMPL_OPTS) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount: tmpfs on %s", root);
		return -1;
	}
	if (sbx_tmpl_build(&t, tmp_mb) == -1)
		goto out;
	/*
	 * Read-only at the superblock, not only at this mount: no later
	 * mount of the same tmpfs can be writable either.
	 */
	if (mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
	    MS_NOEXEC, SBX_TMPL_OPTS) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount: remount %s read-only", root);
		goto out;
	}
	if (statvfs(root, &sv) == -1 || (sv.f_flag & ST_RDONLY) == 0) {
		sbx_errf(err, errlen, errno, "sbx_mount: %s is not read-only", root);
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < t.t_ndone; i++)
		free(t.t_done[i]);
	free(t.t_done);
	return rc;
}

int
sbx_mount_child(const struct sbx *s, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char		opts[128];
	unsigned long	nr_inodes;

	/*
	 * pivot_root(".", ".") stacks the old root on top of the new one;
	 * the detach then drops the whole host tree from this namespace,
	 * so no path (and no "..") leads back to it. A chroot would leave
	 * the host mounted and reachable with a second chroot.
	 */
	if (chdir(s->sb_root) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount_child: chdir %s", s->sb_root);
		return -1;
	}
	if (syscall(SYS_pivot_root, ".", ".") == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount_child: pivot_root");
		return -1;
	}
	if (umount2(".", MNT_DETACH) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount_child: detach old root");
		return -1;
	}
	if (chdir("/") == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount_child: chdir /");
		return -1;
	}
	if (s->sb_tmp_mb > 0) {
		/*
		 * Mounted here, by the child, once it is in its cgroup: the
		 * pages it fills are charged to the session. Owned by the
		 * session's ids with mode 0700; noexec so no file written
		 * there can be mapped executable (dlopen of a planted .so).
		 * One inode per 4 KiB of size bounds the inode memory as the
		 * size bounds the data.
		 */
		nr_inodes = (unsigned long)s->sb_tmp_mb * 256;
		if ((size_t)snprintf(opts, sizeof(opts),
		    "size=%um,nr_inodes=%lu,mode=0700,uid=%u,gid=%u",
		    s->sb_tmp_mb, nr_inodes, (unsigned)uid, (unsigned)gid) >= sizeof(opts)) {
			sbx_errf(err, errlen, 0, "sbx_mount_child: tmpfs options too long");
			return -1;
		}
		if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		    opts) == -1) {
			sbx_errf(err, errlen, errno, "sbx_mount_child: tmpfs on /tmp");
			return -1;
		}
	}
	if (chdir(SBX_SANDBOX_DIR) == -1) {
		sbx_errf(err, errlen, errno, "sbx_mount_child: chdir %s", SBX_SANDBOX_DIR);
		return -1;
	}
	return 0;
}
