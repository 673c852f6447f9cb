/*
 * JSON for pyexec-fcgi: a growable buffer, strings escaped from bytes that
 * may not be UTF-8 (invalid sequences become U+FFFD, as Python's
 * errors="replace" does), and a strict checker that can write a value again
 * in the spacing of Python's json.dumps ({"a": 1, "b": [1, 2]}), the shape
 * of the statement's examples.
 */
#ifndef PYEXEC_FCGI_JSON_H
#define PYEXEC_FCGI_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting json_check accepts. */
#define JSON_MAX_DEPTH	64

struct jbuf {
	char	*jb_buf;
	size_t	 jb_len, jb_cap;
	int	 jb_failed;	/* an allocation failed: the content is incomplete */
};

void	jbuf_init(struct jbuf *b);
void	jbuf_free(struct jbuf *b);
void	jbuf_add(struct jbuf *b, const void *p, size_t n);
void	jbuf_str(struct jbuf *b, const char *s);

/* Appends p[0..n) as a JSON string literal, repairing invalid UTF-8. */
void	json_put_string(struct jbuf *b, const uint8_t *p, size_t n);

/*
 * Checks that p[0..n) is exactly one JSON value (RFC 8259, strictly: no NaN
 * or Infinity, no single quotes, no raw control characters in strings,
 * well-formed UTF-8, at most JSON_MAX_DEPTH deep, only white space around).
 * With out, also appends the value in Python's json.dumps spacing, numbers
 * and string escapes as written.  Returns 0, or -1 (out may then hold a part).
 */
int	json_check(const void *p, size_t n, struct jbuf *out);

/*
 * Called by json_check_members for each member of the top-level object, in
 * the order written: the key as written, quotes included, and the value as
 * written, without the white space around it.  Both spans are checked JSON.
 * Returns 0, or -1 to stop the check, which then fails.
 */
typedef int json_member_fn(void *arg, const char *key, size_t keylen,
    const char *val, size_t vallen);

/*
 * json_check without out, that also shows the members of the top-level value
 * to fn when it is an object (before the rest of the text is checked: fn may
 * see members of a text that fails later).  Nothing is allocated, whatever
 * the text holds.  Returns 0, or -1.
 */
int	json_check_members(const void *p, size_t n, json_member_fn *fn, void *arg);

/* Bytes in p[0..n) after UTF-8 repair (for sizing and tests). */
size_t	utf8_repaired_len(const uint8_t *p, size_t n);

#endif
