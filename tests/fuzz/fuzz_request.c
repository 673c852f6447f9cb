/*
 * libFuzzer target: the HTTP side of pyexec-fcgi without I/O (fcgi_app/fcgi_req.c
 * and fcgi_json.c): request validation, routing, and the JSON shaping of the
 * daemon's replies.  Checks invariants of the API contract (docs/api.md), not
 * only crashes: every reply body is strict JSON, "error" never stands beside
 * "stdout"/"stderr"/"result", no key is null but "result", streams and script
 * results come back with their content.
 *
 * Input: byte 0 picks the part under test, the rest feeds it.
 *   0  fcgi_parse_exec: byte 1 bit 0 = a Pyexec-Session header follows
 *      (byte 2 = its length, then its bytes); the rest is the body.
 *   1  fcgi_route / fcgi_allowed / fcgi_content_type_ok: the rest is
 *      "uri\0method\0content-type"; also fcgi_reply_metrics over the bytes.
 *   2  fcgi_reply_exec: byte 1 status, byte 2 flags (bit 0 has_id, bit 1
 *      has_result, bit 2 out dropped, bit 3 err dropped), 16 id bytes, a u32
 *      per dropped count flagged, u16 stdout length + bytes, u16 stderr
 *      length + bytes, then the script result (the rest).
 *   3  json_check (the strict checker and rewriter of script results) against
 *      an independent checker in this file: same verdict, and the rewrite is
 *      strict JSON of the same value.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "fcgi_req.h"
#include "proto.h"
#include "sess_client.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "fuzz_request: invariant failed at %s:%d: %s\n", \
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

struct rd {
	const uint8_t	*p;
	size_t		 n;
};

static uint8_t
rd_u8(struct rd *r)
{
	uint8_t v = 0;

	if (r->n > 0) {
		v = r->p[0];
		r->p++;
		r->n--;
	}
	return v;
}

static uint32_t
rd_u32(struct rd *r)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++)
		v = v << 8 | rd_u8(r);
	return v;
}

/* Up to want bytes, fewer at the end of input. */
static const uint8_t *
rd_bytes(struct rd *r, size_t want, size_t *got)
{
	const uint8_t *p = r->p;

	*got = want < r->n ? want : r->n;
	r->p += *got;
	r->n -= *got;
	return p;
}

/* A heap copy of exactly n bytes (NULL-safe for n == 0), so that ASan sees overreads. */
static uint8_t *
dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	CHECK(d != NULL);
	if (n)
		memcpy(d, p, n);
	return d;
}

/*
 * An independent strict JSON checker (RFC 8259), the oracle of this target:
 * json-c's own strict mode lets NaN and more through, so it only parses here
 * what this checker accepted.  Returns the nesting depth (>= 0), or -1.
 */
struct jv {
	const uint8_t	*p, *end;
	int		 depth, max;
};

static void
jv_ws(struct jv *v)
{
	while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' ||
	    *v->p == '\r'))
		v->p++;
}

