/*
 * JSON output for pyexec-fcgi: a growable buffer, strings escaped from bytes
 * that may not be UTF-8 (invalid sequences become U+FFFD, as Python's
 * errors="replace" does), and values written in the spacing of Python's
 * json.dumps ({"a": 1, "b": [1, 2]}), the shape of the statement's examples.
 */
#ifndef PYEXEC_FCGI_JSON_H
#define PYEXEC_FCGI_JSON_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

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

/* Appends a parsed json-c value, Python-style spacing. */
void	json_put_value(struct jbuf *b, struct json_object *o);

/* Bytes in p[0..n) after UTF-8 repair (for sizing and tests). */
size_t	utf8_repaired_len(const uint8_t *p, size_t n);

#endif
