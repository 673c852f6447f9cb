/*
 * The scheduling policy.  A request crosses four processes (web server,
 * FastCGI worker, daemon, session) and comes back, each handing it to the
 * next over a socket.  Under SCHED_OTHER a wake-up may preempt the waker: on a
 * busy machine the woken process took the CPU of the one that had just
 * written to it, which then needed the CPU back to go to sleep by itself,
 * two switches where one does.  A SCHED_BATCH task's wake-up never preempts
 * (it runs once the current task sleeps or its slice ends); where a CPU is
 * idle it runs there at once, so latency on an unloaded machine is the
 * same.  What `make bench` measured is in README.md, "Performance".
 *
 * A policy other than SCHED_OTHER, or SCHED_OTHER with SCHED_RESET_ON_FORK,
 * was set by the operator (systemd's CPUSchedulingPolicy=, chrt) and is kept.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "log.h"
#include "proc.h"

const char *
proc_sched_batch(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	int pol = sched_getscheduler(0);

	if (pol == SCHED_OTHER) {
		if (sched_setscheduler(0, SCHED_BATCH, &sp) == 0)
			return "batch";
		log_warn("event=sched_batch_failed errno=\"%s\"", strerror(errno));
		return "other";
	}
	switch (pol & ~SCHED_RESET_ON_FORK) {
	case SCHED_BATCH:	return "batch";
	case SCHED_IDLE:	return "idle";
	case SCHED_FIFO:	return "fifo";
	case SCHED_RR:		return "rr";
	default:		return "other";
	}
}
