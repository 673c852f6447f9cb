#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi_json.h"

void
jbuf_init(struct jbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
jbuf_free(struct jbuf *b)
{
	free(b->jb_buf);
	memset(b, 0, sizeof(*b));
}

static int
jbuf_reserve(struct jbuf *b, size_t n)
{
	size_t cap;
	char *nb;

	if (b->jb_failed)
		return -1;
	if (b->jb_len + n + 1 <= b->jb_cap)
		return 0;
	cap = b->jb_cap ? b->jb_cap : 256;
	while (cap < b->jb_len + n + 1)
		cap *= 2;
	if ((nb = realloc(b->jb_buf, cap)) == NULL) {
		b->jb_failed = 1;
		return -1;
	}
	b->jb_buf = nb;
	b->jb_cap = cap;
	return 0;
}

void
jbuf_add(struct jbuf *b, const void *p, size_t n)
{
	if (n == 0 || jbuf_reserve(b, n) == -1)
		return;
	memcpy(b->jb_buf + b->jb_len, p, n);
	b->jb_len += n;
	b->jb_buf[b->jb_len] = '\0';
}

void
jbuf_str(struct jbuf *b, const char *s)
{
	jbuf_add(b, s, strlen(s));
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0 when
 * it is not; then *bad is how many bytes one U+FFFD replaces: the maximal
 * subpart of a valid sequence, as the Unicode standard recommends and
 * Python's decoder does.
 */
static size_t
utf8_seq(const uint8_t *p, size_t n, size_t *bad)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;	/* nothing above U+10FFFF */
	} else {
		*bad = 1;
		return 0;
	}
	for (i = 1; i < len; i++) {
		if (i >= n || p[i] < lo || p[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

size_t
utf8_repaired_len(const uint8_t *p, size_t n)
{
	size_t i = 0, out = 0, k, bad;

	while (i < n) {
		if ((k = utf8_seq(p + i, n - i, &bad)) > 0) {
			out += k;
			i += k;
		} else {
			out += 3;
			i += bad;
		}
	}
	return out;
}

void
json_put_string(struct jbuf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, k, bad, run;

	jbuf_add(b, "\"", 1);
	while (i < n) {
		uint8_t c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			/* Copy a run of plain ASCII at once. */
			for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
			    p[run] != '"' && p[run] != '\\'; run++)
				;
			jbuf_add(b, p + i, run - i);
			i = run;
			continue;
		}
		if (c < 0x80) {
			char esc[6] = { '\\', 0, 0, 0, 0, 0 };

			switch (c) {
			case '"':  esc[1] = '"';  jbuf_add(b, esc, 2); break;
			case '\\': esc[1] = '\\'; jbuf_add(b, esc, 2); break;
			case '\n': esc[1] = 'n';  jbuf_add(b, esc, 2); break;
			case '\r': esc[1] = 'r';  jbuf_add(b, esc, 2); break;
			case '\t': esc[1] = 't';  jbuf_add(b, esc, 2); break;
			case '\b': esc[1] = 'b';  jbuf_add(b, esc, 2); break;
			case '\f': esc[1] = 'f';  jbuf_add(b, esc, 2); break;
			default:
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				jbuf_add(b, esc, 6);
				break;
			}
			i++;
			continue;
		}
		if ((k = utf8_seq(p + i, n - i, &bad)) > 0) {
			jbuf_add(b, p + i, k);
			i += k;
		} else {
			jbuf_add(b, "\xef\xbf\xbd", 3);	/* U+FFFD */
			i += bad;
		}
	}
	jbuf_add(b, "\"", 1);
}

/*
 * A strict JSON checker (RFC 8259: no NaN, no single quotes, no raw control
 * characters, well-formed UTF-8 only) that can also write the value again
 * in Python's json.dumps spacing.  json-c alone accepts all of those, so
 * every JSON that crosses a trust boundary is checked here first.  Numbers
 * are copied as written, so a large integer keeps every digit.
 */
struct jscan {
	const uint8_t	*js_p, *js_end;
	int		 js_depth;
	struct jbuf	*js_out;	/* NULL: check only */
	json_member_fn	*js_member;	/* NULL: the top-level members go unseen */
	void		*js_arg;
};

static void
js_emit(struct jscan *s, const void *p, size_t n)
{
	if (s->js_out != NULL)
		jbuf_add(s->js_out, p, n);
}

static void
js_ws(struct jscan *s)
{
	while (s->js_p < s->js_end && (*s->js_p == ' ' || *s->js_p == '\t' ||
	    *s->js_p == '\n' || *s->js_p == '\r'))
		s->js_p++;
}

static int
js_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
js_string(struct jscan *s)
{
	const uint8_t *start = s->js_p++;	/* the opening quote */
	size_t k, bad;
	int i;

	while (s->js_p < s->js_end) {
		uint8_t c = *s->js_p;

		if (c == '"') {
			s->js_p++;
			js_emit(s, start, s->js_p - start);
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++s->js_p >= s->js_end)
				return -1;
			switch (*s->js_p) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n':
			case 'r': case 't':
				s->js_p++;
				break;
			case 'u':
				for (i = 1; i <= 4; i++)
					if (s->js_p + i >= s->js_end || !js_hex(s->js_p[i]))
						return -1;
				s->js_p += 5;
				break;
			default:
				return -1;
			}
			continue;
		}
		if (c < 0x80) {
			s->js_p++;
			continue;
		}
		if ((k = utf8_seq(s->js_p, s->js_end - s->js_p, &bad)) == 0)
			return -1;
		s->js_p += k;
	}
	return -1;
}

