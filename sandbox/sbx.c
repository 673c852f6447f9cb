/*
 * The orchestrator: sbx_prepare() in the zygote, sbx_enter() in each
 * session child. The order of the child steps is the security argument of
 * the whole module, so it lives here, in one place, and each mechanism file
 * only knows how to do its own step.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/capability.h>

#include "sbx_int.h"

void
sbx_errf(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
	va_list	ap;
	size_t	n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (errnum != 0) {
		n = strlen(err);
		if (n < errlen)
			snprintf(err + n, errlen - n, ": %s", strerror(errnum));
	}
}

static void
sbx_set_desc(struct sbx *s)
{
	char	ll[24], tmp[24];

	if (s->sb_landlock_abi > 0)
		snprintf(ll, sizeof(ll), "abi%d", s->sb_landlock_abi);
	else
		snprintf(ll, sizeof(ll), "%s",
		    s->sb_landlock_cfg ? "unavailable" : "off");
	if (s->sb_tmp_mb > 0)
		snprintf(tmp, sizeof(tmp), "%um", s->sb_tmp_mb);
	else
		snprintf(tmp, sizeof(tmp), "off");
	snprintf(s->sb_desc, sizeof(s->sb_desc), "landlock=%s seccomp=%s tmp=%s",
	    ll, s->sb_bpf != NULL ? "on" : "off", tmp);
}

/*
 * 1 if the calling process has exactly one thread. unshare(CLONE_NEWNS)
 * moves only the calling thread to the new mount namespace, and a fork
 * from a multi-threaded process copies locks other threads may hold: both
 * make a multi-threaded zygote unsafe. (numexpr, which pandas imports when
 * installed, starts one thread per CPU at import unless NUMEXPR_NUM_THREADS
 * is 1.)
 */
static int
sbx_threads(char *err, size_t errlen)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir("/proc/self/task")) == NULL) {
		sbx_errf(err, errlen, errno, "sbx_prepare: cannot count threads");
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

struct sbx *
sbx_prepare(const struct sbx_params *p, char *err, size_t errlen)
{
	struct sbx	*s;
	int		 n;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (p == NULL || p->sp_root_dir == NULL || p->sp_root_dir[0] != '/') {
		sbx_errf(err, errlen, 0, "sbx_prepare: root dir must be an absolute path");
		return NULL;
	}
	/* RLIMIT_NOFILE 0 would leave the child unable to open a module. */
	if (p->sp_nofile < 16 || p->sp_nproc < 1) {
		sbx_errf(err, errlen, 0, "sbx_prepare: nofile must be >= 16 and nproc >= 1");
		return NULL;
	}
	/* The MiB values are shifted by 20 later: keep them inside 64 bits. */
	if (p->sp_tmp_mb > (1u << 20) || p->sp_fsize_mb > (1u << 20)) {
		sbx_errf(err, errlen, 0, "sbx_prepare: tmp/fsize sizes too large");
		return NULL;
	}
	if (geteuid() != 0) {
		sbx_errf(err, errlen, 0, "sbx_prepare: must run as root");
		return NULL;
	}
	if ((n = sbx_threads(err, errlen)) != 1) {
		if (n > 1)
			sbx_errf(err, errlen, 0, "sbx_prepare: the zygote has %d threads, "
			    "must have one (NUMEXPR_NUM_THREADS=1? OPENBLAS_NUM_THREADS=1?)", n);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->sb_root = strdup(p->sp_root_dir)) == NULL) {
		sbx_errf(err, errlen, errno, "sbx_prepare");
		free(s);
		return NULL;
	}
	s->sb_tmp_mb = p->sp_tmp_mb;
	s->sb_nofile = p->sp_nofile;
	s->sb_nproc = p->sp_nproc;
	s->sb_fsize_mb = p->sp_fsize_mb;
	s->sb_landlock_cfg = p->sp_landlock != 0;
	if ((s->sb_ncaps = sbx_caps_prepare(&s->sb_nocaps)) == -1) {
		sbx_errf(err, errlen, errno, "sbx_prepare: cap_init");
		goto fail;
	}

	/*
	 * The seccomp program and the Landlock probe touch nothing outside
	 * this process, so they go first: a failure there leaves no mounts
	 * behind.
	 */
	if (p->sp_seccomp &&
	    (s->sb_bpf = sbx_seccomp_prepare(p->sp_tmp_mb > 0, err, errlen)) == NULL)
		goto fail;
	if (p->sp_landlock &&
	    sbx_landlock_prepare(&s->sb_landlock_abi, err, errlen) == -1)
		goto fail;
	if (sbx_mount_prepare(s->sb_root, s->sb_tmp_mb, err, errlen) == -1)
		goto fail;
	sbx_set_desc(s);
	return s;
fail:
	sbx_free(s);
	return NULL;
}

