/*
 * sbx: the sandbox a session child enters before it runs user code.
 *
 * Two phases, two processes:
 *   - sbx_prepare() runs once in the zygote (root, single-threaded, trusted,
 *     before any child is forked) and builds everything that can be built
 *     once: the read-only template root, the compiled seccomp program and
 *     the Landlock ABI probe.
 *   - sbx_enter() runs in each session child right after fork, and takes it
 *     from "forked by a privileged process" to "can compute, and nothing
 *     else" (style-anchors.md, convention 4).
 *
 * Nothing here logs: every failure is written into the caller's err buffer
 * (always NUL-terminated when errlen > 0) and the caller decides what to do.
 */
#ifndef SBX_H
#define SBX_H

#include <stddef.h>
#include <sys/types.h>

struct sbx_params {			/* fixed at zygote start, from configuration */
	const char	*sp_root_dir;	/* existing empty root-owned dir: mount point of the template root */
	unsigned	 sp_tmp_mb;	/* 0: no /tmp; else a private writable tmpfs of this size (MiB) */
	unsigned	 sp_nofile;	/* RLIMIT_NOFILE */
	unsigned	 sp_nproc;	/* RLIMIT_NPROC (per uid: bounds threads + processes) */
	unsigned	 sp_fsize_mb;	/* RLIMIT_FSIZE in MiB (also bounds memfd sizes) */
	int		 sp_landlock;	/* 1: required when the kernel has it; 0: disabled by configuration */
	int		 sp_seccomp;	/* 1: filter on; 0: disabled by configuration (degraded) */
};

struct sbx;	/* opaque */

/*
 * Zygote only: root, single-threaded, once, before the first fork.
 * Moves the calling process into a private mount namespace (nothing it
 * mounts propagates to the host), mounts the read-only template root on
 * p->sp_root_dir, compiles the seccomp filter to a BPF program kept in memory
 * and probes the Landlock ABI. The params are copied; p may be freed after.
 * Returns the object (release with sbx_free), or NULL with err filled.
 * After a failure the caller's mount namespace may hold a partial template:
 * the caller is expected to give up (fail closed), not retry.
 */
struct sbx	*sbx_prepare(const struct sbx_params *p, char *err, size_t errlen);

/*
 * Session child only: right after fork from the zygote, still root,
 * single-threaded, already in its cgroup, pid 1 of a new PID namespace,
 * session leader, with fds 0 = /dev/null, 1-2 = output pipes and
 * 3..max_keep_fd its own descriptors. Enters, in this order: new net, mount,
 * IPC and UTS namespaces; the template root (pivot_root) with its optional
 * /tmp; rlimits; closes every fd above max_keep_fd; drops the bounding set,
 * switches to uid/gid with no supplementary groups, clears all capabilities
 * and locks the securebits; sets no_new_privs; Landlock; seccomp last.
 * uid and gid must not be 0. Returns 0, or -1 with err filled: the caller
 * must then report and _exit without running user code, since the process
 * may be half-sandboxed.
 */
int		 sbx_enter(const struct sbx *s, uid_t uid, gid_t gid, int max_keep_fd,
		    char *err, size_t errlen);

/*
 * Which layers are active, for the daemon's start-up log, e.g.
 * "landlock=abi6 seccomp=on tmp=off". The string belongs to s.
 */
const char	*sbx_describe(const struct sbx *s);

/*
 * Frees s (the template mounts stay: they live as long as the zygote's mount
 * namespace). sbx_free(NULL) does nothing.
 */
void		 sbx_free(struct sbx *s);

#endif /* SBX_H */
