#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json.h>

#include "fcgi_req.h"
#include "sess_client.h"


/*
 * Parses one JSON value filling p[0..len): checked strictly first
 * (json_check), since json-c's own strict mode lets NaN, single quotes, raw
 * control characters and some ill-formed UTF-8 through.  Returns 0 with
 * *out set (NULL for null), or -1.
 */
static int
fcgi_json_parse(const char *p, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error e;

	*out = NULL;
	if (len > INT32_MAX || json_check(p, len, NULL) == -1 ||
	    (tok = json_tokener_new_ex(JSON_MAX_DEPTH + 1)) == NULL)
		return -1;
	*out = json_tokener_parse_ex(tok, p, (int)len);
	if ((e = json_tokener_get_error(tok)) == json_tokener_continue) {
		/* A value ending the input (5, true, null) needs its end spelled out. */
		*out = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
	}
	json_tokener_free(tok);
	if (e != json_tokener_success) {
		json_object_put(*out);
		*out = NULL;
		return -1;
	}
	return 0;
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
	struct json_object *root, *code = NULL, *script = NULL, *id = NULL, *src;
	int has_code, has_script, has_id;

	memset(e, 0, sizeof(*e));
	if (fcgi_json_parse(body, len, &root) == -1) {
		*err = "request body is not valid JSON";
		return 400;
	}
	e->fe_root = root;
	if (!json_object_is_type(root, json_type_object)) {
		*err = "request body must be a JSON object";
		goto fail400;
	}
	has_code = json_object_object_get_ex(root, "code", &code);
	has_script = json_object_object_get_ex(root, "script", &script);
	has_id = json_object_object_get_ex(root, "id", &id) && id != NULL;
	if (has_code && has_script) {
		*err = "give either 'code' or 'script', not both";
		goto fail422;
	}
	if (!has_code && !has_script) {
		*err = "'code' is required";
		goto fail422;
	}
	src = has_code ? code : script;
	if (!json_object_is_type(src, json_type_string)) {
		*err = has_code ? "'code' must be a string" : "'script' must be a string";
		goto fail422;
	}
	if (has_id && !json_object_is_type(id, json_type_string)) {
		*err = "'id' must be a string";
		goto fail422;
	}
	e->fe_mode = has_code ? PROTO_MODE_CODE : PROTO_MODE_SCRIPT;
	e->fe_code = json_object_get_string(src);
	e->fe_code_len = (size_t)json_object_get_string_len(src);
	if (e->fe_mode == PROTO_MODE_SCRIPT)
		return 0;	/* a script runs in a fresh interpreter: no session */
	if (has_id && hdr_sid != NULL &&
	    strcmp(json_object_get_string(id), hdr_sid) != 0) {
		*err = "'id' does not match the Pyexec-Session header";
		goto fail422;
	}
	if (has_id || hdr_sid != NULL) {
		const char *s = has_id ? json_object_get_string(id) : hdr_sid;
		size_t sl = has_id ? (size_t)json_object_get_string_len(id) : strlen(hdr_sid);

		/* Not even a UUID: it names no live session. */
		if (proto_id_parse(s, sl, e->fe_id) == -1) {
			*err = "session not found";
			fcgi_exec_free(e);
			return 404;
		}
		e->fe_has_id = 1;
	}
	return 0;
fail400:
	fcgi_exec_free(e);
	return 400;
fail422:
	fcgi_exec_free(e);
	return 422;
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
