/*
 * Unit test of fcgi_app/fcgi_req.c (with fcgi_json.c): routing, request
 * checks and the exact response bodies of the API contract
 * (/work/shared/docs/api.md).  Daemon replies (struct sess_reply) are built
 * by hand; nothing talks to a daemon.  Prints TAP.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "fcgi_req.h"
#include "sess_client.h"
#include "tap.h"

#define FFFD	"\xef\xbf\xbd"		/* U+FFFD in UTF-8 */
#define SID	"12345678-9abc-4def-8011-223344556677"
static const uint8_t sid_bytes[PROTO_ID_LEN] = {
	0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
	0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77
};

#define JSON_ERR	"request body is not valid JSON"
#define MISMATCH	"'id' does not match the Pyexec-Session header"
#define NOT_OBJ		"request body must be a JSON object"
#define NOT_JSON_RES	"{\"error\": \"main() must return JSON-serializable data\"}"

/* ------------------------------------------------------------ heap use */

/*
 * The peak of the heap in use, json-c's included: malloc and friends are
 * replaced here and passed on to glibc's own (__libc_malloc...), counting
 * the usable size of each block.  Not under AddressSanitizer, whose own
 * malloc must stay the only one; there heap_counted is 0 and the checks of
 * the peak are skipped.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_COUNT	0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define HEAP_COUNT	0
#endif
#endif
#ifndef HEAP_COUNT
#define HEAP_COUNT	1
#endif

static const int heap_counted = HEAP_COUNT;
static long long heap_now, heap_peak;

#if HEAP_COUNT
void	*__libc_malloc(size_t);
void	*__libc_calloc(size_t, size_t);
void	*__libc_realloc(void *, size_t);
void	 __libc_free(void *);

static void
heap_add(long long n)
{
	heap_now += n;
	if (heap_now > heap_peak)
		heap_peak = heap_now;
}

void *
malloc(size_t n)
{
	void *p = __libc_malloc(n);

	if (p != NULL)
		heap_add((long long)malloc_usable_size(p));
	return p;
}

void *
calloc(size_t k, size_t n)
{
	void *p = __libc_calloc(k, n);

	if (p != NULL)
		heap_add((long long)malloc_usable_size(p));
	return p;
}

void *
realloc(void *p, size_t n)
{
	long long old = p != NULL ? (long long)malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, n);

	if (q != NULL) {
		heap_now -= old;
		heap_add((long long)malloc_usable_size(q));
	} else if (n == 0)
		heap_now -= old;
	return q;
}

void
free(void *p)
{
	if (p != NULL)
		heap_now -= (long long)malloc_usable_size(p);
	__libc_free(p);
}
#endif

/* Starts a measure: the peak from now on, above what is in use now. */
static long long
heap_mark(void)
{
	heap_peak = heap_now;
	return heap_now;
}

/* ---------------------------------------------------------------- routes */

static void
route_is(const char *uri, enum fcgi_route want, const char *want_arg)
{
	const char *arg = (const char *)1;
	size_t arglen = 12345;
	enum fcgi_route r = fcgi_route(uri, &arg, &arglen);

	is_int(r, want, "fcgi_route(\"%s\")", uri);
	if (want_arg != NULL)
		is_mem(arg, arglen, want_arg, strlen(want_arg), "  arg is \"%s\"", want_arg);
	else
		ok(arg == NULL && arglen == 0, "  no arg");
}

static void
test_route(void)
{
	route_is("/execute", FR_EXECUTE, NULL);
	route_is("/execute?x=1", FR_EXECUTE, NULL);
	route_is("/execute?", FR_EXECUTE, NULL);
	route_is("/execute#top", FR_EXECUTE, NULL);
	route_is("/health", FR_HEALTH, NULL);
	route_is("/health?verbose", FR_HEALTH, NULL);
	route_is("/metrics", FR_METRICS, NULL);
	route_is("/sessions/" SID, FR_SESSION, SID);
	route_is("/sessions/" SID "?a=b", FR_SESSION, SID);
	route_is("/sessions/x", FR_SESSION, "x");
	route_is("/sessions/", FR_NONE, NULL);
	route_is("/sessions", FR_NONE, NULL);
	route_is("/sessions/a/b", FR_NONE, NULL);
	route_is("/sessions/a/", FR_NONE, NULL);
	route_is("/", FR_STATIC, NULL);
	route_is("/docs", FR_STATIC, NULL);
	route_is("/openapi.json?x", FR_STATIC, NULL);
	route_is("/docs/", FR_NONE, NULL);
	route_is("", FR_NONE, NULL);
	route_is("/executex", FR_NONE, NULL);
	route_is("/execute/", FR_NONE, NULL);
	route_is("//execute", FR_NONE, NULL);
	route_is("/Execute", FR_NONE, NULL);
	route_is("/HEALTH", FR_NONE, NULL);
	route_is("/healthz", FR_NONE, NULL);
	route_is("/metrics/", FR_NONE, NULL);
}

static void
test_allowed(void)
{
	is_str(fcgi_allowed(FR_EXECUTE, "POST"), NULL, "POST /execute allowed");
	is_str(fcgi_allowed(FR_EXECUTE, "GET"), "POST", "GET /execute: Allow: POST");
	is_str(fcgi_allowed(FR_EXECUTE, "PUT"), "POST", "PUT /execute: Allow: POST");
	is_str(fcgi_allowed(FR_EXECUTE, "DELETE"), "POST", "DELETE /execute: Allow: POST");
	is_str(fcgi_allowed(FR_EXECUTE, "post"), "POST", "methods are case-sensitive");
	is_str(fcgi_allowed(FR_HEALTH, "GET"), NULL, "GET /health allowed");
	is_str(fcgi_allowed(FR_HEALTH, "HEAD"), NULL, "HEAD /health allowed");
	is_str(fcgi_allowed(FR_HEALTH, "POST"), "GET, HEAD", "POST /health: Allow: GET, HEAD");
	is_str(fcgi_allowed(FR_METRICS, "GET"), NULL, "GET /metrics allowed");
	is_str(fcgi_allowed(FR_METRICS, "HEAD"), NULL, "HEAD /metrics allowed");
	is_str(fcgi_allowed(FR_METRICS, "DELETE"), "GET, HEAD",
	    "DELETE /metrics: Allow: GET, HEAD");
	is_str(fcgi_allowed(FR_SESSION, "DELETE"), NULL, "DELETE /sessions/{id} allowed");
	is_str(fcgi_allowed(FR_SESSION, "GET"), "DELETE", "GET /sessions/{id}: Allow: DELETE");
	is_str(fcgi_allowed(FR_SESSION, "POST"), "DELETE", "POST /sessions/{id}: Allow: DELETE");
	is_str(fcgi_allowed(FR_NONE, "GET"), NULL, "unknown path: no Allow (404 first)");
}

