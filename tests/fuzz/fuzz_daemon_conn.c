/*
 * libFuzzer target: the session daemon's handling of frames from FastCGI
 * workers (conn_readable, conn_frame, conn_submit, job_reply ...), compiled
 * from the real sessions/sessiond.c.  The world around it is in
 * fuzz_daemon.h.  Input: two bytes of limits (fz_begin), then steps: one
 * byte picks the step, the bytes after it are its arguments.  Worker steps
 * dominate; zygote and child steps let requests reach a session, run and be
 * answered with their streams.
 */
#include <stddef.h>
#include <stdint.h>

int	sessiond_main(int, char **);	/* sessiond.c's main, renamed by -Dmain= */
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "../../sessions/sessiond.c"
#include "fuzz_daemon.h"

/* sessiond.c calls it only as the zygote, which the fuzz targets never become. */
void
zygote_main(int fd)
{
	(void)fd;
	abort();
}

static const enum fz_op conn_ops[] = {
	FZ_W_RAW, FZ_W_FRAME, FZ_W_FRAME, FZ_W_FRAME, FZ_W_BIG, FZ_W_READ,
	FZ_W_EXEC, FZ_W_EXEC, FZ_W_CLOSE, FZ_Z_ANSWER, FZ_Z_ANSWER, FZ_C_READY,
	FZ_C_DONE, FZ_C_EXIT, FZ_TIMERS, FZ_C_OUT,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t cf0, cf1;
	int fds, i;

	fz_init_once();
	fds = fz_count_fds();
	cf0 = fz_u8(&in);
	cf1 = fz_u8(&in);
	fz_begin(cf0, cf1, cf0 & 2);
	for (i = 0; i < FZ_MAX_OPS && in.n > 0; i++)
		fz_step(conn_ops[fz_u8(&in) % (sizeof(conn_ops) / sizeof(conn_ops[0]))], &in);
	/* What is still queued on the links is read, as the loop would. */
	for (i = 0; i < FZ_WORKERS; i++)
		fz_step(FZ_W_READ, &(struct fz_in){ (const uint8_t[]){ (uint8_t)i }, 1 });
	fz_end(fds);
	return 0;
}
