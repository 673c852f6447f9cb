/*
 * The real common/log.c for the daemon fuzz targets, with its one write(2)
 * turned off: the daemon logs every refused frame, and a fuzzer runs hundreds
 * of thousands of them a second.  Every line is still formatted (vsnprintf,
 * log_quote over a child's text), so the formats are exercised as in the
 * daemon.  FUZZ_DAEMON_LOG=1 in the environment writes the lines as usual.
 */
#include <stddef.h>
#include <sys/types.h>

/*
 * clang's -Wformat-nonliteral (part of -Wformat=2) also flags the
 * vsnprintf(fmt, ap) of a va_list helper, which gcc exempts; log.c is built
 * with gcc by the main Makefile.  Ignored for this file only.
 */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wformat-nonliteral"
#define write fuzz_log_write
#include "../../common/log.c"
#undef write
#pragma clang diagnostic pop

ssize_t	write(int, const void *, size_t);	/* unistd.h declared it under the other name */

ssize_t
fuzz_log_write(int fd, const void *buf, size_t n)
{
	static int on = -1;

	if (on == -1)
		on = getenv("FUZZ_DAEMON_LOG") != NULL;
	return on ? write(fd, buf, n) : (ssize_t)n;
}