static void
test_content_type(void)
{
	static const struct { const char *ct; int ok; } t[] = {
		{ NULL, 1 },
		{ "", 1 },
		{ "application/json", 1 },
		{ "Application/JSON", 1 },
		{ "APPLICATION/JSON", 1 },
		{ "application/json; charset=utf-8", 1 },
		{ "application/json;charset=utf-8", 1 },
		{ "application/json ;charset=x", 1 },
		{ " application/json", 1 },
		{ "text/plain", 0 },
		{ "application/jsonx", 0 },
		{ "application/json-seq", 0 },
		{ "application/jso", 0 },
		{ "application/x-www-form-urlencoded", 0 },
		{ "json", 0 },
		{ "application/json, text/plain", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(fcgi_content_type_ok(t[i].ct), t[i].ok, "Content-Type %s%s%s: %s",
		    t[i].ct ? "\"" : "", t[i].ct ? t[i].ct : "absent", t[i].ct ? "\"" : "",
		    t[i].ok ? "accepted" : "refused");
}

/* --------------------------------------------------------- parse_exec */

/* Parses body[0..len); checks the status and, when want_err, the string.
 * On success e is kept for the caller (keep != NULL) or freed. */
static int
parse_n(const char *body, size_t len, const char *hdr, int want_status,
    const char *want_err, const char *desc, struct fcgi_exec *keep)
{
	struct fcgi_exec e;
	const char *err = NULL;
	int st;

	memset(&e, 0xa5, sizeof(e));
	st = fcgi_parse_exec(body, len, hdr, &e, &err);
	is_int(st, want_status, "parse: %s -> %d", desc, want_status);
	if (want_err != NULL)
		is_str(st ? err : NULL, want_err, "  error \"%s\"", want_err);
	if (st != 0) {
		ok(e.fe_root == NULL, "  nothing left to free");
		return st;
	}
	if (keep != NULL)
		*keep = e;
	else
		fcgi_exec_free(&e);
	return st;
}

static int
parse(const char *body, const char *hdr, int want_status, const char *want_err,
    const char *desc)
{
	return parse_n(body, strlen(body), hdr, want_status, want_err, desc, NULL);
}

/* A good request kept in *e for more checks; returns the status. */
static int
keep(const char *body, const char *hdr, const char *desc, struct fcgi_exec *e)
{
	return parse_n(body, strlen(body), hdr, 0, NULL, desc, e);
}

static char *
nested(int depth)
{
	size_t n = 64 + 2 * (size_t)depth;
	char *s = malloc(n), *p;
	int i;

	if (s == NULL)
		exit(2);
	p = s + sprintf(s, "{\"code\": \"x\", \"d\": ");
	for (i = 0; i < depth; i++)
		*p++ = '[';
	for (i = 0; i < depth; i++)
		*p++ = ']';
	strcpy(p, "}");
	return s;
}

static void
test_parse_invalid(void)
{
	char *s;

	parse_n("", 0, NULL, 400, JSON_ERR, "empty body", NULL);
	parse("   \n", NULL, 400, JSON_ERR, "white space only");
	parse("{", NULL, 400, JSON_ERR, "unterminated object");
	parse("{\"code\": \"x\"", NULL, 400, JSON_ERR, "missing }");
	parse("{\"code\": \"x}", NULL, 400, JSON_ERR, "unterminated string");
	parse("{\"code\": \"x\"} x", NULL, 400, JSON_ERR, "trailing garbage");
	parse("{\"code\": \"x\"}}", NULL, 400, JSON_ERR, "trailing }");
	parse("{\"code\": \"x\"}{}", NULL, 400, JSON_ERR, "two objects");
	parse("{\"code\": \"x\"} 1", NULL, 400, JSON_ERR, "object then a number");
	parse("{\"code\": \"x\",}", NULL, 400, JSON_ERR, "trailing comma");
	parse("{\"code\": \"x\"} // c", NULL, 400, JSON_ERR, "a comment after");
	parse("/* c */ {\"code\": \"x\"}", NULL, 400, JSON_ERR, "a comment before");
	parse("{code: \"x\"}", NULL, 400, JSON_ERR, "unquoted key");
	parse("NaN", NULL, 400, JSON_ERR, "NaN");
	parse("{\"code\": NaN}", NULL, 400, JSON_ERR, "NaN as the code");
	parse("{\"code\": \"x\", \"n\": NaN}", NULL, 400, JSON_ERR, "NaN in another field");
	parse("{\"code\": \"x\", \"n\": Infinity}", NULL, 400, JSON_ERR,
	    "Infinity in another field");
	parse("{\"code\": \"x\", \"n\": -Infinity}", NULL, 400, JSON_ERR,
	    "-Infinity in another field");
	parse("{'code': 'x'}", NULL, 400, JSON_ERR, "single quotes");
	parse("{\"code\": 'x'}", NULL, 400, JSON_ERR, "single-quoted value");
	parse("{'code': \"x\"}", NULL, 400, JSON_ERR, "single-quoted key");
	parse("{\"code\": \"a\nb\"}", NULL, 400, JSON_ERR, "raw newline inside a string");
	parse("{\"code\": \"\\x41\"}", NULL, 400, JSON_ERR, "bad escape \\x");
	parse("{\"code\": \"\xff\"}", NULL, 400, JSON_ERR, "invalid UTF-8 byte FF");
	parse("{\"code\": \"\x80\"}", NULL, 400, JSON_ERR, "lone continuation byte");
	parse("{\"code\": \"\xc0\xaf\"}", NULL, 400, JSON_ERR, "overlong C0 AF");
	parse("{\"code\": \"\xe2\x82\"}", NULL, 400, JSON_ERR, "truncated E2 82");
	parse("{\"code\": \"\xed\xa0\x80\"}", NULL, 400, JSON_ERR, "encoded surrogate ED A0 80");
	parse("{\"code\": \"\xf4\x90\x80\x80\"}", NULL, 400, JSON_ERR, "F4 90 80 80 above U+10FFFF");
	parse("{\"\xff\": 1, \"code\": \"x\"}", NULL, 400, JSON_ERR, "invalid UTF-8 in a key");
	parse("{\"code\": 01}", NULL, 400, JSON_ERR, "leading zero");
	parse("{\"code\": tru}", NULL, 400, JSON_ERR, "bad literal");

	s = nested(100);
	parse(s, NULL, 400, JSON_ERR, "nesting of 100 arrays (over the limit)");
	free(s);
	s = nested(1000);
	parse(s, NULL, 400, JSON_ERR, "nesting of 1000 arrays");
	free(s);
	s = nested(20);
	parse(s, NULL, 0, NULL, "nesting of 20 arrays is fine");
	free(s);
}

static void
test_parse_not_object(void)
{
	parse("[]", NULL, 400, NOT_OBJ, "[]");
	parse("[{\"code\": \"x\"}]", NULL, 400, NOT_OBJ, "an array holding the object");
	parse("\"code\"", NULL, 400, NOT_OBJ, "a string");
	parse("5", NULL, 400, NOT_OBJ, "a number (5)");
	parse("-1.5", NULL, 400, NOT_OBJ, "a number (-1.5)");
	parse("5 ", NULL, 400, NOT_OBJ, "a number followed by a space");
	parse("null", NULL, 400, NOT_OBJ, "null");
	parse("true", NULL, 400, NOT_OBJ, "true");
	parse("false", NULL, 400, NOT_OBJ, "false");
	parse(" [1, 2] \n", NULL, 400, NOT_OBJ, "an array with white space around");
}

static void
test_parse_fields(void)
{
	struct fcgi_exec e;
	uint8_t want_id[PROTO_ID_LEN];

	parse("{\"code\": \"x\", \"script\": \"y\"}", NULL, 422,
	    "give either 'code' or 'script', not both", "both code and script");
	parse("{\"code\": 1, \"script\": 2}", NULL, 422,
	    "give either 'code' or 'script', not both", "both, neither a string");
	parse("{}", NULL, 422, "'code' is required", "{}");
	parse("{\"id\": null}", NULL, 422, "'code' is required", "only id null");
	parse("{\"Code\": \"x\"}", NULL, 422, "'code' is required", "\"Code\" is not \"code\"");
	parse("{\"code\": 1}", NULL, 422, "'code' must be a string", "code 1");
	parse("{\"code\": null}", NULL, 422, "'code' must be a string", "code null");
	parse("{\"code\": [\"x\"]}", NULL, 422, "'code' must be a string", "code array");
	parse("{\"code\": {}}", NULL, 422, "'code' must be a string", "code object");
	parse("{\"code\": true}", NULL, 422, "'code' must be a string", "code true");
	parse("{\"script\": 1}", NULL, 422, "'script' must be a string", "script 1");
	parse("{\"script\": null}", NULL, 422, "'script' must be a string", "script null");
	parse("{\"code\": \"x\", \"id\": 5}", NULL, 422, "'id' must be a string", "id 5");
	parse("{\"code\": \"x\", \"id\": []}", NULL, 422, "'id' must be a string", "id []");
	parse("{\"code\": \"x\", \"id\": {}}", NULL, 422, "'id' must be a string", "id {}");
	parse("{\"code\": \"x\", \"id\": false}", NULL, 422, "'id' must be a string",
	    "id false");
	parse("{\"script\": \"x\", \"id\": 5}", NULL, 422, "'id' must be a string",
	    "script mode, id 5");
	parse("{\"code\": \"x\", \"id\": \"nope\"}", NULL, 404, "session not found",
	    "id not a UUID");
	parse("{\"code\": \"x\", \"id\": \"\"}", NULL, 404, "session not found", "id empty");
	parse("{\"code\": \"x\", \"id\": \"" SID "x\"}", NULL, 404, "session not found",
	    "id one character too long");
	parse("{\"code\": \"x\", \"id\": \"" SID "\\u0000\"}", NULL, 404, "session not found",
	    "id with a NUL after the UUID");

	/* Good requests. */
	if (keep("{\"code\": \"print('Hello, World!')\"}", NULL,
	    "the statement's example", &e) == 0) {
		is_int(e.fe_mode, PROTO_MODE_CODE, "  code mode");
		is_mem(e.fe_code, e.fe_code_len, "print('Hello, World!')", 22, "  the code");
		is_int(e.fe_has_id, 0, "  no id: a new session");
		fcgi_exec_free(&e);
		ok(e.fe_root == NULL, "  fcgi_exec_free clears fe_root");
	}
	if (keep("{\"code\": \"\", \"id\": null}", NULL,
	    "empty code, id null", &e) == 0) {
		is_int(e.fe_code_len, 0, "  empty code");
		is_int(e.fe_has_id, 0, "  id null means a new session");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"x\", \"id\": \"" SID "\"}", NULL,
	    "code with an id", &e) == 0) {
		is_int(e.fe_has_id, 1, "  has id");
		is_mem(e.fe_id, PROTO_ID_LEN, sid_bytes, PROTO_ID_LEN, "  id bytes");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"x\", \"id\": \"12345678-9ABC-4DEF-8011-223344556677\"}",
	    NULL, "uppercase id", &e) == 0) {
		is_mem(e.fe_id, PROTO_ID_LEN, sid_bytes, PROTO_ID_LEN, "  same id bytes");
		fcgi_exec_free(&e);
	}
	{
		static const char b[] = "{\"code\": \"a\\u0000b\\u0000\"}";

		if (parse_n(b, sizeof(b) - 1, NULL, 0, NULL, "code with embedded NULs",
		    &e) == 0) {
			is_mem(e.fe_code, e.fe_code_len, "a\0b\0", 4,
			    "  code keeps its full length (4)");
			fcgi_exec_free(&e);
		}
	}
	if (keep("{\"code\": \"\\u00e9\\ud83d\\ude00\\n\"}", NULL,
	    "escapes decode to UTF-8", &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "\xc3\xa9\xf0\x9f\x98\x80\n", 7,
		    "  U+00E9, U+1F600, newline");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"\xc3\xa9\"}", NULL, "raw UTF-8 in code",
	    &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "\xc3\xa9", 2, "  kept");
		fcgi_exec_free(&e);
	}
	parse("{\"code\": \"x\"} \n\t\r ", NULL, 0, NULL, "trailing white space allowed");
	parse(" \n{\"code\": \"x\"}", NULL, 0, NULL, "leading white space allowed");
	parse("{\"code\": \"x\", \"extra\": [1, {\"a\": null}], \"timeout\": 5}", NULL, 0,
	    NULL, "unknown fields ignored");
	{
		static const char b[] = "{\"code\": \"x\"}garbage";

		parse_n(b, 13, NULL, 0, NULL, "len stops before the garbage", NULL);
	}
	if (keep("{\"script\": \"def main():\\n    return 1\\n\"}", NULL,
	    "script mode", &e) == 0) {
		is_int(e.fe_mode, PROTO_MODE_SCRIPT, "  script mode");
		is_mem(e.fe_code, e.fe_code_len, "def main():\n    return 1\n", 25,
		    "  the script");
		is_int(e.fe_has_id, 0, "  no session");
		fcgi_exec_free(&e);
	}

	/* The Pyexec-Session header. */
	memcpy(want_id, sid_bytes, sizeof(want_id));
	if (keep("{\"code\": \"x\"}", SID, "header names the session",
	    &e) == 0) {
		is_int(e.fe_has_id, 1, "  has id from the header");
		is_mem(e.fe_id, PROTO_ID_LEN, want_id, PROTO_ID_LEN, "  id bytes");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"x\", \"id\": null}", SID,
	    "id null in the body, header given", &e) == 0) {
		is_int(e.fe_has_id, 1, "  the header's id is used");
		fcgi_exec_free(&e);
	}
	parse("{\"code\": \"x\", \"id\": \"" SID "\"}", SID, 0, NULL, "same id in both");
	parse("{\"code\": \"x\"}", "nope", 404, "session not found", "header not a UUID");
	{
		struct fcgi_exec e2;
		const char *err = NULL;
		int st;

		static const char b1[] = "{\"code\": \"x\", \"id\": \"" SID "\"}";
		static const char b2[] = "{\"code\": \"x\", \"id\": 7}";

		st = fcgi_parse_exec(b1, strlen(b1), "00000000-0000-4000-8000-000000000000",
		    &e2, &err);
		is_int(st, 422, "parse: header and body name different sessions -> 422");
		like(st ? err : NULL, "Pyexec-Session", "  the error names the header");
		if (st == 0)
			fcgi_exec_free(&e2);
		st = fcgi_parse_exec(b2, strlen(b2), SID, &e2, &err);
		is_int(st, 422, "parse: header given, body id 7 -> 422");
		is_str(st ? err : NULL, "'id' must be a string", "  'id' must be a string");
		if (st == 0)
			fcgi_exec_free(&e2);
	}
}

