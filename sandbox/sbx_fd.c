/*
 * Descriptors of the session child: only 0..max_keep_fd survive, the
 * caller's stdin/out/err and the session's own channels. Everything else
 * the zygote may hold (logs, the daemon's sockets, another session's pipes:
 * lessons.md, "Inherited descriptors") is closed whether or not it was
 * marked close-on-exec, since nothing here will ever exec.
 */
#include <errno.h>
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx_int.h"

int
sbx_fd_child(int max_keep_fd, char *err, size_t errlen)
{
	/* The raw call: glibc 2.36 has a wrapper, older ones do not. */
	if (syscall(SYS_close_range, (unsigned)max_keep_fd + 1, ~0U, 0) == -1) {
		sbx_errf(err, errlen, errno, "sbx_fd_child: close_range");
		return -1;
	}
	return 0;
}
