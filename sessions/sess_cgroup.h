/*
 * Per-session cgroups, on cgroup v2 where /sys/fs/cgroup is the unified
 * hierarchy, else on the v1 memory, pids, cpu and freezer hierarchies.  The daemon owns
 * every cgroup it creates: <hierarchy>/<cfg.cgroup>/s<serial>.  Called only by
 * pyexec-sessiond (root).
 */
#ifndef PYEXEC_SESS_CGROUP_H
#define PYEXEC_SESS_CGROUP_H

#include <stdint.h>

#include "cfg.h"

#define CG_MAX_PROCS_FDS	4

struct cg;

/*
 * Finds the hierarchy and creates this daemon's subtree.  Returns 1 when
 * cgroups are in use, 0 when none can be written (the caller decides whether
 * that is fatal: architecture rule 7), -1 on another error; err says why.
 */
int	cg_init(const struct cfg *c, char *err, size_t errlen);

/* "v1" or "v2" or "none", for the start-up log. */
const char *cg_mode(void);

/*
 * Creates the cgroup of one child and writes its limits.  Returns NULL on
 * failure (logged).  Without cgroups (degraded mode) returns a handle that does
 * nothing.
 */
struct cg *cg_create(uint32_t serial);

/* Descriptors of the cgroup.procs files (opened O_WRONLY) a parent writes the
 * child's pid into; the handle keeps ownership.  Returns their count. */
int	cg_procs_fds(const struct cg *g, int *fds);

/* Closes the cgroup.procs descriptors once the child has been placed. */
void	cg_procs_close(struct cg *g);

/* Kernel OOM kills seen in this cgroup since its creation (0 without cgroups). */
uint64_t cg_oom_kills(struct cg *g);

/* Tasks (threads included) now in the cgroup, or -1 if unknown. */
int	cg_tasks(struct cg *g);

/*
 * Freezes (on != 0) or thaws every task of the cgroup: v2 cgroup.freeze, v1
 * freezer.state.  Returns 0, or -1 when the cgroup has no freezer.
 */
int	cg_freeze(struct cg *g, int on);

/* Sends SIGKILL to every task in the cgroup, and thaws it so that they die. */
void	cg_kill_all(struct cg *g);

/*
 * Removes the cgroup and frees the handle.  Returns 0, or -1 with errno EBUSY
 * while tasks remain (the handle stays valid; call again later).
 */
int	cg_destroy(struct cg *g);

/* Frees the handle but leaves the directory (a cgroup that would not go):
 * the next start's clean-up of stale cgroups removes it. */
void	cg_abandon(struct cg *g);

/* Removes the daemon's subtree (at shutdown, once every child is gone). */
void	cg_fini(void);

#endif