/* A body of exactly len bytes: pre, then item repeated (its last comma
 * dropped), then post, padded with white space before post. */
static char *
big_body(const char *pre, const char *item, const char *post, size_t len)
{
	size_t np = strlen(pre), ni = strlen(item), nq = strlen(post), i, k;
	char *s = malloc(len + 1);

	if (s == NULL || len < np + ni + nq)
		exit(2);
	memcpy(s, pre, np);
	k = (len - np - nq) / ni;
	for (i = 0; i < k; i++)
		memcpy(s + np + i * ni, item, ni);
	i = np + k * ni;
	if (s[i - 1] == ',')
		s[i - 1] = ' ';
	memset(s + i, ' ', len - nq - i);
	memcpy(s + len - nq, post, nq);
	s[len] = '\0';
	return s;
}

/*
 * Parses body, checks status and error, and that the heap never held more
 * than max bytes above what it held before (json-c's tokener and the code
 * itself included).  Returns the status; e is kept when keep != NULL.
 */
static int
parse_heap(const char *body, size_t len, int want_status, const char *want_err,
    long long max, const char *desc, struct fcgi_exec *keep)
{
	long long base = heap_mark(), peak;
	int st;

	st = parse_n(body, len, NULL, want_status, want_err, desc, keep);
	peak = heap_peak - base;
	if (heap_counted) {
		ok(peak <= max, "  peak heap %lld bytes (at most %lld)", peak, max);
		if (keep == NULL || st != 0)
			is_int(heap_now - base, 0, "  nothing left on the heap");
	} else
		skip("heap not counted under a sanitizer", "  peak heap");
	return st;
}

#define MiB	(1024 * 1024)
#define SMALL	(64 * 1024)	/* a tokener, a few small strings */

/*
 * Members nobody reads cost nothing: a body of 1 MiB made into a json-c
 * tree took 30 to 270 MiB of heap, even for a 422.
 */
static void
test_parse_big(void)
{
	struct fcgi_exec e;
	char *s;
	int st;

	s = big_body("{\"code\": \"\", \"a\": [", "0,", "]}", MiB);
	if (parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: {\"code\": \"\", \"a\": [0, 0, ...]}",
	    &e) == 0) {
		is_int(e.fe_mode, PROTO_MODE_CODE, "  code mode");
		is_int(e.fe_code_len, 0, "  empty code");
		ok(e.fe_code != NULL && e.fe_code[0] == '\0', "  the code is \"\"");
		fcgi_exec_free(&e);
	}
	free(s);
	s = big_body("{\"a\": [", "[],", "], \"code\": \"print(1)\"}", MiB);
	if (parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: {\"a\": [[], [], ...], \"code\": ...}",
	    &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "print(1)", 8, "  the code after the array");
		fcgi_exec_free(&e);
	}
	free(s);
	s = big_body("{\"code\": \"x\", \"a\": [", "{},", "]}", MiB);
	parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: {..., \"a\": [{}, {}, ...]}", NULL);
	free(s);
	s = big_body("{\"code\": 5, \"a\": [", "0,", "]}", MiB);
	parse_heap(s, MiB, 422, "'code' must be a string", SMALL,
	    "1 MiB: {\"code\": 5, \"a\": [0, 0, ...]}", NULL);
	free(s);
	s = big_body("{\"code\": [", "0,", "]}", MiB);
	parse_heap(s, MiB, 422, "'code' must be a string", SMALL,
	    "1 MiB: {\"code\": [0, 0, ...]} (the code itself not a string)", NULL);
	free(s);
	s = big_body("{\"id\": [", "0,", "], \"code\": \"x\"}", MiB);
	parse_heap(s, MiB, 422, "'id' must be a string", SMALL,
	    "1 MiB: {\"id\": [0, 0, ...], \"code\": \"x\"}", NULL);
	free(s);
	s = big_body("{\"code\": \"x\", \"a\": [", "0,", "]]", MiB);
	parse_heap(s, MiB, 400, JSON_ERR, SMALL, "1 MiB, invalid at its very end", NULL);
	free(s);
	s = big_body("[", "{\"code\": \"x\"},", "]", MiB);
	parse_heap(s, MiB, 400, NOT_OBJ, SMALL, "1 MiB: [{\"code\": \"x\"}, ...]", NULL);
	free(s);
	s = big_body("{\"code\": \"x\"", ", \"k\": 0", "}", MiB);
	parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: {\"code\": \"x\", \"k\": 0, \"k\": 0, ...}",
	    NULL);
	free(s);
	s = big_body("{\"code\": \"x\"", ", \"\\u0063od\": 0", "}", MiB);
	parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB of short keys with escapes", NULL);
	free(s);
	s = big_body("{\"code\": \"x\", \"", "\\u0063", "\": 1}", MiB);
	parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: one key of escapes", NULL);
	free(s);
	s = big_body("{\"", "a", "\": 1, \"code\": \"x\"}", MiB);
	parse_heap(s, MiB, 0, NULL, SMALL, "1 MiB: one long plain key", NULL);
	free(s);

	/* The code itself is the one member that may be large. */
	s = big_body("{\"code\": \"", "x", "\"}", MiB);
	st = parse_heap(s, MiB, 0, NULL, 3LL * MiB, "1 MiB of code", &e);
	if (st == 0) {
		ok(e.fe_code_len == MiB - 12 && e.fe_code[0] == 'x' &&
		    e.fe_code[MiB - 13] == 'x' && e.fe_code[MiB - 12] == '\0',
		    "  all of the code (%zu bytes)", e.fe_code_len);
		fcgi_exec_free(&e);
	}
	free(s);
}

