#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json.h>

#include "fcgi_req.h"
#include "sess_client.h"


/*
 * The members of an /execute body that pyexec reads, found while the whole
 * body is checked (json_check_members), without building the rest: a body of
 * 1 MiB made into a json-c tree took 30 to 270 MiB of heap, for members
 * nobody reads, in each of a worker's threads.  json-c still decodes every
 * string that is read, escapes and surrogate pairs included.
 */
enum { FM_CODE, FM_SCRIPT, FM_ID, FM_N };

static const char *const fm_names[FM_N] = { "code", "script", "id" };

/* Raw bytes a key may have between its quotes and still be one of fm_names:
 * the longest name, each character as a \uXXXX escape. */
#define FM_KEY_MAX	(6 * 6)

struct fcgi_members {
	const char		*fm_val[FM_N];	/* the value as written, NULL if absent */
	size_t			 fm_len[FM_N];
	struct json_tokener	*fm_tok;	/* NULL until a string is decoded */
	int			 fm_nomem;
};

/*
 * Decodes the JSON string p[0..len) (quotes included) with json-c; it must
 * have been checked strictly first, since json-c's own strict mode lets
 * single quotes, raw control characters and some ill-formed UTF-8 through.
 * json-c keeps embedded NULs: json_object_get_string_len is the length.
 * Returns 0 with *out set, or -1 (out of memory).
 */
