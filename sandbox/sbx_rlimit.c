/*
 * Resource limits of the session child. Soft and hard limits are set equal:
 * without CAP_SYS_RESOURCE (dropped right after) a process may lower a hard
 * limit but never raise it, so user code cannot undo them. Memory is not
 * limited here: that is the cgroup's job (lessons.md: RLIMIT_AS is not
 * memory, numpy reserves large address ranges).
 */
#include <errno.h>
#include <sys/resource.h>

#include "sbx_int.h"

static int
sbx_rlimit_set(int res, const char *name, rlim_t v, char *err, size_t errlen)
{
	struct rlimit	rl;

	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(res, &rl) == -1) {
		sbx_errf(err, errlen, errno, "sbx_rlimit_child: %s", name);
		return -1;
	}
	return 0;
}

int
sbx_rlimit_child(const struct sbx *s, char *err, size_t errlen)
{
	/*
	 * CORE 0: a core file would have nowhere to go, and a crash must
	 * not spend time writing one.
	 * NPROC counts every process and thread of the real uid, so it is
	 * only enforced once the child has switched to the session's uid
	 * and lost CAP_SYS_RESOURCE/CAP_SYS_ADMIN: exactly what we want.
	 * FSIZE bounds any one file written in /tmp and any memfd.
	 */
	if (sbx_rlimit_set(RLIMIT_CORE, "RLIMIT_CORE", 0, err, errlen) == -1 ||
	    sbx_rlimit_set(RLIMIT_NOFILE, "RLIMIT_NOFILE", s->sb_nofile, err, errlen) == -1 ||
	    sbx_rlimit_set(RLIMIT_NPROC, "RLIMIT_NPROC", s->sb_nproc, err, errlen) == -1 ||
	    sbx_rlimit_set(RLIMIT_FSIZE, "RLIMIT_FSIZE",
	    (rlim_t)s->sb_fsize_mb << 20, err, errlen) == -1)
		return -1;
	return 0;
}