/* The keys: compared whole (NUL included), escapes decoded, the last kept. */
static void
test_parse_keys(void)
{
	struct fcgi_exec e;

	parse("{\"code\\u0000x\": \"a\"}", NULL, 422, "'code' is required",
	    "\"code\\u0000x\" is not \"code\"");
	parse("{\"code\\u0000\": \"a\"}", NULL, 422, "'code' is required",
	    "\"code\\u0000\" is not \"code\"");
	parse("{\"\\u0000code\": \"a\"}", NULL, 422, "'code' is required",
	    "\"\\u0000code\" is not \"code\"");
	parse("{\"script\\u0000\": \"a\"}", NULL, 422, "'code' is required",
	    "\"script\\u0000\" is not \"script\"");
	parse("{\"code\": \"a\", \"id\\u0000\": 5}", NULL, 0, NULL,
	    "\"id\\u0000\" is an unknown key: 5 is no id");
	if (keep("{\"code\": \"a\", \"code\\u0000x\": 1}", NULL,
	    "\"code\\u0000x\" after \"code\" does not replace it", &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "a", 1, "  the code is \"a\"");
		fcgi_exec_free(&e);
	}
	parse("{\"code\": \"a\", \"script\\u0000\": \"b\"}", NULL, 0, NULL,
	    "\"script\\u0000\" is not \"script\": not both");
	parse("{\"code \": \"a\"}", NULL, 422, "'code' is required", "\"code \" is not \"code\"");
	parse("{\"cod\": \"a\"}", NULL, 422, "'code' is required", "\"cod\" is not \"code\"");
	parse("{\"codex\": \"a\"}", NULL, 422, "'code' is required", "\"codex\" is not \"code\"");

	/* Escapes in a key are decoded (by json-c). */
	if (keep("{\"\\u0063ode\": \"a\", \"\\u0069d\": \"" SID "\"}", NULL,
	    "\"\\u0063ode\" is \"code\", \"\\u0069d\" is \"id\"", &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "a", 1, "  the code");
		is_int(e.fe_has_id, 1, "  the id");
		fcgi_exec_free(&e);
	}
	if (keep("{\"\\u0073\\u0063\\u0072\\u0069\\u0070\\u0074\": \"b\"}", NULL,
	    "\"script\" written all in escapes (36 bytes)", &e) == 0) {
		is_int(e.fe_mode, PROTO_MODE_SCRIPT, "  script mode");
		fcgi_exec_free(&e);
	}
	parse("{\"\\u0063\\u006f\\u0064\\u0065\": 1}", NULL, 422,
	    "'code' must be a string", "\"code\" in escapes, 1");
	parse("{\"\\u0063\\u006F\\u0064\\u0065\": \"x\"}", NULL, 0, NULL,
	    "escapes in upper case hex");
	parse("{\"co\\/de\": \"x\"}", NULL, 422, "'code' is required",
	    "\"co\\/de\" is \"co/de\"");
	parse("{\"\\u0043ode\": \"x\"}", NULL, 422, "'code' is required",
	    "\"\\u0043ode\" is \"Code\"");
	parse("{\"\\ud83d\\ude00\": 1, \"\\u00e9\": 2, \"code\": \"x\"}", NULL, 0, NULL,
	    "other keys with escapes are ignored");

	/* A name given twice: the last one counts, as in json-c's tree. */
	if (keep("{\"code\": 1, \"code\": \"x\"}", NULL, "code 1 then \"x\"", &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "x", 1, "  the last code");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"a\", \"\\u0063ode\": \"b\"}", NULL,
	    "code \"a\" then, spelt with an escape, \"b\"", &e) == 0) {
		is_mem(e.fe_code, e.fe_code_len, "b", 1, "  the last code");
		fcgi_exec_free(&e);
	}
	parse("{\"code\": \"x\", \"code\": 1}", NULL, 422, "'code' must be a string",
	    "code \"x\" then 1");
	parse("{\"code\": \"a\", \"script\": \"b\", \"script\": null}", NULL, 422,
	    "give either 'code' or 'script', not both", "script \"b\" then null: both");
	parse("{\"code\": \"a\", \"id\": 5, \"id\": null}", NULL, 0, NULL, "id 5 then null");
	parse("{\"code\": \"a\", \"id\": null, \"id\": 5}", NULL, 422,
	    "'id' must be a string", "id null then 5");
	if (keep("{\"code\": \"a\", \"id\": \"" SID "\", \"id\": null}", NULL,
	    "id then null: a new session", &e) == 0) {
		is_int(e.fe_has_id, 0, "  no id");
		fcgi_exec_free(&e);
	}

	/* Members of nested objects are not the request's. */
	parse("{\"a\": {\"code\": \"x\"}}", NULL, 422, "'code' is required",
	    "a nested code is not the code");
	parse("{\"a\": {\"code\": 1}, \"code\": \"x\"}", NULL, 0, NULL,
	    "a nested code 1 beside the code");
	parse("{\"code\": \"x\", \"a\": [{\"id\": 5}]}", NULL, 0, NULL,
	    "an id in a nested array");
	parse(" {\"code\" \n: \"x\" ,\t\"id\"\r:\nnull } ", NULL, 0, NULL,
	    "white space around keys and values");
	parse("{\"code\": -1}", NULL, 422, "'code' must be a string", "code -1");
	parse("{\"code\": false}", NULL, 422, "'code' must be a string", "code false");
	parse("{\"code\": 1, \"id\": 5}", NULL, 422, "'code' must be a string",
	    "code 1, id 5: the code first");
	parse("{\"script\": [1, 2], \"id\": 5}", NULL, 422, "'script' must be a string",
	    "script [1, 2], id 5: the script first");
	parse("{\"code\": \"x\", \"script\": null}", NULL, 422,
	    "give either 'code' or 'script', not both", "code and script null: both");
	parse("{\"code\": \"x\", \"id\": 0}", NULL, 422, "'id' must be a string", "id 0");
}

