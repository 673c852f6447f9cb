/*
 * The client side of the session daemon's protocol, for pyexec-fcgi: one
 * connection per worker thread, opened on first use and kept; a request is
 * a few frames out and a reply in, bounded in time and size.  Blocking.
 */
#ifndef PYEXEC_SESS_CLIENT_H
#define PYEXEC_SESS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct sess_client;

/* What the daemon answered. */
struct sess_reply {
	int		sr_status;		/* enum proto_status */
	int		sr_has_id;
	uint8_t		sr_id[PROTO_ID_LEN];
	uint8_t		*sr_out, *sr_err, *sr_res;	/* malloc'd, or NULL */
	uint32_t	sr_out_len, sr_err_len, sr_res_len;
	uint32_t	sr_out_dropped, sr_err_dropped;
	int		sr_has_result;
	struct proto_metrics sr_metrics;	/* PROTO_METRICS only */
};

/*
 * A client for the daemon at path.  An execution may take bound_ms in all
 * (connecting, sending the code, waiting for the reply), a delete, health
 * check or metrics 5 s; past that the call fails and the connection is
 * dropped, so that a late reply never answers a later request.  No stream
 * may be longer than max_stream bytes.  Does not connect yet.  Returns NULL
 * on allocation failure.
 */
struct sess_client *sess_client_new(const char *path, unsigned bound_ms,
	    uint32_t max_stream);
void	sess_client_free(struct sess_client *sc);

/*
 * Runs code (mode PROTO_MODE_CODE or PROTO_MODE_SCRIPT) in session id (NULL:
 * a new session).  Returns 0 with *r filled (free with sess_reply_clear), or
 * -1 when the daemon could not be reached or broke the protocol (logged).
 */
int	sess_client_exec(struct sess_client *sc, int mode, const uint8_t *id,
	    const char *code, size_t len, struct sess_reply *r);

/* PROTO_DELETE, PROTO_HEALTH or PROTO_METRICS: same return convention. */
int	sess_client_delete(struct sess_client *sc, const uint8_t id[PROTO_ID_LEN],
	    struct sess_reply *r);
int	sess_client_health(struct sess_client *sc, struct sess_reply *r);
int	sess_client_metrics(struct sess_client *sc, struct sess_reply *r);

void	sess_reply_clear(struct sess_reply *r);

#endif
