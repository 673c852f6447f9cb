/*
 * The HTTP side of pyexec, without I/O: routing, request checks and the
 * exact response shapes of the API contract (docs: README "API").  Pure
 * functions over strings and the daemon's replies, so the unit tests and the
 * fuzz targets link this file alone (with fcgi_json.c).
 */
#ifndef PYEXEC_FCGI_REQ_H
#define PYEXEC_FCGI_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi_json.h"
#include "proto.h"

struct sess_reply;
struct json_object;

enum fcgi_route {
	FR_NONE,	/* unknown path: 404 */
	FR_EXECUTE,	/* POST /execute */
	FR_HEALTH,	/* GET /health */
	FR_METRICS,	/* GET /metrics */
	FR_SESSION,	/* DELETE /sessions/{id} */
	FR_STATIC	/* GET /, /docs, /openapi.json: the web server's files */
};

/* An HTTP answer, ready to be written. */
struct fcgi_reply {
	int		 fr_status;
	const char	*fr_allow;		/* Allow header, or NULL */
	const char	*fr_ctype;		/* Content-Type */
	char		 fr_sid[PROTO_ID_STRLEN + 1];	/* Pyexec-Session, or "" */
	int		 fr_retry_after;	/* seconds, or -1 */
	const char	*fr_outcome;		/* for the log line */
	struct jbuf	 fr_body;
};

/* A checked POST /execute. */
struct fcgi_exec {
	int			 fe_mode;	/* PROTO_MODE_CODE or PROTO_MODE_SCRIPT */
	const char		*fe_code;	/* inside fe_root */
	size_t			 fe_code_len;
	int			 fe_has_id;
	uint8_t			 fe_id[PROTO_ID_LEN];
	struct json_object	*fe_root;	/* the string: owns fe_code */
};

/*
 * Maps a request URI (query string allowed) to a route.  For FR_SESSION,
 * *arg and *arglen are the {id} part.
 */
enum fcgi_route fcgi_route(const char *uri, const char **arg, size_t *arglen);

/* NULL if the route serves method, else the value of the Allow header. */
const char *fcgi_allowed(enum fcgi_route r, const char *method);

/* 1 if a Content-Type (NULL or "" when absent) is acceptable JSON. */
int	fcgi_content_type_ok(const char *ct);

/*
 * Parses and checks an /execute body; hdr_sid is the Pyexec-Session header
 * (NULL when absent).  Returns 0 with *e filled (release with
 * fcgi_exec_free), or an HTTP status with *err set to the contract's string.
 */
int	fcgi_parse_exec(const char *body, size_t len, const char *hdr_sid,
	    struct fcgi_exec *e, const char **err);
void	fcgi_exec_free(struct fcgi_exec *e);

void	fcgi_reply_init(struct fcgi_reply *r);
void	fcgi_reply_free(struct fcgi_reply *r);

/* {"error": msg} with status. */
void	fcgi_reply_error(struct fcgi_reply *r, int status, const char *msg);

/* The answer to an execution, from the daemon's reply. */
void	fcgi_reply_exec(struct fcgi_reply *r, const struct sess_reply *sr,
	    unsigned retry_after);

/* The answer to GET /metrics (Prometheus text format). */
void	fcgi_reply_metrics(struct fcgi_reply *r, const struct proto_metrics *m);

/* The reason phrase of an HTTP status. */
const char *fcgi_reason(int status);

#endif