/* Header and body ids are the same session when they name the same bytes. */
static void
test_parse_ids(void)
{
	static const char upper[] = "12345678-9ABC-4DEF-8011-223344556677";
	struct fcgi_exec e;

	if (keep("{\"code\": \"x\", \"id\": \"12345678-9ABC-4DEF-8011-223344556677\"}",
	    SID, "id in upper case, header in lower case", &e) == 0) {
		is_int(e.fe_has_id, 1, "  has id");
		is_mem(e.fe_id, PROTO_ID_LEN, sid_bytes, PROTO_ID_LEN, "  id bytes");
		fcgi_exec_free(&e);
	}
	if (keep("{\"code\": \"x\", \"id\": \"" SID "\"}", upper,
	    "id in lower case, header in upper case", &e) == 0) {
		is_int(e.fe_has_id, 1, "  has id");
		is_mem(e.fe_id, PROTO_ID_LEN, sid_bytes, PROTO_ID_LEN, "  id bytes");
		fcgi_exec_free(&e);
	}
	parse("{\"code\": \"x\", \"id\": \"12345678-9abc-4DEF-8011-223344556677\"}",
	    "12345678-9ABC-4def-8011-223344556677", 0, NULL, "both in mixed case");
	parse("{\"code\": \"x\", \"id\": \"\\u0031\\u0032345678-9abc-4def-8011-223344556677\"}",
	    SID, 0, NULL, "id with escapes, same UUID as the header");
	parse("{\"code\": \"x\", \"id\": \"12345678-9ABC-4DEF-8011-223344556678\"}", SID,
	    422, MISMATCH, "upper case, one digit different");
	parse("{\"code\": \"x\", \"id\": \"nope\"}", SID, 422, MISMATCH,
	    "id not a UUID, header a UUID");
	parse("{\"code\": \"x\", \"id\": \"" SID "\"}", "nope", 422, MISMATCH,
	    "id a UUID, header not");
	parse("{\"code\": \"x\", \"id\": \"nope\"}", "nope", 404, "session not found",
	    "the same non-UUID in both");
	parse("{\"code\": \"x\", \"id\": \"NOPE\"}", "nope", 422, MISMATCH,
	    "non-UUIDs are compared byte for byte");
	parse("{\"code\": \"x\", \"id\": \"" SID "\\u0000\"}", SID, 422, MISMATCH,
	    "id with a NUL after the header's UUID is another text");
	parse("{\"script\": \"x\", \"id\": \"nope\"}", SID, 0, NULL,
	    "script mode: ids are not looked at");
}

/* ----------------------------------------------------- json_check_members */

struct members_seen {
	char	buf[512];
	size_t	len;
	int	calls, stop_at;
};

static int
members_cb(void *arg, const char *key, size_t keylen, const char *val, size_t vallen)
{
	struct members_seen *m = arg;
	int n;

	if (++m->calls == m->stop_at)
		return -1;
	n = snprintf(m->buf + m->len, sizeof(m->buf) - m->len, "<%.*s=%.*s>",
	    (int)keylen, key, (int)vallen, val);
	if (n > 0 && (size_t)n < sizeof(m->buf) - m->len)
		m->len += (size_t)n;
	return 0;
}

static void
members_are(const char *doc, int want_ret, const char *want, const char *desc)
{
	struct members_seen m;
	int r;

	memset(&m, 0, sizeof(m));
	r = json_check_members(doc, strlen(doc), members_cb, &m);
	is_int(r, want_ret, "json_check_members: %s -> %d", desc, want_ret);
	is_str(m.buf, want, "  members %s", want);
}

static void
test_check_members(void)
{
	struct members_seen m;

	members_are("{\"a\": {\"b\": 1}, \"c\" : [ 2 ] ,\"d\":\"x\\\"y\"}", 0,
	    "<\"a\"={\"b\": 1}><\"c\"=[ 2 ]><\"d\"=\"x\\\"y\">",
	    "top-level members only, spans as written");
	members_are(" {} ", 0, "", "{}");
	members_are("[{\"a\": 1}]", 0, "", "an array: no members");
	members_are("\"a\"", 0, "", "a string: no members");
	members_are("{\"a\": 1, \"b\": tru}", -1, "<\"a\"=1>",
	    "invalid after a member: that member was seen");
	members_are("{\"a\": -1.5e3, \"b\": null, \"c\": true}", 0,
	    "<\"a\"=-1.5e3><\"b\"=null><\"c\"=true>", "numbers and words");
	memset(&m, 0, sizeof(m));
	m.stop_at = 2;
	is_int(json_check_members("{\"a\": 1, \"b\": 2, \"c\": 3}", 24, members_cb, &m), -1,
	    "json_check_members: the callback stops it -> -1");
	is_int(m.calls, 2, "  no call after the stop");
}

/* ---------------------------------------------------------- reply_exec */

static uint8_t *
dup_bytes(const char *p, size_t n, int nul)
{
	uint8_t *b = malloc(n + (size_t)nul + (n == 0));

	if (b == NULL)
		exit(2);
	memcpy(b, p, n);
	if (nul)
		b[n] = '\0';
	return b;
}

/* A daemon reply; out/err/res are copied into buffers of their exact size
 * (res NUL-terminated, as sess_client leaves it), NULL for none. */
static void
mk(struct sess_reply *sr, int status, int has_id, const char *out, size_t outlen,
    const char *err, size_t errlen)
{
	memset(sr, 0, sizeof(*sr));
	sr->sr_status = status;
	sr->sr_has_id = has_id;
	if (has_id)
		memcpy(sr->sr_id, sid_bytes, PROTO_ID_LEN);
	if (out != NULL) {
		sr->sr_out = dup_bytes(out, outlen, 0);
		sr->sr_out_len = (uint32_t)outlen;
	}
	if (err != NULL) {
		sr->sr_err = dup_bytes(err, errlen, 0);
		sr->sr_err_len = (uint32_t)errlen;
	}
}

static void
mk_result(struct sess_reply *sr, const char *res)
{
	sr->sr_has_result = 1;
	sr->sr_res = dup_bytes(res, strlen(res), 1);
	sr->sr_res_len = (uint32_t)strlen(res);
}

static void
unmk(struct sess_reply *sr)
{
	free(sr->sr_out);
	free(sr->sr_err);
	free(sr->sr_res);
	memset(sr, 0, sizeof(*sr));
}

/* The body must be JSON with no NaN/Infinity, and valid UTF-8. */
static int
body_is_json(const struct fcgi_reply *r)
{
	const struct jbuf *b = &r->fr_body;
	struct json_tokener *tok;
	struct json_object *o;
	int good;

	if (b->jb_buf == NULL || b->jb_failed)
		return 0;
	if (utf8_repaired_len((const uint8_t *)b->jb_buf, b->jb_len) != b->jb_len ||
	    memchr(b->jb_buf, '\0', b->jb_len) != NULL)
		return 0;
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, b->jb_buf, (int)b->jb_len);
	good = o != NULL && json_object_is_type(o, json_type_object) &&
	    json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == b->jb_len &&
	    strstr(b->jb_buf, "NaN") == NULL && strstr(b->jb_buf, "Infinity") == NULL;
	json_object_put(o);
	json_tokener_free(tok);
	return good;
}

/* Runs fcgi_reply_exec; checks status and exact body. r stays for more checks. */
static void
reply_is(struct fcgi_reply *r, const struct sess_reply *sr, unsigned retry,
    int want_status, const char *want_body, const char *desc)
{
	fcgi_reply_init(r);
	fcgi_reply_exec(r, sr, retry);
	is_int(r->fr_status, want_status, "%s: status %d", desc, want_status);
	is_mem(r->fr_body.jb_buf, r->fr_body.jb_len, want_body, strlen(want_body),
	    "  body %s", want_body);
	ok(body_is_json(r), "  body is a JSON object, valid UTF-8");
}

/* One stream in code mode: {"id": SID, "stdout": <want>}. */
static void
stream_is(const char *out, size_t len, uint32_t dropped, const char *want_json,
    const char *desc)
{
	struct sess_reply sr;
	struct fcgi_reply r;
	char want[1024];

	mk(&sr, PROTO_S_OK, 1, out, len, NULL, 0);
	sr.sr_out_dropped = dropped;
	snprintf(want, sizeof(want), "{\"id\": \"" SID "\", \"stdout\": %s}", want_json);
	reply_is(&r, &sr, 1, 200, want, desc);
	fcgi_reply_free(&r);
	unmk(&sr);
}

