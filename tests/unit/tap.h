/*
 * A tiny TAP producer for the unit tests (the shape of redis's testhelp.h):
 * each check prints "ok N - desc" or "not ok N - desc" and, on failure, a
 * diagnostic as "# " lines; done() prints the plan "1..N" last and returns
 * the exit status (0 only if every check passed).  tests/run.sh counts the
 * lines.  One test file is one translation unit, so the state is static.
 *
 *	ok(cond, fmt, ...)			any condition
 *	is_int(got, want, fmt, ...)		integers, both shown on failure
 *	is_str(got, want, fmt, ...)		NUL-terminated strings (NULL allowed)
 *	is_mem(got, glen, want, wlen, fmt, ...)	byte strings, shown escaped
 *	like(got, needle, fmt, ...)		got contains needle
 *	skip(why, fmt, ...)			"ok N - desc # SKIP why"
 *	diag(fmt, ...)				a "# " line
 *
 * Output is flushed after every line, so a crash (or a sanitizer report)
 * still leaves every earlier result in the log.
 */
#ifndef PYEXEC_TAP_H
#define PYEXEC_TAP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define TAP_FMT(a, b)	__attribute__((format(printf, a, b), unused))

static int tap_n __attribute__((unused));	/* checks so far */
static int tap_failed __attribute__((unused));	/* of which failed */

static void TAP_FMT(1, 2)
diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Prints one result line; returns cond, so callers can add diagnostics. */
static int __attribute__((unused))
tap_result(int cond, const char *fmt, va_list ap)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	return cond;
}

static int TAP_FMT(2, 3)
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	return cond;
}

static int TAP_FMT(3, 4)
is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int cond = got == want;

	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	if (!cond) {
		diag("       got: %lld", got);
		diag("  expected: %lld", want);
	}
	return cond;
}

/* Prints p[0..n) as a C string literal after "# <label>". */
static void __attribute__((unused))
tap_dump(const char *label, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, max = n > 2048 ? 2048 : n;

	printf("# %s", label);
	if (p == NULL) {
		fputs("NULL\n", stdout);
		return;
	}
	fputc('"', stdout);
	for (i = 0; i < max; i++) {
		if (s[i] == '"' || s[i] == '\\')
			printf("\\%c", s[i]);
		else if (s[i] == '\n')
			fputs("\\n", stdout);
		else if (s[i] >= 0x20 && s[i] < 0x7f)
			fputc(s[i], stdout);
		else
			printf("\\x%02x", s[i]);
	}
	fputc('"', stdout);
	if (max < n)
		printf("... (%zu bytes)", n);
	fputc('\n', stdout);
	fflush(stdout);
}

static int TAP_FMT(5, 6)
is_mem(const void *got, size_t glen, const void *want, size_t wlen,
    const char *fmt, ...)
{
	va_list ap;
	int cond;

	cond = got != NULL && want != NULL && glen == wlen &&
	    (wlen == 0 || memcmp(got, want, wlen) == 0);
	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	if (!cond) {
		tap_dump("       got: ", got, glen);
		tap_dump("  expected: ", want, wlen);
	}
	return cond;
}

static int TAP_FMT(3, 4)
is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int cond;

	cond = (got == NULL && want == NULL) ||
	    (got != NULL && want != NULL && strcmp(got, want) == 0);
	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	if (!cond) {
		tap_dump("       got: ", got, got ? strlen(got) : 0);
		tap_dump("  expected: ", want, want ? strlen(want) : 0);
	}
	return cond;
}

static int TAP_FMT(3, 4)
like(const char *got, const char *needle, const char *fmt, ...)
{
	va_list ap;
	int cond = got != NULL && strstr(got, needle) != NULL;

	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	if (!cond) {
		tap_dump("         got: ", got, got ? strlen(got) : 0);
		tap_dump("  to contain: ", needle, strlen(needle));
	}
	return cond;
}

static void TAP_FMT(2, 3)
skip(const char *why, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("ok %d - ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
	fflush(stdout);
}

/* Prints the plan; returns the exit status for main(). */
static int __attribute__((unused))
done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_failed)
		diag("%d of %d checks failed", tap_failed, tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
