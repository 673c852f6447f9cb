/*
 * Unit test of common/proc.c: a process under the default policy moves to
 * SCHED_BATCH, its later threads and children with it; a policy the operator
 * chose is kept.  Each case runs in a child of its own, so the policies it
 * sets do not follow the next one.  Prints TAP.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"

static void *
thread_policy(void *arg)
{
	*(int *)arg = sched_getscheduler(0);
	return NULL;
}

/* In a child: policy 'from', then proc_sched_batch(); the policies of the
 * child, of a thread and of a process it starts come back through a pipe. */
static void
run_case(int from, const char *from_name, int want, const char *want_name)
{
	struct sched_param sp = { .sched_priority = 0 };
	int p[2], st, got[3] = { -1, -1, -1 };
	char name[16] = "";
	pid_t pid;

	if (pipe(p) == -1) {
		ok(0, "%s: pipe", from_name);
		return;
	}
	if ((pid = fork()) == 0) {
		pthread_t t;
		const char *r;
		pid_t k;

		close(p[0]);
		if (sched_setscheduler(0, from, &sp) == -1)
			_exit(2);
		r = proc_sched_batch();
		snprintf(name, sizeof(name), "%s", r);
		got[0] = sched_getscheduler(0);
		if (pthread_create(&t, NULL, thread_policy, &got[1]) != 0 ||
		    pthread_join(t, NULL) != 0)
			_exit(3);
		if ((k = fork()) == 0)
			_exit(sched_getscheduler(0) & 0x7f);
		if (k == -1 || waitpid(k, &st, 0) != k || !WIFEXITED(st))
			_exit(4);
		got[2] = WEXITSTATUS(st);
		if (write(p[1], got, sizeof(got)) != sizeof(got) ||
		    write(p[1], name, sizeof(name)) != sizeof(name))
			_exit(5);
		_exit(0);
	}
	close(p[1]);
	if (pid == -1 || read(p[0], got, sizeof(got)) != sizeof(got) ||
	    read(p[0], name, sizeof(name)) != sizeof(name))
		diag("%s: the case's child failed", from_name);
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	is_int(got[0], want, "from %s: the process runs %s", from_name, want_name);
	is_int(got[1], want, "from %s: a thread it starts runs %s", from_name, want_name);
	is_int(got[2], want, "from %s: a child it forks runs %s", from_name, want_name);
	is_str(name, want_name, "from %s: reported as %s", from_name, want_name);
}

int
main(void)
{
	run_case(SCHED_OTHER, "other", SCHED_BATCH, "batch");
	run_case(SCHED_BATCH, "batch", SCHED_BATCH, "batch");
	run_case(SCHED_IDLE, "idle", SCHED_IDLE, "idle");
	return done();
}