static void
test_reply_code(void)
{
	static const char tb[] = "Traceback (most recent call last):\n  File \"<stdin>\", "
	    "line 1, in <module>\nZeroDivisionError: division by zero\n";
	static const char tbj[] = "\"Traceback (most recent call last):\\n  File "
	    "\\\"<stdin>\\\", line 1, in <module>\\nZeroDivisionError: division by zero\\n\"";
	struct sess_reply sr;
	struct fcgi_reply r;
	char want[1024];

	mk(&sr, PROTO_S_OK, 1, "Hello, World!\n", 14, NULL, 0);
	reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\", \"stdout\": \"Hello, World!\\n\"}",
	    "stdout only");
	is_str(r.fr_sid, SID, "  Pyexec-Session is the id");
	is_str(r.fr_ctype, "application/json", "  Content-Type application/json");
	is_int(r.fr_retry_after, -1, "  no Retry-After");
	is_str(r.fr_allow, NULL, "  no Allow");
	is_str(r.fr_outcome, "ok", "  outcome ok");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_OK, 1, NULL, 0, tb, sizeof(tb) - 1);
	snprintf(want, sizeof(want), "{\"id\": \"" SID "\", \"stderr\": %s}", tbj);
	reply_is(&r, &sr, 1, 200, want, "stderr only (the statement's traceback)");
	is_str(r.fr_outcome, "stderr", "  outcome stderr");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_OK, 1, "out\n", 4, "err\n", 4);
	reply_is(&r, &sr, 1, 200,
	    "{\"id\": \"" SID "\", \"stdout\": \"out\\n\", \"stderr\": \"err\\n\"}",
	    "stdout and stderr");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_OK, 1, NULL, 0, NULL, 0);
	reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\"}", "neither: only the id");
	is_str(r.fr_sid, SID, "  Pyexec-Session is the id");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_OK, 1, "", 0, "", 0);
	reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\"}",
	    "empty (non-NULL) streams are omitted too");
	fcgi_reply_free(&r);
	unmk(&sr);

	/* Execution errors: error only, whatever was captured (the XOR rule). */
	{
		static const struct { int st; const char *msg; const char *outcome; } t[] = {
			{ PROTO_S_TIMEOUT, "execution timeout", "timeout" },
			{ PROTO_S_MEMORY, "memory limit exceeded", "memory" },
			{ PROTO_S_TERMINATED, "session terminated", "terminated" },
		};
		char desc[80];
		size_t i;

		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			snprintf(want, sizeof(want), "{\"id\": \"" SID "\", \"error\": \"%s\"}",
			    t[i].msg);
			mk(&sr, t[i].st, 1, "partial out\n", 12, "partial err\n", 12);
			sr.sr_out_dropped = 10;
			sr.sr_err_dropped = 20;
			reply_is(&r, &sr, 1, 200, want, t[i].msg);
			is_str(r.fr_sid, SID, "  Pyexec-Session set");
			is_str(r.fr_outcome, t[i].outcome, "  outcome %s", t[i].outcome);
			fcgi_reply_free(&r);
			unmk(&sr);

			mk(&sr, t[i].st, 1, NULL, 0, NULL, 0);
			snprintf(desc, sizeof(desc), "%s, nothing captured", t[i].msg);
			reply_is(&r, &sr, 1, 200, want, desc);
			fcgi_reply_free(&r);
			unmk(&sr);
		}
		mk(&sr, PROTO_S_TIMEOUT, 0, "x", 1, NULL, 0);
		reply_is(&r, &sr, 1, 200, "{\"error\": \"execution timeout\"}",
		    "timeout in script mode (no id)");
		is_str(r.fr_sid, "", "  no Pyexec-Session");
		fcgi_reply_free(&r);
		unmk(&sr);
	}

	/* Script-mode reply without an id. */
	mk(&sr, PROTO_S_OK, 0, "x", 1, NULL, 0);
	reply_is(&r, &sr, 1, 200, "{\"stdout\": \"x\"}", "no id: no id key");
	is_str(r.fr_sid, "", "  no Pyexec-Session");
	fcgi_reply_free(&r);
	unmk(&sr);
}

static void
test_reply_utf8(void)
{
	stream_is("a\x80" "b", 3, 0, "\"a" FFFD "b\"", "lone continuation byte");
	stream_is("\xe2\x82" "x", 3, 0, "\"" FFFD "x\"", "truncated E2 82 then x: one U+FFFD");
	stream_is("x\xe2\x82", 3, 0, "\"x" FFFD "\"", "truncated E2 82 at the end");
	stream_is("\xc0\xaf", 2, 0, "\"" FFFD FFFD "\"", "overlong C0 AF: two");
	stream_is("\xe0\x80\x80", 3, 0, "\"" FFFD FFFD FFFD "\"", "overlong E0 80 80: three");
	stream_is("\xed\xa0\x80", 3, 0, "\"" FFFD FFFD FFFD "\"", "surrogate ED A0 80: three");
	stream_is("\xf4\x90\x80\x80", 4, 0, "\"" FFFD FFFD FFFD FFFD "\"",
	    "F4 90 80 80 above U+10FFFF: four");
	stream_is("\xf0\x80\x80\x80", 4, 0, "\"" FFFD FFFD FFFD FFFD "\"",
	    "overlong F0 80 80 80: four");
	stream_is("\xf0\x9f\x98", 3, 0, "\"" FFFD "\"", "truncated emoji: one");
	stream_is("\xe1\x80\xc3\xa9", 4, 0, "\"" FFFD "\xc3\xa9\"",
	    "truncated E1 80 before a valid e-acute");
	stream_is("\xff\xfe", 2, 0, "\"" FFFD FFFD "\"", "FF FE: two");
	stream_is("\xf5\x80", 2, 0, "\"" FFFD FFFD "\"", "F5 80: two");
	stream_is("\xc2", 1, 0, "\"" FFFD "\"", "lone C2 at the end");
	stream_is("\xf0\x9f\x98\x80", 4, 0, "\"\xf0\x9f\x98\x80\"", "valid 4-byte emoji kept");
	stream_is("\xc3\xa9\xe2\x82\xac\xef\xbf\xbf\xf4\x8f\xbf\xbf", 12, 0,
	    "\"\xc3\xa9\xe2\x82\xac\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",
	    "valid 2-, 3- and 4-byte sequences up to U+10FFFF kept");

	is_int(utf8_repaired_len((const uint8_t *)"\xc0\xaf", 2), 6,
	    "utf8_repaired_len(C0 AF) is 6");
	is_int(utf8_repaired_len((const uint8_t *)"\xe2\x82x", 3), 4,
	    "utf8_repaired_len(E2 82 x) is 4");
	is_int(utf8_repaired_len((const uint8_t *)"\xf0\x9f\x98\x80", 4), 4,
	    "utf8_repaired_len(emoji) is 4");
}

static void
test_reply_escape(void)
{
	stream_is("say \"hi\"", 8, 0, "\"say \\\"hi\\\"\"", "quotes escaped");
	stream_is("C:\\dir", 6, 0, "\"C:\\\\dir\"", "backslash escaped");
	stream_is("a\x01" "b", 3, 0, "\"a\\u0001b\"", "\\u0001");
	stream_is("\x1f", 1, 0, "\"\\u001f\"", "\\u001f");
	stream_is("a\0b", 3, 0, "\"a\\u0000b\"", "NUL byte as \\u0000");
	stream_is("\t\r\n\b\f", 5, 0, "\"\\t\\r\\n\\b\\f\"", "short escapes");
	stream_is("a/b\x7f", 4, 0, "\"a/b\x7f\"", "slash and DEL are kept");
	stream_is("</script>", 9, 0, "\"</script>\"", "HTML passes as text");
}

static void
test_reply_truncated(void)
{
	stream_is("abc", 3, 5, "\"abc\\n[output truncated: 5 bytes dropped]\\n\"",
	    "truncated, kept part without newline: one added");
	stream_is("abc\n", 4, 5, "\"abc\\n[output truncated: 5 bytes dropped]\\n\"",
	    "truncated, kept part ends with newline: none added");
	stream_is("abc\n\n", 5, 1, "\"abc\\n\\n[output truncated: 1 bytes dropped]\\n\"",
	    "truncated after a blank line");
	stream_is("", 0, 7, "\"[output truncated: 7 bytes dropped]\\n\"",
	    "everything dropped: only the line");
	stream_is("ab\xe2\x82", 4, 1, "\"ab" FFFD "\\n[output truncated: 1 bytes dropped]\\n\"",
	    "cut inside a UTF-8 sequence");
	stream_is("x", 1, 4294967295u,
	    "\"x\\n[output truncated: 4294967295 bytes dropped]\\n\"", "UINT32_MAX dropped");

	{
		struct sess_reply sr;
		struct fcgi_reply r;

		mk(&sr, PROTO_S_OK, 1, NULL, 0, "Trace", 5);
		sr.sr_err_dropped = 100;
		reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\", \"stderr\": "
		    "\"Trace\\n[output truncated: 100 bytes dropped]\\n\"}", "stderr truncated");
		fcgi_reply_free(&r);
		unmk(&sr);

		mk(&sr, PROTO_S_OK, 1, "o\n", 2, "", 0);
		sr.sr_err_dropped = 3;
		reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\", \"stdout\": \"o\\n\", \"stderr\": "
		    "\"[output truncated: 3 bytes dropped]\\n\"}",
		    "stderr all dropped beside stdout");
		fcgi_reply_free(&r);
		unmk(&sr);
	}
}

