/*
 * One structured log format for every pyexec process: logfmt (key=value) lines on
 * stderr, which journald collects under systemd.  Each line starts with
 * ts=, level=, prog= and pid=; the caller supplies the rest as key=value pairs.
 */
#ifndef PYEXEC_LOG_H
#define PYEXEC_LOG_H

#include <stdarg.h>

/* Names the program in every line; call once, first thing in main(). */
void	log_init(const char *prog);

void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only printed when log_debug is on (configuration key log_debug). */
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int log_debug_on;

/* Log and exit(1): for start-up and privilege code where going on would be unsafe.
 * fatal() appends errno's text, fatalx() does not. */
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Writes s into buf as a logfmt value: quoted and escaped when it holds spaces,
 * quotes, '=' or control bytes; truncated to fit.  Returns buf. */
const char *log_quote(char *buf, size_t len, const char *s);

#endif