int
sbx_enter(const struct sbx *s, uid_t uid, gid_t gid, int max_keep_fd,
    char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (s == NULL) {
		sbx_errf(err, errlen, 0, "sbx_enter: no sandbox");
		return -1;
	}
	/*
	 * User code never runs as root, not even a root without
	 * capabilities: uid 0 still owns most of the files we expose.
	 */
	if (uid == 0 || gid == 0 || uid == (uid_t)-1 || gid == (gid_t)-1) {
		sbx_errf(err, errlen, 0, "sbx_enter: refusing uid %u gid %u",
		    (unsigned)uid, (unsigned)gid);
		return -1;
	}
	if (max_keep_fd < 2) {
		sbx_errf(err, errlen, 0, "sbx_enter: max_keep_fd %d < 2", max_keep_fd);
		return -1;
	}
	if (geteuid() != 0) {
		sbx_errf(err, errlen, 0, "sbx_enter: must start as root");
		return -1;
	}

	/*
	 * The order matters; each step needs the privileges that a later
	 * one removes (style-anchors.md, convention 4):
	 *  1. namespaces, mounts and rlimits need CAP_SYS_ADMIN and
	 *     CAP_SYS_RESOURCE, so they come before any drop;
	 *  2. descriptors above max_keep_fd are closed before the id
	 *     switch, so no zygote descriptor the caller missed is ever
	 *     held by a process running as the session's uid;
	 *  3. the bounding set and the securebits need CAP_SETPCAP, the
	 *     id switch needs CAP_SETUID/CAP_SETGID: both before the
	 *     capabilities are cleared;
	 *  4. Landlock needs no_new_privs (we hold no capability by then);
	 *  5. seccomp is last, so the filter need not allow any of the
	 *     calls above.
	 */
	if (sbx_ns_child(err, errlen) == -1)
		return -1;
	if (sbx_mount_child(s, uid, gid, err, errlen) == -1)
		return -1;
	if (sbx_rlimit_child(s, err, errlen) == -1)
		return -1;
	if (sbx_fd_child(max_keep_fd, err, errlen) == -1)
		return -1;
	if (sbx_caps_bounding_child(s->sb_ncaps, err, errlen) == -1)
		return -1;
	if (sbx_caps_ids_child(uid, gid, err, errlen) == -1)
		return -1;
	if (sbx_caps_clear_child(s->sb_nocaps, uid, gid, err, errlen) == -1)
		return -1;
	if (sbx_caps_nnp_child(err, errlen) == -1)
		return -1;
	if (s->sb_landlock_abi > 0 && sbx_landlock_child(s, err, errlen) == -1)
		return -1;
	if (s->sb_bpf != NULL && sbx_seccomp_child(s->sb_bpf, err, errlen) == -1)
		return -1;
	return 0;
}

const char *
sbx_describe(const struct sbx *s)
{
	if (s == NULL)
		return "none";
	return s->sb_desc;
}

void
sbx_free(struct sbx *s)
{
	if (s == NULL)
		return;
	sbx_seccomp_free(s->sb_bpf);
	if (s->sb_nocaps != NULL)
		cap_free(s->sb_nocaps);
	free(s->sb_root);
	free(s);
}