static int
fcgi_json_string(struct fcgi_members *m, const char *p, size_t len,
    struct json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error e;

	*out = NULL;
	if (len > INT32_MAX)
		return -1;
	if (m->fm_tok == NULL && (m->fm_tok = json_tokener_new_ex(1)) == NULL)
		return -1;
	tok = m->fm_tok;
	json_tokener_reset(tok);
	*out = json_tokener_parse_ex(tok, p, (int)len);
	if ((e = json_tokener_get_error(tok)) == json_tokener_continue) {
		/* A string ends at its quote, but json-c may wait for the end of the input. */
		*out = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
	}
	if (e != json_tokener_success || !json_object_is_type(*out, json_type_string)) {
		json_object_put(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/*
 * json_member_fn: keeps the value of each of fm_names, the last one when a
 * name comes twice, as json-c's tree and Python's json module do.  A key is
 * compared whole, with its length: "code\u0000x" is an unknown key, not
 * "code".
 */
static int
fcgi_member(void *arg, const char *key, size_t keylen, const char *val,
    size_t vallen)
{
	struct fcgi_members *m = arg;
	struct json_object *o = NULL;
	const char *k = key + 1;
	size_t kl = keylen - 2;
	int i;

	if (kl > FM_KEY_MAX)
		return 0;
	/* Without a backslash, a checked string is its own content. */
	if (memchr(k, '\\', kl) != NULL) {
		if (fcgi_json_string(m, key, keylen, &o) == -1) {
			m->fm_nomem = 1;
			return -1;
		}
		k = json_object_get_string(o);
		kl = (size_t)json_object_get_string_len(o);
	}
	for (i = 0; i < FM_N; i++)
		if (kl == strlen(fm_names[i]) && memcmp(k, fm_names[i], kl) == 0) {
			m->fm_val[i] = val;
			m->fm_len[i] = vallen;
		}
	json_object_put(o);
	return 0;
}

/* A checked JSON text is an object when it opens with a brace. */
static int
fcgi_is_object(const char *p, size_t len)
{
	while (len > 0 && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
		p++;
		len--;
	}
	return len > 0 && *p == '{';
}

enum fcgi_route
fcgi_route(const char *uri, const char **arg, size_t *arglen)
{
	size_t len = strcspn(uri, "?#");

	*arg = NULL;
	*arglen = 0;
	if (len == 8 && !memcmp(uri, "/execute", 8))
		return FR_EXECUTE;
	if (len == 7 && !memcmp(uri, "/health", 7))
		return FR_HEALTH;
	if (len == 8 && !memcmp(uri, "/metrics", 8))
		return FR_METRICS;
	/* Served by the web server; here only when it did not (or not this method). */
	if ((len == 1 && uri[0] == '/') || (len == 5 && !memcmp(uri, "/docs", 5)) ||
	    (len == 13 && !memcmp(uri, "/openapi.json", 13)))
		return FR_STATIC;
	if (len > 10 && !memcmp(uri, "/sessions/", 10) &&
	    memchr(uri + 10, '/', len - 10) == NULL) {
		*arg = uri + 10;
		*arglen = len - 10;
		return FR_SESSION;
	}
	return FR_NONE;
}

const char *
fcgi_allowed(enum fcgi_route r, const char *method)
{
	switch (r) {
	case FR_EXECUTE:
		return strcmp(method, "POST") ? "POST" : NULL;
	case FR_HEALTH:
	case FR_METRICS:
	case FR_STATIC:
		return strcmp(method, "GET") && strcmp(method, "HEAD") ? "GET, HEAD" : NULL;
	case FR_SESSION:
		return strcmp(method, "DELETE") ? "DELETE" : NULL;
	case FR_NONE:
	default:
		return NULL;
	}
}

int
fcgi_content_type_ok(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (*ct == '\0')
		return 1;
	/* The media type, before any parameter such as charset=utf-8. */
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

int
fcgi_parse_exec(const char *body, size_t len, const char *hdr_sid,
    struct fcgi_exec *e, const char **err)
{
	struct fcgi_members m;
	struct json_object *id = NULL;
	const char *src;
	int has_code, has_script, has_id, st;

	memset(e, 0, sizeof(*e));
	memset(&m, 0, sizeof(m));
	if (len > INT32_MAX || json_check_members(body, len, fcgi_member, &m) == -1) {
		if (m.fm_nomem)
			goto fail500;
		*err = "request body is not valid JSON";
		st = 400;
		goto fail;
	}
	if (!fcgi_is_object(body, len)) {
		*err = "request body must be a JSON object";
		st = 400;
		goto fail;
	}
	has_code = m.fm_val[FM_CODE] != NULL;
	has_script = m.fm_val[FM_SCRIPT] != NULL;
	has_id = m.fm_val[FM_ID] != NULL && m.fm_val[FM_ID][0] != 'n';	/* null */
	st = 422;
	if (has_code && has_script) {
		*err = "give either 'code' or 'script', not both";
		goto fail;
	}
	if (!has_code && !has_script) {
		*err = "'code' is required";
		goto fail;
	}
	/* A checked value is a string exactly when it opens with a quote. */
	src = m.fm_val[has_code ? FM_CODE : FM_SCRIPT];
	if (src[0] != '"') {
		*err = has_code ? "'code' must be a string" : "'script' must be a string";
		goto fail;
	}
	if (has_id && m.fm_val[FM_ID][0] != '"') {
		*err = "'id' must be a string";
		goto fail;
	}
	if (fcgi_json_string(&m, src, m.fm_len[has_code ? FM_CODE : FM_SCRIPT],
	    &e->fe_root) == -1)
		goto fail500;
	e->fe_mode = has_code ? PROTO_MODE_CODE : PROTO_MODE_SCRIPT;
	e->fe_code = json_object_get_string(e->fe_root);
	e->fe_code_len = (size_t)json_object_get_string_len(e->fe_root);
	if (e->fe_mode == PROTO_MODE_SCRIPT)
		goto done;	/* a script runs in a fresh interpreter: no session */
	if (has_id && fcgi_json_string(&m, m.fm_val[FM_ID], m.fm_len[FM_ID],
	    &id) == -1)
		goto fail500;
	if (has_id || hdr_sid != NULL) {
		const char *s = has_id ? json_object_get_string(id) : hdr_sid;
		size_t sl = has_id ? (size_t)json_object_get_string_len(id) : strlen(hdr_sid);
		uint8_t hid[PROTO_ID_LEN];
		int bad, hbad, same;

		bad = proto_id_parse(s, sl, e->fe_id) == -1;
		if (has_id && hdr_sid != NULL) {
			/*
			 * An id is read in either case: two UUIDs are the same
			 * when they name the same 16 bytes.  A text that is no
			 * UUID matches only itself, byte for byte.
			 */
			hbad = proto_id_parse(hdr_sid, strlen(hdr_sid), hid) == -1;
			if (bad || hbad)
				same = sl == strlen(hdr_sid) && memcmp(s, hdr_sid, sl) == 0;
			else
				same = memcmp(e->fe_id, hid, PROTO_ID_LEN) == 0;
			if (!same) {
				*err = "'id' does not match the Pyexec-Session header";
				goto fail;
			}
		}
		/* Not even a UUID: it names no live session. */
		if (bad) {
			*err = "session not found";
			st = 404;
			goto fail;
		}
		e->fe_has_id = 1;
	}
done:
	json_object_put(id);
	if (m.fm_tok != NULL)
		json_tokener_free(m.fm_tok);
	return 0;
fail500:
	*err = "Internal server error";
	st = 500;
fail:
	json_object_put(id);
	if (m.fm_tok != NULL)
		json_tokener_free(m.fm_tok);
	fcgi_exec_free(e);
	return st;
}

void
fcgi_exec_free(struct fcgi_exec *e)
{
	json_object_put(e->fe_root);
	memset(e, 0, sizeof(*e));
}

void
fcgi_reply_init(struct fcgi_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->fr_ctype = "application/json";
	r->fr_retry_after = -1;
	r->fr_outcome = "-";
	jbuf_init(&r->fr_body);
}

void
fcgi_reply_free(struct fcgi_reply *r)
{
	jbuf_free(&r->fr_body);
}

void
fcgi_reply_error(struct fcgi_reply *r, int status, const char *msg)
{
	r->fr_status = status;
	r->fr_body.jb_len = 0;
	jbuf_str(&r->fr_body, "{\"error\": ");
	json_put_string(&r->fr_body, (const uint8_t *)msg, strlen(msg));
	jbuf_str(&r->fr_body, "}");
}

/* Opens the next member of the object being written: ", " between members. */
static void
fcgi_key(struct jbuf *b, int *first, const char *key)
{
	if (!*first)
		jbuf_str(b, ", ");
	*first = 0;
	jbuf_str(b, "\"");
	jbuf_str(b, key);
	jbuf_str(b, "\": ");
}

/* One captured stream, with the truncation line of the contract. */
static void
fcgi_put_stream(struct jbuf *b, int *first, const char *key, const uint8_t *p,
    uint32_t len, uint32_t dropped)
{
	struct jbuf s;
	char line[80];

	if (len == 0 && dropped == 0)
		return;		/* nothing written: the key is omitted */
	fcgi_key(b, first, key);
	if (dropped == 0) {
		json_put_string(b, p, len);
		return;
	}
	jbuf_init(&s);
	jbuf_add(&s, p, len);
	if (len > 0 && p[len - 1] != '\n')
		jbuf_add(&s, "\n", 1);
	snprintf(line, sizeof(line), "[output truncated: %u bytes dropped]\n", dropped);
	jbuf_str(&s, line);
	if (s.jb_failed)
		b->jb_failed = 1;
	else
		json_put_string(b, (const uint8_t *)s.jb_buf, s.jb_len);
	jbuf_free(&s);
}

/* Execution errors: status 200, "error", never stdout or stderr. */
static const char *
fcgi_exec_error(int status)
{
	switch (status) {
	case PROTO_S_TIMEOUT:		return "execution timeout";
	case PROTO_S_MEMORY:		return "memory limit exceeded";
	case PROTO_S_TERMINATED:	return "session terminated";
	case PROTO_S_NOT_JSON:		return "main() must return JSON-serializable data";
	default:			return NULL;
	}
}

void
fcgi_reply_exec(struct fcgi_reply *r, const struct sess_reply *sr,
    unsigned retry_after)
{
	struct jbuf *b = &r->fr_body, res;
	const char *msg;
	int first = 1;

	r->fr_outcome = proto_status_name(sr->sr_status);
	switch (sr->sr_status) {
	case PROTO_S_NOT_FOUND:
		fcgi_reply_error(r, 404, "session not found");
		return;
	case PROTO_S_BUSY:
		fcgi_reply_error(r, 409, "session busy");
		if (sr->sr_has_id)
			proto_id_format(sr->sr_id, r->fr_sid);
		return;
	case PROTO_S_FULL:
		fcgi_reply_error(r, 503, "max sessions reached");
		r->fr_retry_after = (int)retry_after;
		return;
	case PROTO_S_NO_MAIN:
		fcgi_reply_error(r, 422, "no main() function found");
		return;
	case PROTO_S_OK:
	case PROTO_S_TIMEOUT:
	case PROTO_S_MEMORY:
	case PROTO_S_TERMINATED:
	case PROTO_S_NOT_JSON:
		break;
	case PROTO_S_INTERNAL:
	case PROTO_S_UNHEALTHY:
	default:
		fcgi_reply_error(r, 500, "Internal server error");
		r->fr_outcome = "internal";
		return;
	}
	/* Script mode's result comes from the sandbox: checked and written anew. */
	jbuf_init(&res);
	if (sr->sr_status == PROTO_S_OK && sr->sr_has_result &&
	    json_check(sr->sr_res, sr->sr_res_len, &res) == -1) {
		jbuf_free(&res);
		fcgi_reply_error(r, 200, fcgi_exec_error(PROTO_S_NOT_JSON));
		r->fr_outcome = "not_json";
		return;
	}
	r->fr_status = 200;
	b->jb_len = 0;
	jbuf_str(b, "{");
	if (sr->sr_has_id) {
		proto_id_format(sr->sr_id, r->fr_sid);
		fcgi_key(b, &first, "id");
		json_put_string(b, (const uint8_t *)r->fr_sid, PROTO_ID_STRLEN);
	}
	if ((msg = fcgi_exec_error(sr->sr_status)) != NULL) {
		fcgi_key(b, &first, "error");
		json_put_string(b, (const uint8_t *)msg, strlen(msg));
	} else {
		if (sr->sr_has_result) {
			fcgi_key(b, &first, "result");
			jbuf_add(b, res.jb_buf, res.jb_len);
			if (res.jb_failed)
				b->jb_failed = 1;
		}
		fcgi_put_stream(b, &first, "stdout", sr->sr_out, sr->sr_out_len,
		    sr->sr_out_dropped);
		fcgi_put_stream(b, &first, "stderr", sr->sr_err, sr->sr_err_len,
		    sr->sr_err_dropped);
	}
	jbuf_str(b, "}");
	jbuf_free(&res);
	if (b->jb_failed) {
		jbuf_free(b);
		fcgi_reply_error(r, 500, "Internal server error");
		r->fr_outcome = "internal";
	} else if (sr->sr_status == PROTO_S_OK && (sr->sr_err_len || sr->sr_err_dropped))
		r->fr_outcome = "stderr";
}

void
fcgi_reply_metrics(struct fcgi_reply *r, const struct proto_metrics *m)
{
	static const double bounds[PROTO_HIST_BUCKETS] = {
		0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
		0.25, 1, 2.5
	};
	static const struct { int st; const char *name; } outcomes[] = {
		{ PROTO_S_TIMEOUT, "timeout" }, { PROTO_S_MEMORY, "memory" },
		{ PROTO_S_TERMINATED, "terminated" }, { PROTO_S_NOT_FOUND, "not_found" },
		{ PROTO_S_BUSY, "busy" }, { PROTO_S_FULL, "max_sessions" },
		{ PROTO_S_NO_MAIN, "no_main" }, { PROTO_S_NOT_JSON, "not_json" },
		{ PROTO_S_INTERNAL, "internal" },
	};
	struct jbuf *b = &r->fr_body;
	char line[256];
	size_t i;

#define M(...) do { snprintf(line, sizeof(line), __VA_ARGS__); jbuf_str(b, line); } while (0)
	r->fr_status = 200;
	r->fr_ctype = "text/plain; version=0.0.4; charset=utf-8";
	b->jb_len = 0;
	M("# HELP pyexec_sessions_live Sessions and script runs alive now.\n");
	M("# TYPE pyexec_sessions_live gauge\n");
	M("pyexec_sessions_live %llu\n", (unsigned long long)m->pm_sessions_live);
	M("# HELP pyexec_sessions_created_total Sessions and script runs created.\n");
	M("# TYPE pyexec_sessions_created_total counter\n");
	M("pyexec_sessions_created_total %llu\n", (unsigned long long)m->pm_sessions_created);
	M("# HELP pyexec_executions_total Execution requests by outcome.\n");
	M("# TYPE pyexec_executions_total counter\n");
	M("pyexec_executions_total{outcome=\"ok\"} %llu\n",
	    (unsigned long long)(m->pm_exec[PROTO_S_OK] - m->pm_exec_stderr));
	M("pyexec_executions_total{outcome=\"stderr\"} %llu\n",
	    (unsigned long long)m->pm_exec_stderr);
	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		M("pyexec_executions_total{outcome=\"%s\"} %llu\n", outcomes[i].name,
		    (unsigned long long)m->pm_exec[outcomes[i].st]);
	M("# HELP pyexec_execution_seconds Time from the start of an execution to its end.\n");
	M("# TYPE pyexec_execution_seconds histogram\n");
	for (i = 0; i < PROTO_HIST_BUCKETS; i++)
		M("pyexec_execution_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
		    (unsigned long long)m->pm_lat_bucket[i]);
	M("pyexec_execution_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)m->pm_lat_count);
	M("pyexec_execution_seconds_sum %.6f\n", m->pm_lat_sum_us / 1e6);
	M("pyexec_execution_seconds_count %llu\n", (unsigned long long)m->pm_lat_count);
	M("# HELP pyexec_queue_wait_seconds Time executions waited for their session.\n");
	M("# TYPE pyexec_queue_wait_seconds summary\n");
	M("pyexec_queue_wait_seconds_sum %.6f\n", m->pm_queue_wait_sum_us / 1e6);
	M("pyexec_queue_wait_seconds_count %llu\n", (unsigned long long)m->pm_queue_wait_count);
	M("# HELP pyexec_pool_ready Sandboxed children waiting for a new session.\n");
	M("# TYPE pyexec_pool_ready gauge\n");
	M("pyexec_pool_ready %llu\n", (unsigned long long)m->pm_pool_ready);
	M("# HELP pyexec_zygote_restarts_total Times the daemon restarted its zygote.\n");
	M("# TYPE pyexec_zygote_restarts_total counter\n");
	M("pyexec_zygote_restarts_total %llu\n", (unsigned long long)m->pm_zygote_restarts);
#undef M
}

const char *
fcgi_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 503: return "Service Unavailable";
	default:  return "Internal Server Error";
	}
}