static int
jv_utf8(struct jv *v)
{
	uint8_t c = *v->p;
	uint32_t cp;
	int n, i;

	if (c >= 0xc0 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf7) {
		n = 3;
		cp = c & 0x07;
	} else
		return -1;
	if (v->end - v->p <= n)
		return -1;
	for (i = 1; i <= n; i++) {
		if ((v->p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (v->p[i] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	v->p += n + 1;
	return 0;
}

static int
jv_string(struct jv *v)
{
	int i;

	v->p++;
	while (v->p < v->end) {
		uint8_t c = *v->p;

		if (c == '"') {
			v->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++v->p >= v->end)
				return -1;
			if (*v->p == 'u') {
				for (i = 1; i <= 4; i++)
					if (v->p + i >= v->end || !isxdigit(v->p[i]))
						return -1;
				v->p += 5;
			} else if (strchr("\"\\/bfnrt", *v->p) != NULL && *v->p != '\0')
				v->p++;
			else
				return -1;
			continue;
		}
		if (c < 0x80)
			v->p++;
		else if (jv_utf8(v) == -1)
			return -1;
	}
	return -1;
}

static int
jv_digits(struct jv *v)
{
	const uint8_t *p = v->p;

	while (v->p < v->end && isdigit(*v->p))
		v->p++;
	return v->p > p ? 0 : -1;
}

static int
jv_value(struct jv *v)
{
	uint8_t close;

	if (v->p >= v->end)
		return -1;
	switch (*v->p) {
	case '{':
	case '[':
		close = *v->p == '{' ? '}' : ']';
		if (++v->depth > v->max)
			v->max = v->depth;
		v->p++;
		jv_ws(v);
		if (v->p < v->end && *v->p == close) {
			v->p++;
			v->depth--;
			return 0;
		}
		for (;;) {
			jv_ws(v);
			if (close == '}') {
				if (v->p >= v->end || *v->p != '"' || jv_string(v) == -1)
					return -1;
				jv_ws(v);
				if (v->p >= v->end || *v->p++ != ':')
					return -1;
				jv_ws(v);
			}
			if (jv_value(v) == -1)
				return -1;
			jv_ws(v);
			if (v->p >= v->end)
				return -1;
			if (*v->p == close)
				break;
			if (*v->p++ != ',')
				return -1;
		}
		v->p++;
		v->depth--;
		return 0;
	case '"':
		return jv_string(v);
	case 't':
	case 'f':
	case 'n': {
		const char *w = *v->p == 't' ? "true" : *v->p == 'f' ? "false" : "null";
		size_t n = strlen(w);

		if ((size_t)(v->end - v->p) < n || memcmp(v->p, w, n) != 0)
			return -1;
		v->p += n;
		return 0;
	}
	default:
		if (*v->p == '-')
			v->p++;
		if (v->p < v->end && *v->p == '0')
			v->p++;
		else if (jv_digits(v) == -1)
			return -1;
		if (v->p < v->end && *v->p == '.') {
			v->p++;
			if (jv_digits(v) == -1)
				return -1;
		}
		if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
			v->p++;
			if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
				v->p++;
			if (jv_digits(v) == -1)
				return -1;
		}
		return 0;
	}
}

static int
jv_check(const void *p, size_t n)
{
	struct jv v = { p, (const uint8_t *)p + n, 0, 0 };

	jv_ws(&v);
	if (jv_value(&v) == -1)
		return -1;
	jv_ws(&v);
	return v.p == v.end ? v.max : -1;
}

/* Checked by jv_check, then parsed by json-c for its structure. */
static int
strict_parse(const char *p, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error e;
	struct json_object *o;

	*out = NULL;
	if (jv_check(p, len) < 0)
		return -1;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH + 8);
	CHECK(tok != NULL);
	o = json_tokener_parse_ex(tok, p, (int)len);
	if ((e = json_tokener_get_error(tok)) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
	}
	json_tokener_free(tok);
	CHECK(e == json_tokener_success);	/* json-c takes all strict JSON */
	*out = o;
	return 0;
}

/* ---- 0: request bodies --------------------------------------------------- */

static int
is_err_string(const char *e)
{
	static const char *const known[] = {
		"request body is not valid JSON",
		"request body must be a JSON object",
		"give either 'code' or 'script', not both",
		"'code' is required",
		"'code' must be a string",
		"'script' must be a string",
		"'id' must be a string",
		"'id' does not match the Pyexec-Session header",
		"session not found",
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (e != NULL && strcmp(e, known[i]) == 0)
			return 1;
	return 0;
}

/*
 * The answer to an /execute body, worked out the slow way, from json-c's
 * whole tree (what fcgi_parse_exec did before it stopped building one):
 * the status, *err, and on success the code, the mode and the id.  json-c keeps
 * object keys as C strings, so a body with a \u0000 anywhere is left out
 * (returns -1): there the tree would take "code\u0000x" for "code".
 */
static int
expect_parse(const char *body, size_t len, const char *sid, const char **err,
    struct json_object **code, int *modep, uint8_t id[PROTO_ID_LEN], int *has_idp)
{
	struct json_object *root, *c = NULL, *s = NULL, *i = NULL, *src;
	uint8_t hid[PROTO_ID_LEN];
	const char *t;
	size_t tl;
	int has_c, has_s, has_i, bad, st = 422;

	*code = NULL;
	*has_idp = 0;
	if (memmem(body, len, "\\u0000", 6) != NULL)
		return -1;
	if (strict_parse(body, len, &root) == -1) {
		*err = "request body is not valid JSON";
		return 400;
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		*err = "request body must be a JSON object";
		return 400;
	}
	has_c = json_object_object_get_ex(root, "code", &c);
	has_s = json_object_object_get_ex(root, "script", &s);
	has_i = json_object_object_get_ex(root, "id", &i) && i != NULL;
	src = has_c ? c : s;
	if (has_c && has_s)
		*err = "give either 'code' or 'script', not both";
	else if (!has_c && !has_s)
		*err = "'code' is required";
	else if (!json_object_is_type(src, json_type_string))
		*err = has_c ? "'code' must be a string" : "'script' must be a string";
	else if (has_i && !json_object_is_type(i, json_type_string))
		*err = "'id' must be a string";
	else {
		st = 0;
		*code = json_object_get(src);
		*modep = has_c ? PROTO_MODE_CODE : PROTO_MODE_SCRIPT;
		if (has_c && (has_i || sid != NULL)) {
			t = has_i ? json_object_get_string(i) : sid;
			tl = has_i ? (size_t)json_object_get_string_len(i) : strlen(sid);
			bad = proto_id_parse(t, tl, id) == -1;
			/* Ids in either case; a text that is no UUID matches only itself. */
			if (has_i && sid != NULL &&
			    (bad || proto_id_parse(sid, strlen(sid), hid) == -1 ?
			    tl != strlen(sid) || memcmp(t, sid, tl) != 0 :
			    memcmp(id, hid, PROTO_ID_LEN) != 0)) {
				*err = "'id' does not match the Pyexec-Session header";
				st = 422;
			} else if (bad) {
				*err = "session not found";
				st = 404;
			} else
				*has_idp = 1;
		}
		if (st != 0) {
			json_object_put(*code);
			*code = NULL;
		}
	}
	json_object_put(root);
	return st;
}

static void
fuzz_parse(struct rd *r)
{
	uint8_t fl = rd_u8(r), *body;
	char *sid = NULL;
	const uint8_t *p;
	const char *err = NULL, *want_err = NULL;
	struct json_object *want_code;
	uint8_t want_id[PROTO_ID_LEN];
	struct fcgi_exec e;
	size_t n;
	int st, want, want_mode = 0, want_has_id;

	if (fl & 1) {
		p = rd_bytes(r, rd_u8(r) & 63, &n);
		sid = malloc(n + 1);
		CHECK(sid != NULL);
		memcpy(sid, p, n);
		sid[n] = '\0';
	}
	body = dup_exact(r->p, r->n);
	st = fcgi_parse_exec((const char *)body, r->n, sid, &e, &err);
	/* The same answer as from json-c's whole tree. */
	want = expect_parse((const char *)body, r->n, sid, &want_err, &want_code,
	    &want_mode, want_id, &want_has_id);
	if (want != -1) {
		CHECK(st == want);
		if (st != 0)
			CHECK(strcmp(err, want_err) == 0);
		else {
			CHECK(e.fe_code_len == (size_t)json_object_get_string_len(want_code));
			CHECK(memcmp(e.fe_code, json_object_get_string(want_code),
			    e.fe_code_len) == 0);
			CHECK(e.fe_mode == want_mode);
			CHECK(e.fe_has_id == want_has_id);
			if (want_has_id)
				CHECK(memcmp(e.fe_id, want_id, PROTO_ID_LEN) == 0);
		}
		json_object_put(want_code);
	}
	if (st == 0) {
		CHECK(e.fe_mode == PROTO_MODE_CODE || e.fe_mode == PROTO_MODE_SCRIPT);
		CHECK(e.fe_root != NULL && e.fe_code != NULL);
		CHECK(strlen(e.fe_code) <= e.fe_code_len);
		CHECK(e.fe_code[e.fe_code_len] == '\0');
		if (e.fe_mode == PROTO_MODE_SCRIPT)
			CHECK(!e.fe_has_id);
		if (e.fe_has_id) {
			char txt[PROTO_ID_STRLEN + 1];
			uint8_t back[PROTO_ID_LEN];

			proto_id_format(e.fe_id, txt);
			CHECK(proto_id_parse(txt, strlen(txt), back) == 0);
			CHECK(memcmp(back, e.fe_id, PROTO_ID_LEN) == 0);
			if (sid != NULL)
				CHECK(strcasecmp(txt, sid) == 0);
		} else
			CHECK(e.fe_mode == PROTO_MODE_SCRIPT || sid == NULL);
		fcgi_exec_free(&e);
	} else {
		CHECK(st == 400 || st == 404 || st == 422);
		CHECK(is_err_string(err));
		CHECK(e.fe_root == NULL);	/* released on failure */
	}
	free(body);
	free(sid);
}

/* ---- 1: routing --------------------------------------------------------- */

static void
fuzz_route(struct rd *r)
{
	char *buf, *uri, *method, *ct, *z;
	struct proto_metrics m;
	struct fcgi_reply rep;
	const char *arg, *allow;
	enum fcgi_route rt;
	size_t arglen, n;
	int ok;

	memset(&m, 0, sizeof(m));
	memcpy(&m, r->p, r->n < sizeof(m) ? r->n : sizeof(m));
	buf = malloc(r->n + 3);
	CHECK(buf != NULL);
	memcpy(buf, r->p, r->n);
	buf[r->n] = buf[r->n + 1] = buf[r->n + 2] = '\0';
	uri = buf;
	method = uri + strlen(uri) + 1;
	ct = method + strlen(method) + 1;
	if (ct > buf + r->n + 2)
		ct = buf + r->n + 2;
	n = strlen(uri);
	/* Copies of exactly the string, so an overread is an ASan report. */
	uri = (char *)dup_exact((const uint8_t *)uri, n + 1);
	method = (char *)dup_exact((const uint8_t *)method, strlen(method) + 1);
	z = ct;
	ct = (char *)dup_exact((const uint8_t *)z, strlen(z) + 1);

	rt = fcgi_route(uri, &arg, &arglen);
	switch (rt) {
	case FR_SESSION:
		CHECK(arg != NULL && arg >= uri && arg + arglen <= uri + n && arglen > 0);
		CHECK(memchr(arg, '/', arglen) == NULL);
		CHECK(memchr(arg, '?', arglen) == NULL && memchr(arg, '#', arglen) == NULL);
		break;
	case FR_EXECUTE:
	case FR_HEALTH:
	case FR_METRICS:
	case FR_STATIC:
	case FR_NONE:
		CHECK(arg == NULL && arglen == 0);
		break;
	}
	allow = fcgi_allowed(rt, method);
	if (rt == FR_NONE)
		CHECK(allow == NULL);
	if (allow != NULL)
		CHECK(!strcmp(allow, "POST") || !strcmp(allow, "GET, HEAD") ||
		    !strcmp(allow, "DELETE"));
	ok = fcgi_content_type_ok(ct);
	CHECK(ok == 0 || ok == 1);
	CHECK(fcgi_content_type_ok(NULL) == 1);

	fcgi_reply_init(&rep);
	fcgi_reply_metrics(&rep, &m);
	CHECK(!rep.fr_body.jb_failed && rep.fr_status == 200);
	CHECK(rep.fr_body.jb_len == strlen(rep.fr_body.jb_buf));
	fcgi_reply_free(&rep);
	(void)fcgi_reason((int)(m.pm_lat_count & 0x3ff));

	free(uri);
	free(method);
	free(ct);
	free(buf);
}

/* ---- 2: reply shaping --------------------------------------------------- */

static int
is_ascii_text(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80 || p[i] == 0)
			return 0;
	return 1;
}

/* One stream key of a 200 reply, checked against what the daemon sent. */
static void
check_stream(struct json_object *root, const char *key, const uint8_t *p,
    uint32_t len, uint32_t dropped)
{
	struct json_object *v = NULL;
	const char *s;
	size_t sl;
	char tail[80];

	if (len == 0 && dropped == 0) {
		CHECK(!json_object_object_get_ex(root, key, NULL));
		return;
	}
	CHECK(json_object_object_get_ex(root, key, &v));
	CHECK(json_object_is_type(v, json_type_string));
	s = json_object_get_string(v);
	sl = (size_t)json_object_get_string_len(v);
	if (dropped == 0) {
		if (is_ascii_text(p, len))
			CHECK(sl == len && memcmp(s, p, len) == 0);
		return;
	}
	snprintf(tail, sizeof(tail), "[output truncated: %u bytes dropped]\n", dropped);
	CHECK(sl >= strlen(tail) && memcmp(s + sl - strlen(tail), tail, strlen(tail)) == 0);
	if (is_ascii_text(p, len)) {
		CHECK(sl >= len && memcmp(s, p, len) == 0);
		CHECK(sl == len + strlen(tail) + (len > 0 && p[len - 1] != '\n'));
	}
}

static void
fuzz_reply(struct rd *r)
{
	struct sess_reply sr;
	struct fcgi_reply rep;
	struct json_object *root = NULL, *v, *orig = NULL;
	const uint8_t *p;
	uint8_t fl;
	size_t n;
	int want, orig_ok = 0;

	memset(&sr, 0, sizeof(sr));
	sr.sr_status = rd_u8(r) % (PROTO_S_MAX + 2);	/* invalid ones too */
	fl = rd_u8(r);
	sr.sr_has_id = fl & 1;
	sr.sr_has_result = !!(fl & 2);
	p = rd_bytes(r, PROTO_ID_LEN, &n);
	memcpy(sr.sr_id, p, n);
	if (fl & 4)
		sr.sr_out_dropped = rd_u32(r);
	if (fl & 8)
		sr.sr_err_dropped = rd_u32(r);
	n = (size_t)rd_u8(r) << 8;
	n |= rd_u8(r);
	p = rd_bytes(r, n, &n);
	sr.sr_out = dup_exact(p, n);
	sr.sr_out_len = (uint32_t)n;
	n = (size_t)rd_u8(r) << 8;
	n |= rd_u8(r);
	p = rd_bytes(r, n, &n);
	sr.sr_err = dup_exact(p, n);
	sr.sr_err_len = (uint32_t)n;
	sr.sr_res = dup_exact(r->p, r->n);
	sr.sr_res_len = (uint32_t)r->n;

	fcgi_reply_init(&rep);
	fcgi_reply_exec(&rep, &sr, 7);
	CHECK(!rep.fr_body.jb_failed);
	/* Every control byte is escaped: the body holds no NUL. */
	CHECK(rep.fr_body.jb_buf != NULL && rep.fr_body.jb_len == strlen(rep.fr_body.jb_buf));
	CHECK(rep.fr_outcome != NULL && rep.fr_ctype != NULL);
	CHECK(strcmp(rep.fr_ctype, "application/json") == 0);

	/* The body is one strict JSON object. */
	CHECK(strict_parse(rep.fr_body.jb_buf, rep.fr_body.jb_len, &root) == 0);
	CHECK(json_object_is_type(root, json_type_object));
	{
		json_object_object_foreach(root, key, val) {
			CHECK(!strcmp(key, "id") || !strcmp(key, "error") ||
			    !strcmp(key, "result") || !strcmp(key, "stdout") ||
			    !strcmp(key, "stderr"));
			if (strcmp(key, "result") != 0)
				CHECK(json_object_is_type(val, json_type_string));
		}
	}
	if (json_object_object_get_ex(root, "error", NULL)) {
		CHECK(!json_object_object_get_ex(root, "stdout", NULL));
		CHECK(!json_object_object_get_ex(root, "stderr", NULL));
		CHECK(!json_object_object_get_ex(root, "result", NULL));
	}

	switch (sr.sr_status) {
	case PROTO_S_NOT_FOUND:	want = 404; break;
	case PROTO_S_BUSY:	want = 409; break;
	case PROTO_S_FULL:	want = 503; break;
	case PROTO_S_NO_MAIN:	want = 422; break;
	case PROTO_S_OK:
	case PROTO_S_TIMEOUT:
	case PROTO_S_MEMORY:
	case PROTO_S_TERMINATED:
	case PROTO_S_NOT_JSON:	want = 200; break;
	default:		want = 500; break;
	}
	CHECK(rep.fr_status == want);
	if (want != 200) {
		CHECK(json_object_object_length(root) == 1);
		CHECK(json_object_object_get_ex(root, "error", NULL));
		goto out;
	}
	if (sr.sr_status == PROTO_S_OK && sr.sr_has_result &&
	    jv_check(sr.sr_res, sr.sr_res_len) <= JSON_MAX_DEPTH)
		orig_ok = strict_parse((const char *)sr.sr_res, sr.sr_res_len, &orig) == 0;
	if (sr.sr_status == PROTO_S_OK && sr.sr_has_result && !orig_ok) {
		/* An unparsable result is the script's fault, told as such. */
		CHECK(json_object_object_length(root) == 1);
		CHECK(json_object_object_get_ex(root, "error", &v));
		CHECK(!strcmp(json_object_get_string(v),
		    "main() must return JSON-serializable data"));
		goto out;
	}
	if (sr.sr_has_id) {
		char txt[PROTO_ID_STRLEN + 1];

		proto_id_format(sr.sr_id, txt);
		CHECK(json_object_object_get_ex(root, "id", &v));
		CHECK(!strcmp(json_object_get_string(v), txt));
		CHECK(!strcmp(rep.fr_sid, txt));
	} else
		CHECK(!json_object_object_get_ex(root, "id", NULL));
	if (sr.sr_status != PROTO_S_OK) {
		CHECK(json_object_object_get_ex(root, "error", NULL));
		goto out;
	}
	CHECK(!json_object_object_get_ex(root, "error", NULL));
	check_stream(root, "stdout", sr.sr_out, sr.sr_out_len, sr.sr_out_dropped);
	check_stream(root, "stderr", sr.sr_err, sr.sr_err_len, sr.sr_err_dropped);
	if (sr.sr_has_result) {
		/* Re-serialized, the value is the one main() returned. */
		CHECK(json_object_object_get_ex(root, "result", &v));
		CHECK(json_object_equal(v, orig));
	} else
		CHECK(!json_object_object_get_ex(root, "result", NULL));
out:
	json_object_put(orig);
	json_object_put(root);
	fcgi_reply_free(&rep);
	free(sr.sr_out);
	free(sr.sr_err);
	free(sr.sr_res);
}

/* ---- 3: json_check against the oracle --------------------------------- */

static void
fuzz_check(struct rd *r)
{
	uint8_t *p = dup_exact(r->p, r->n);
	struct jbuf out;
	struct json_object *a = NULL, *b = NULL;
	int got, depth = jv_check(p, r->n);

	jbuf_init(&out);
	got = json_check(p, r->n, &out);
	CHECK(got == 0 || got == -1);
	/* Same verdict as the oracle, nesting limit included. */
	CHECK((got == 0) == (depth >= 0 && depth <= JSON_MAX_DEPTH));
	if (got == 0) {
		CHECK(!out.jb_failed);
		/* The rewrite is strict JSON, accepted again, and the same value. */
		CHECK(jv_check(out.jb_buf, out.jb_len) == depth);
		CHECK(json_check(out.jb_buf, out.jb_len, NULL) == 0);
		CHECK(strict_parse((const char *)p, r->n, &a) == 0);
		CHECK(strict_parse(out.jb_buf, out.jb_len, &b) == 0);
		CHECK(json_object_equal(a, b));
		json_object_put(a);
		json_object_put(b);
	}
	jbuf_free(&out);
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = { data, size };

	switch (rd_u8(&r) % 4) {
	case 3:
		fuzz_check(&r);
		break;
	case 0:
		fuzz_parse(&r);
		break;
	case 1:
		fuzz_route(&r);
		break;
	default:
		fuzz_reply(&r);
		break;
	}
	return 0;
}
