/*
 * Settings a pyexec program gives its own process at start.
 */
#ifndef PYEXEC_PROC_H
#define PYEXEC_PROC_H

/*
 * Moves the calling thread (and so every thread and process it creates
 * afterwards) from SCHED_OTHER to SCHED_BATCH; any other policy is the
 * operator's choice and kept.  Returns the policy now in force, by name, for
 * the start-up log line.  Call before the first thread or child.
 */
const char	*proc_sched_batch(void);

#endif
