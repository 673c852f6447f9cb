/*
 * The processes of pyexec-sessiond, and who runs what:
 *   sessiond.c  the daemon (root): session table, queues, timers, cgroups.
 *               Never runs Python, never parses text from its peers.
 *   zygote.c    re-executed from the daemon's binary (root, trusted code
 *               only): initializes Python once, preloads modules, forks children.
 *   child.c     a session child: enters the sandbox, then runs user code.
 */
#ifndef PYEXEC_SESS_H
#define PYEXEC_SESS_H

#include "cfg.h"

/* argv[1] that turns pyexec-sessiond into the zygote. */
#define SESS_ZYGOTE_ARG		"--zygote"
/* The descriptor on which the zygote finds its link to the daemon. */
#define SESS_ZYGOTE_FD		3
/* The descriptor on which a child finds its control socket. */
#define SESS_CHILD_CTL_FD	3

/* The zygote's main loop; the daemon's configuration arrives on fd. */
void	zygote_main(int fd) __attribute__((noreturn));

/*
 * A forked child's life once it is in its cgroup, until it exits: enters the
 * sandbox, reports ready on SESS_CHILD_CTL_FD and serves executions.  With
 * no_cgroup (the daemon's degraded mode) memory is limited with RLIMIT_AS
 * instead; with warm (a child for the pool) it warms up before it reports
 * ready.  Never returns.
 */
struct sbx;
void	child_main(const struct cfg *c, const struct sbx *sbx, unsigned uid,
	    int no_cgroup, int warm) __attribute__((noreturn));

/*
 * In the zygote, after the preloads: what every child will need, done once
 * (a warm-up run of the compiler and evaluation loop, its output sent to
 * devnull; where numpy's global generator keeps its state, for the reseed).
 */
void	child_prepare(int devnull);

/*
 * In a probe forked from the zygote (no sandbox, no session, fds 1 to 3 on
 * /dev/null): what a child does from its start to its first small execution,
 * so that the zygote can see which pages that writes.
 */
void	child_probe(const struct cfg *c);

#endif