static int
js_digits(struct jscan *s)
{
	const uint8_t *p = s->js_p;

	while (s->js_p < s->js_end && *s->js_p >= '0' && *s->js_p <= '9')
		s->js_p++;
	return s->js_p > p ? 0 : -1;
}

static int
js_number(struct jscan *s)
{
	const uint8_t *start = s->js_p;

	if (*s->js_p == '-')
		s->js_p++;
	if (s->js_p < s->js_end && *s->js_p == '0')
		s->js_p++;
	else if (js_digits(s) == -1)
		return -1;
	if (s->js_p < s->js_end && *s->js_p == '.') {
		s->js_p++;
		if (js_digits(s) == -1)
			return -1;
	}
	if (s->js_p < s->js_end && (*s->js_p == 'e' || *s->js_p == 'E')) {
		s->js_p++;
		if (s->js_p < s->js_end && (*s->js_p == '+' || *s->js_p == '-'))
			s->js_p++;
		if (js_digits(s) == -1)
			return -1;
	}
	js_emit(s, start, s->js_p - start);
	return 0;
}

static int
js_word(struct jscan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(s->js_end - s->js_p) < n || memcmp(s->js_p, w, n) != 0)
		return -1;
	s->js_p += n;
	js_emit(s, w, n);
	return 0;
}

static int js_value(struct jscan *);

/* An object or an array: open, members separated by commas, close. */
static int
js_container(struct jscan *s, int obj)
{
	const uint8_t *key = NULL, *keyend = NULL, *val;
	uint8_t close = obj ? '}' : ']';
	int first = 1, top = s->js_depth == 0;

	if (++s->js_depth > JSON_MAX_DEPTH)
		return -1;
	s->js_p++;
	js_emit(s, obj ? "{" : "[", 1);
	js_ws(s);
	if (s->js_p < s->js_end && *s->js_p == close)
		goto done;
	for (;;) {
		if (!first)
			js_emit(s, ", ", 2);
		first = 0;
		js_ws(s);
		if (obj) {
			key = s->js_p;
			if (s->js_p >= s->js_end || *s->js_p != '"' || js_string(s) == -1)
				return -1;
			keyend = s->js_p;
			js_ws(s);
			if (s->js_p >= s->js_end || *s->js_p++ != ':')
				return -1;
			js_emit(s, ": ", 2);
			js_ws(s);
		}
		val = s->js_p;
		if (js_value(s) == -1)
			return -1;
		if (obj && top && s->js_member != NULL &&
		    s->js_member(s->js_arg, (const char *)key, keyend - key,
		    (const char *)val, s->js_p - val) == -1)
			return -1;
		js_ws(s);
		if (s->js_p >= s->js_end)
			return -1;
		if (*s->js_p == close)
			break;
		if (*s->js_p++ != ',')
			return -1;
	}
done:
	s->js_p++;
	js_emit(s, obj ? "}" : "]", 1);
	s->js_depth--;
	return 0;
}

static int
js_value(struct jscan *s)
{
	if (s->js_p >= s->js_end)
		return -1;
	switch (*s->js_p) {
	case '{':
		return js_container(s, 1);
	case '[':
		return js_container(s, 0);
	case '"':
		return js_string(s);
	case 't':
		return js_word(s, "true");
	case 'f':
		return js_word(s, "false");
	case 'n':
		return js_word(s, "null");
	default:
		if (*s->js_p == '-' || (*s->js_p >= '0' && *s->js_p <= '9'))
			return js_number(s);
		return -1;
	}
}

static int
js_check(const void *p, size_t n, struct jbuf *out, json_member_fn *fn, void *arg)
{
	struct jscan s;

	s.js_p = p;
	s.js_end = s.js_p + n;
	s.js_depth = 0;
	s.js_out = out;
	s.js_member = fn;
	s.js_arg = arg;
	js_ws(&s);
	if (js_value(&s) == -1)
		return -1;
	js_ws(&s);
	return s.js_p == s.js_end ? 0 : -1;
}

int
json_check(const void *p, size_t n, struct jbuf *out)
{
	return js_check(p, n, out, NULL, NULL);
}

int
json_check_members(const void *p, size_t n, json_member_fn *fn, void *arg)
{
	return js_check(p, n, NULL, fn, arg);
}