static void
test_reply_status(void)
{
	struct sess_reply sr;
	struct fcgi_reply r;

	mk(&sr, PROTO_S_NOT_FOUND, 0, NULL, 0, NULL, 0);
	reply_is(&r, &sr, 1, 404, "{\"error\": \"session not found\"}", "NOT_FOUND");
	is_int(r.fr_retry_after, -1, "  no Retry-After");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_BUSY, 1, NULL, 0, NULL, 0);
	reply_is(&r, &sr, 1, 409, "{\"error\": \"session busy\"}", "BUSY");
	is_str(r.fr_sid, SID, "  Pyexec-Session header is the busy session");
	is_int(r.fr_retry_after, -1, "  no Retry-After");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_FULL, 0, NULL, 0, NULL, 0);
	reply_is(&r, &sr, 3, 503, "{\"error\": \"max sessions reached\"}", "FULL");
	is_int(r.fr_retry_after, 3, "  Retry-After: 3");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_FULL, 0, NULL, 0, NULL, 0);
	reply_is(&r, &sr, 0, 503, "{\"error\": \"max sessions reached\"}", "FULL, retry 0");
	is_int(r.fr_retry_after, 0, "  Retry-After: 0");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_NO_MAIN, 0, "x", 1, NULL, 0);
	reply_is(&r, &sr, 1, 422, "{\"error\": \"no main() function found\"}", "NO_MAIN");
	fcgi_reply_free(&r);
	unmk(&sr);

	mk(&sr, PROTO_S_NOT_JSON, 0, "printed\n", 8, "warn\n", 5);
	reply_is(&r, &sr, 1, 200, NOT_JSON_RES, "NOT_JSON from the daemon, output dropped");
	fcgi_reply_free(&r);
	unmk(&sr);

	{
		static const int st[] = { PROTO_S_INTERNAL, PROTO_S_UNHEALTHY, 0, PROTO_S_MAX, 99 };
		char desc[40];
		size_t i;

		for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
			mk(&sr, st[i], 1, "x", 1, NULL, 0);
			snprintf(desc, sizeof(desc), "status %d -> 500", st[i]);
			reply_is(&r, &sr, 1, 500, "{\"error\": \"Internal server error\"}",
			    desc);
			is_str(r.fr_outcome, "internal", "  outcome internal");
			fcgi_reply_free(&r);
			unmk(&sr);
		}
	}
}

/* Script mode: main() returned res (as the child's json.dumps wrote it). */
static void
result_is(const char *res, const char *out, const char *want_body, const char *desc)
{
	struct sess_reply sr;
	struct fcgi_reply r;

	mk(&sr, PROTO_S_OK, 0, out, out ? strlen(out) : 0, NULL, 0);
	mk_result(&sr, res);
	reply_is(&r, &sr, 1, 200, want_body, desc);
	fcgi_reply_free(&r);
	unmk(&sr);
}

static void
test_reply_script(void)
{
	result_is("{\"sum\": 30, \"product\": 200}", NULL,
	    "{\"result\": {\"sum\": 30, \"product\": 200}}", "{\"sum\": 30, \"product\": 200}");
	result_is("{\"sum\":30,\"product\":200}", NULL,
	    "{\"result\": {\"sum\": 30, \"product\": 200}}", "compact input respaced");
	result_is("{\"a\": [1, [2, 3], {\"b\": null}], \"c\": {\"d\": true, \"e\": false}}",
	    NULL,
	    "{\"result\": {\"a\": [1, [2, 3], {\"b\": null}], \"c\": {\"d\": true, \"e\": false}}}",
	    "nested lists and objects");
	result_is("{\"x\": 2.0}", NULL, "{\"result\": {\"x\": 2.0}}", "2.0 stays 2.0");
	result_is("[2.0, 1.4142135623730951, 1e+100, -0.0, 1e-07, -3]", NULL,
	    "{\"result\": [2.0, 1.4142135623730951, 1e+100, -0.0, 1e-07, -3]}",
	    "floats keep Python's repr");
	result_is("[12345678901234567890]", NULL,
	    "{\"result\": [12345678901234567890]}", "an integer above INT64_MAX");
	result_is("[123456789012345678901234567890]", NULL,
	    "{\"result\": [123456789012345678901234567890]}",
	    "a Python big integer (30 digits)");
	result_is("[-123456789012345678901234567890]", NULL,
	    "{\"result\": [-123456789012345678901234567890]}",
	    "a negative Python big integer (30 digits)");
	result_is("{}", NULL, "{\"result\": {}}", "empty object");
	result_is("[]", NULL, "{\"result\": []}", "empty list");
	result_is("{\"q\\\"\\\\\": \"a\\nb\\u0001\"}", NULL,
	    "{\"result\": {\"q\\\"\\\\\": \"a\\nb\\u0001\"}}", "escapes in keys and strings");
	result_is("\"\\u00e9\"", NULL, "{\"result\": \"\\u00e9\"}",
	    "a string result keeps its escapes as written");
	result_is("\"\\ud800\"", NULL, "{\"result\": \"\\ud800\"}",
	    "a lone surrogate escape is valid JSON text: kept as written");
	result_is("[123456789012345678901234567890, -1e400]", NULL,
	    "{\"result\": [123456789012345678901234567890, -1e400]}",
	    "numbers keep every digit");
	result_is("null", NULL, "{\"result\": null}", "main() returned None: result null");
	result_is("42", NULL, "{\"result\": 42}", "main() returned 42");
	result_is("2.0", NULL, "{\"result\": 2.0}", "main() returned 2.0");
	result_is("1.4142135623730951", NULL, "{\"result\": 1.4142135623730951}",
	    "main() returned 1.4142135623730951");
	result_is("true", NULL, "{\"result\": true}", "main() returned True");
	result_is("{\"x\": 1}", "hi\n", "{\"result\": {\"x\": 1}, \"stdout\": \"hi\\n\"}",
	    "stdout beside result");

	/* Invalid results from the (hostile) child: the not-serializable error,
	 * nothing else, even with output captured. */
	result_is("{bad", "hi\n", NOT_JSON_RES, "invalid result {bad");
	result_is("", "hi\n", NOT_JSON_RES, "empty result");
	result_is("[1,]", NULL, NOT_JSON_RES, "trailing comma");
	result_is("[NaN]", NULL, NOT_JSON_RES, "[NaN]");
	result_is("{\"a\": Infinity}", NULL, NOT_JSON_RES, "Infinity");
	result_is("{\"a\": -Infinity}", NULL, NOT_JSON_RES, "-Infinity");
	result_is("{'a': 1}", NULL, NOT_JSON_RES, "single quotes");
	result_is("{} {}", NULL, NOT_JSON_RES, "two values");
	result_is("[1] x", NULL, NOT_JSON_RES, "trailing garbage");
	result_is("\"\xff\"", NULL, NOT_JSON_RES, "invalid UTF-8 inside a string");
	{
		char deep[300];
		int i;

		for (i = 0; i < 100; i++) {
			deep[i] = '[';
			deep[100 + i] = ']';
		}
		deep[200] = '\0';
		result_is(deep, NULL, NOT_JSON_RES, "100 nested lists (over the depth limit)");
	}

	/* main() raised: traceback, no result. */
	{
		struct sess_reply sr;
		struct fcgi_reply r;

		mk(&sr, PROTO_S_OK, 0, NULL, 0, "Traceback\n", 10);
		reply_is(&r, &sr, 1, 200, "{\"stderr\": \"Traceback\\n\"}", "main() raised");
		fcgi_reply_free(&r);
		unmk(&sr);

		mk(&sr, PROTO_S_MEMORY, 0, "x", 1, NULL, 0);
		mk_result(&sr, "{\"a\": 1}");
		reply_is(&r, &sr, 1, 200, "{\"error\": \"memory limit exceeded\"}",
		    "memory error in script mode, result ignored");
		fcgi_reply_free(&r);
		unmk(&sr);
	}
}

static void
body_eq(const struct fcgi_reply *r, const char *want, const char *desc)
{
	is_mem(r->fr_body.jb_buf, r->fr_body.jb_len, want, strlen(want), "%s %s", desc, want);
}

