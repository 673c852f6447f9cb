#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

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
	if (jbuf_reserve(b, n) == -1)
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

void
json_put_value(struct jbuf *b, struct json_object *o)
{
	const char *s;
	size_t i, n;
	int first = 1;

	switch (json_object_get_type(o)) {
	case json_type_null:
		jbuf_str(b, "null");
		break;
	case json_type_boolean:
		jbuf_str(b, json_object_get_boolean(o) ? "true" : "false");
		break;
	case json_type_int:
	case json_type_double:
		/* json-c keeps a parsed number's own text: 2.0 stays 2.0. */
		jbuf_str(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		break;
	case json_type_string:
		s = json_object_get_string(o);
		json_put_string(b, (const uint8_t *)s, (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		jbuf_add(b, "[", 1);
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			if (i)
				jbuf_add(b, ", ", 2);
			json_put_value(b, json_object_array_get_idx(o, i));
		}
		jbuf_add(b, "]", 1);
		break;
	case json_type_object:
		jbuf_add(b, "{", 1);
		{
			json_object_object_foreach(o, key, val) {
				if (!first)
					jbuf_add(b, ", ", 2);
				first = 0;
				json_put_string(b, (const uint8_t *)key, strlen(key));
				jbuf_add(b, ": ", 2);
				json_put_value(b, val);
			}
		}
		jbuf_add(b, "}", 1);
		break;
	}
}
