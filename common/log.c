#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "pyexec";
static pid_t log_pid;		/* getpid() is a system call: kept, renewed at fork */
int log_debug_on;

static void
log_renew_pid(void)
{
	log_pid = getpid();
}

void
log_init(const char *prog)
{
	log_prog = prog;
	if (log_pid == 0)
		(void)pthread_atfork(NULL, NULL, log_renew_pid);
	log_renew_pid();
}

/*
 * One write(2) per line, so that lines from the threads of pyexec-fcgi and
 * from several processes sharing a stderr never interleave.
 */
static void
log_vemit(const char *level, const char *fmt, va_list ap, int errnum)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s pid=%d ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level, log_prog,
	    (int)(log_pid ? log_pid : getpid()));
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line) - 64)
		n = sizeof(line) - 64;
	if (errnum)
		n += snprintf(line + n, sizeof(line) - n, " errno=\"%s\"",
		    strerror(errnum));
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_FN(name, level)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	int saved = errno;					\
	va_start(ap, fmt);					\
	log_vemit(level, fmt, ap, 0);				\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warn")
LOG_FN(log_err, "error")

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vemit("debug", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vemit("fatal", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}

const char *
log_quote(char *buf, size_t len, const char *s)
{
	size_t i = 0;
	int quote = (*s == '\0');
	const char *p;

	for (p = s; *p && !quote; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    (unsigned char)*p < 0x20 || *p == 0x7f)
			quote = 1;
	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	if (quote)
		buf[i++] = '"';
	for (p = s; *p && i + 4 < len; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			buf[i++] = '\\';
			buf[i++] = c;
		} else if (c < 0x20 || c == 0x7f)
			buf[i++] = '?';
		else
			buf[i++] = c;
	}
	if (quote)
		buf[i++] = '"';
	buf[i] = '\0';
	return buf;
}