static void
test_reply_error(void)
{
	struct fcgi_reply r;

	fcgi_reply_init(&r);
	is_int(r.fr_retry_after, -1, "fcgi_reply_init: no Retry-After");
	is_str(r.fr_sid, "", "  no session header");
	is_str(r.fr_ctype, "application/json", "  Content-Type application/json");
	is_str(r.fr_allow, NULL, "  no Allow");
	fcgi_reply_error(&r, 405, "method not allowed");
	is_int(r.fr_status, 405, "fcgi_reply_error: status");
	body_eq(&r, "{\"error\": \"method not allowed\"}", "  body");
	fcgi_reply_error(&r, 413, "request body too large");
	is_int(r.fr_status, 413, "  second call: status");
	body_eq(&r, "{\"error\": \"request body too large\"}", "  a second call replaces the body");
	fcgi_reply_error(&r, 400, "a \"q\" \\ b\n");
	body_eq(&r, "{\"error\": \"a \\\"q\\\" \\\\ b\\n\"}", "  the message is escaped");
	ok(body_is_json(&r), "  body is JSON");
	fcgi_reply_free(&r);

	is_str(fcgi_reason(200), "OK", "fcgi_reason(200)");
	is_str(fcgi_reason(409), "Conflict", "fcgi_reason(409)");
	is_str(fcgi_reason(415), "Unsupported Media Type", "fcgi_reason(415)");
	is_str(fcgi_reason(422), "Unprocessable Entity", "fcgi_reason(422)");
	is_str(fcgi_reason(500), "Internal Server Error", "fcgi_reason(500)");
}

static void
test_reply_metrics(void)
{
	struct proto_metrics m;
	struct fcgi_reply r;
	const char *b;
	int i;

	memset(&m, 0, sizeof(m));
	m.pm_sessions_live = 3;
	m.pm_sessions_created = 17;
	m.pm_exec[PROTO_S_OK] = 100;
	m.pm_exec_stderr = 9;
	m.pm_exec[PROTO_S_TIMEOUT] = 4;
	m.pm_exec[PROTO_S_MEMORY] = 5;
	m.pm_exec[PROTO_S_TERMINATED] = 6;
	m.pm_exec[PROTO_S_NOT_FOUND] = 7;
	m.pm_exec[PROTO_S_BUSY] = 8;
	m.pm_exec[PROTO_S_FULL] = 11;
	m.pm_exec[PROTO_S_NO_MAIN] = 12;
	m.pm_exec[PROTO_S_NOT_JSON] = 13;
	m.pm_exec[PROTO_S_INTERNAL] = 14;
	for (i = 0; i < PROTO_HIST_BUCKETS; i++)
		m.pm_lat_bucket[i] = 10 + (uint64_t)i;
	m.pm_lat_count = 123;
	m.pm_lat_sum_us = 1500000;
	m.pm_queue_wait_count = 21;
	m.pm_queue_wait_sum_us = 250;
	m.pm_pool_ready = 2;
	m.pm_zygote_restarts = 1;

	fcgi_reply_init(&r);
	fcgi_reply_metrics(&r, &m);
	b = r.fr_body.jb_buf;
	is_int(r.fr_status, 200, "metrics: status 200");
	like(r.fr_ctype, "text/plain", "  Content-Type text/plain");
	like(r.fr_ctype, "version=0.0.4", "  Prometheus text format version 0.0.4");
	ok(b != NULL && r.fr_body.jb_len > 0 && b[r.fr_body.jb_len - 1] == '\n',
	    "  ends with a newline");
	like(b, "# HELP pyexec_sessions_live ", "  HELP pyexec_sessions_live");
	like(b, "# TYPE pyexec_sessions_live gauge\npyexec_sessions_live 3\n",
	    "  TYPE gauge, value 3");
	like(b, "# TYPE pyexec_sessions_created_total counter\n"
	    "pyexec_sessions_created_total 17\n", "  sessions created 17");
	like(b, "# HELP pyexec_executions_total ", "  HELP pyexec_executions_total");
	like(b, "# TYPE pyexec_executions_total counter\n", "  TYPE counter");
	like(b, "pyexec_executions_total{outcome=\"ok\"} 91\n", "  ok = 100 - 9 with stderr");
	like(b, "pyexec_executions_total{outcome=\"stderr\"} 9\n", "  stderr 9");
	like(b, "pyexec_executions_total{outcome=\"timeout\"} 4\n", "  timeout 4");
	like(b, "pyexec_executions_total{outcome=\"memory\"} 5\n", "  memory 5");
	like(b, "pyexec_executions_total{outcome=\"terminated\"} 6\n", "  terminated 6");
	like(b, "pyexec_executions_total{outcome=\"not_found\"} 7\n", "  not_found 7");
	like(b, "pyexec_executions_total{outcome=\"busy\"} 8\n", "  busy 8");
	like(b, "pyexec_executions_total{outcome=\"max_sessions\"} 11\n", "  max_sessions 11");
	like(b, "pyexec_executions_total{outcome=\"no_main\"} 12\n", "  no_main 12");
	like(b, "pyexec_executions_total{outcome=\"not_json\"} 13\n", "  not_json 13");
	like(b, "pyexec_executions_total{outcome=\"internal\"} 14\n", "  internal 14");
	like(b, "# TYPE pyexec_execution_seconds histogram\n", "  TYPE histogram");
	like(b, "pyexec_execution_seconds_bucket{le=\"0.00025\"} 10\n", "  first bucket");
	like(b, "pyexec_execution_seconds_bucket{le=\"1\"} 20\n", "  le=1 bucket");
	like(b, "pyexec_execution_seconds_bucket{le=\"2.5\"} 21\n", "  last finite bucket");
	like(b, "pyexec_execution_seconds_bucket{le=\"+Inf\"} 123\n", "  +Inf bucket = count");
	like(b, "pyexec_execution_seconds_sum 1.500000\n", "  sum in seconds");
	like(b, "pyexec_execution_seconds_count 123\n", "  count");
	like(b, "# TYPE pyexec_queue_wait_seconds summary\n", "  TYPE summary");
	like(b, "pyexec_queue_wait_seconds_sum 0.000250\n", "  queue wait sum");
	like(b, "pyexec_queue_wait_seconds_count 21\n", "  queue wait count");
	like(b, "# TYPE pyexec_pool_ready gauge\npyexec_pool_ready 2\n", "  pool ready 2");
	like(b, "# TYPE pyexec_zygote_restarts_total counter\n"
	    "pyexec_zygote_restarts_total 1\n", "  zygote restarts 1");

	/* Every HELP is followed by a TYPE of the same metric. */
	{
		const char *p = b;
		int n = 0, good = 1;

		while (p != NULL && (p = strstr(p, "# HELP ")) != NULL) {
			char name[128], want[160];
			size_t k = strcspn(p + 7, " \n");

			if (k >= sizeof(name))
				k = sizeof(name) - 1;
			memcpy(name, p + 7, k);
			name[k] = '\0';
			snprintf(want, sizeof(want), "\n# TYPE %s ", name);
			p = strchr(p, '\n');
			if (p == NULL || strncmp(p, want, strlen(want)) != 0)
				good = 0;
			n++;
		}
		ok(good && n == 7, "  each of the 7 HELP lines is followed by its TYPE (%d)", n);
	}
	fcgi_reply_free(&r);
}

/*
 * struct sess_reply allows NULL stream buffers ("malloc'd, or NULL"); a
 * stream that kept nothing but dropped bytes may come with a NULL buffer.
 * Last in main(): under UBSan a failure here ends the run.
 */
static void
test_reply_null_stream(void)
{
	struct sess_reply sr;
	struct fcgi_reply r;

	mk(&sr, PROTO_S_OK, 1, NULL, 0, NULL, 0);
	sr.sr_out_dropped = 3;
	sr.sr_err_dropped = 4;
	reply_is(&r, &sr, 1, 200, "{\"id\": \"" SID "\", "
	    "\"stdout\": \"[output truncated: 3 bytes dropped]\\n\", "
	    "\"stderr\": \"[output truncated: 4 bytes dropped]\\n\"}",
	    "NULL stream buffers with dropped bytes");
	fcgi_reply_free(&r);
	unmk(&sr);
}

int
main(void)
{
	test_route();
	test_allowed();
	test_content_type();
	test_parse_invalid();
	test_parse_not_object();
	test_parse_fields();
	test_parse_keys();
	test_parse_ids();
	test_parse_big();
	test_check_members();
	test_reply_code();
	test_reply_utf8();
	test_reply_escape();
	test_reply_truncated();
	test_reply_status();
	test_reply_script();
	test_reply_error();
	test_reply_metrics();
	test_reply_null_stream();
	return done();
}
