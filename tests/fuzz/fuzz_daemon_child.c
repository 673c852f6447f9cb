/*
 * libFuzzer target: the session daemon's handling of what a session child
 * sends (sess_ctl_readable, sess_ctl_frame, sess_finish_run, sess_drain ...),
 * compiled from the real sessions/sessiond.c.  The child is hostile: it may
 * send any datagram in any state, write any bytes to its pipes, close them,
 * or die.  The world around the daemon is in fuzz_daemon.h.
 *
 * Input: two bytes of limits (fz_begin), one byte of set-up: bit 0 script
 * mode, bit 1 a second request queued behind the first (code mode), bit 2
 * stop while the child is starting (no CHILD_READY), bit 3 past the time
 * limit (interrupted) before the child speaks.  Then steps, one byte each
 * plus arguments, mostly the child's.
 */
#include <stddef.h>
#include <stdint.h>

int	sessiond_main(int, char **);	/* sessiond.c's main, renamed by -Dmain= */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "../../sessions/sessiond.c"
#include "fuzz_daemon.h"

void
zygote_main(int fd)
{
	(void)fd;
	abort();
}

static const enum fz_op child_ops[] = {
	FZ_C_RAW, FZ_C_FRAME, FZ_C_FRAME, FZ_C_FRAME, FZ_C_FRAME, FZ_C_BIG,
	FZ_C_READ, FZ_C_READ, FZ_C_OUT, FZ_C_ERR, FZ_C_DRAIN, FZ_C_CLOSE,
	FZ_C_EXIT, FZ_TIMERS, FZ_W_CLOSE, FZ_W_EXEC, FZ_C_DONE, FZ_C_READY,
	FZ_Z_ANSWER,
};

/* Drives one session to where the child has the floor. */
static void
child_setup(uint8_t su)
{
	uint8_t exec0[] = { 0, (uint8_t)(su & 1), 0, 1, 0, 20 };
	uint8_t exec1[] = { 1, 2, 0, 2, 0, 5 };
	uint8_t zero[] = { 0, 0 }, one[] = { 1 };

	fz_step(FZ_W_EXEC, &(struct fz_in){ exec0, sizeof(exec0) });
	fz_step(FZ_Z_ANSWER, &(struct fz_in){ zero, 1 });
	if (su & 4)
		return;
	fz_step(FZ_C_READY, &(struct fz_in){ zero, 1 });
	if ((su & 2) && !(su & 1))
		fz_step(FZ_W_EXEC, &(struct fz_in){ exec1, sizeof(exec1) });
	if (su & 8)
		fz_step(FZ_TIMERS, &(struct fz_in){ one, 1 });
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t cf0, cf1, su;
	int fds, i;

	fz_init_once();
	fds = fz_count_fds();
	cf0 = fz_u8(&in);
	cf1 = fz_u8(&in);
	su = fz_u8(&in);
	/* No pool: the one child is the session's; no stop under way. */
	fz_begin((uint8_t)(cf0 & ~4), (uint8_t)(cf1 & ~0x10), 1);
	child_setup(su);
	for (i = 0; i < FZ_MAX_OPS && in.n > 0; i++)
		fz_step(child_ops[fz_u8(&in) % (sizeof(child_ops) / sizeof(child_ops[0]))], &in);
	for (i = 0; i < (int)fz.nch; i++)
		fz_step(FZ_C_READ, &(struct fz_in){ (const uint8_t[]){ (uint8_t)i }, 1 });
	fz_end(fds);
	return 0;
}
