#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "sess_client.h"

struct sess_client {
	char		 sc_path[108];
	int		 sc_fd;
	uint32_t	 sc_reqid;
	unsigned	 sc_bound_ms;
	uint32_t	 sc_max_stream;
	int		 sc_used;	/* a request went through on this connection */
	struct proto_msg sc_rx;
};

struct sess_client *
sess_client_new(const char *path, unsigned bound_ms, uint32_t max_stream)
{
	struct sess_client *sc;

	if (strlen(path) >= sizeof(sc->sc_path) || (sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	strcpy(sc->sc_path, path);	/* length checked above */
	sc->sc_fd = -1;
	sc->sc_bound_ms = bound_ms;
	sc->sc_max_stream = max_stream;
	return sc;
}

static void
sc_disconnect(struct sess_client *sc)
{
	if (sc->sc_fd >= 0)
		close(sc->sc_fd);
	sc->sc_fd = -1;
	sc->sc_used = 0;
}

void
sess_client_free(struct sess_client *sc)
{
	if (sc == NULL)
		return;
	sc_disconnect(sc);
	free(sc);
}

static int
sc_connect(struct sess_client *sc)
{
	struct sockaddr_un sa;
	struct timeval tv;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sc->sc_path);	/* checked in sess_client_new */
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	/* Replies are awaited in recvmsg itself, at most the bound per frame. */
	tv.tv_sec = sc->sc_bound_ms / 1000;
	tv.tv_usec = (sc->sc_bound_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1) {
		close(fd);
		return -1;
	}
	sc->sc_fd = fd;
	sc->sc_used = 0;
	return 0;
}

void
sess_reply_clear(struct sess_reply *r)
{
	free(r->sr_out);
	free(r->sr_err);
	free(r->sr_res);
	memset(r, 0, sizeof(*r));
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Receives the next frame of request reqid before the deadline (the socket's
 * SO_RCVTIMEO bounds each wait).  1, or -1.
 */
static int
sc_recv(struct sess_client *sc, uint32_t reqid, uint64_t deadline)
{
	int r;

	for (;;) {
		r = proto_recv(sc->sc_fd, &sc->sc_rx);
		if (r == -1 && errno == EINTR && mono_ms() < deadline)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
			log_err("func=%s event=daemon_timeout bound_ms=%u", __func__,
			    sc->sc_bound_ms);
			return -1;
		}
		if (r != 1) {
			log_err("func=%s event=daemon_lost errno=\"%s\"", __func__,
			    r == 0 ? "end of stream" : strerror(errno));
			return -1;
		}
		proto_msg_close_fds(&sc->sc_rx);	/* the daemon sends none */
		if (sc->sc_rx.pm_hdr.ph_reqid != reqid) {
			log_err("func=%s event=daemon_bad_reqid", __func__);
			return -1;
		}
		return 1;
	}
}

/* Stores one DATA frame into its stream; returns 1 at the END frame, 0 before, -1 on error. */
static int
sc_take_data(struct sess_reply *r, const struct proto_msg *m, uint32_t *got)
{
	uint8_t **buf;
	uint32_t want, *have;
	int which;

	if (m->pm_hdr.ph_type != PROTO_DATA)
		return -1;
	switch (m->pm_hdr.ph_flags & PROTO_F_STREAM_MASK) {
	case PROTO_STREAM_OUT:
		buf = &r->sr_out; want = r->sr_out_len; which = 0;
		break;
	case PROTO_STREAM_ERR:
		buf = &r->sr_err; want = r->sr_err_len; which = 1;
		break;
	case PROTO_STREAM_RESULT:
		buf = &r->sr_res; want = r->sr_res_len; which = 2;
		break;
	default:
		return -1;
	}
	have = &got[which];
	if (m->pm_hdr.ph_len > want - *have)
		return -1;
	memcpy(*buf + *have, m->pm_payload, m->pm_hdr.ph_len);
	*have += m->pm_hdr.ph_len;
	if (m->pm_hdr.ph_flags & PROTO_F_END)
		return got[0] == r->sr_out_len && got[1] == r->sr_err_len &&
		    got[2] == r->sr_res_len ? 1 : -1;
	return 0;
}

/*
 * Sends a request; a connection that went stale (the daemon restarted) is
 * replaced once.  Resending is safe: the daemon acts on a request only once
 * it has all of it, and a send that failed means this connection will
 * never deliver the rest.
 */
static int
sc_send_req(struct sess_client *sc, uint8_t type, const void *p, size_t len,
    const struct proto_part *parts, int nparts)
{
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (sc->sc_fd < 0 && sc_connect(sc) == -1) {
			log_err("func=%s event=daemon_unreachable socket=%s errno=\"%s\"",
			    __func__, sc->sc_path, strerror(errno));
			return -1;
		}
		if (proto_send_msg(sc->sc_fd, type, sc->sc_reqid, p, len, parts, nparts) == 0)
			return 0;
		if (!sc->sc_used || (errno != EPIPE && errno != ECONNRESET &&
		    errno != ENOTCONN && errno != ECONNREFUSED))
			break;
		sc_disconnect(sc);
	}
	log_err("func=%s event=daemon_send_failed errno=\"%s\"", __func__, strerror(errno));
	sc_disconnect(sc);
	return -1;
}

static int
sc_fail(struct sess_client *sc, struct sess_reply *r)
{
	sess_reply_clear(r);
	sc_disconnect(sc);	/* a late reply must never answer a later request */
	return -1;
}

static int
sc_read_result(struct sess_client *sc, uint32_t reqid, uint64_t deadline,
    struct sess_reply *r)
{
	struct proto_result pr;
	uint32_t got[3] = { 0, 0, 0 };
	int k;

	if (sc_recv(sc, reqid, deadline) != 1)
		return -1;
	if (sc->sc_rx.pm_hdr.ph_type == PROTO_STATUS &&
	    proto_payload_is(&sc->sc_rx, sizeof(struct proto_stat))) {
		r->sr_status = ((struct proto_stat *)(void *)sc->sc_rx.pm_payload)->pst_status;
		return 0;
	}
	if (sc->sc_rx.pm_hdr.ph_type != PROTO_RESULT ||
	    sc->sc_rx.pm_hdr.ph_len < sizeof(pr))
		return -1;
	memcpy(&pr, sc->sc_rx.pm_payload, sizeof(pr));
	if (pr.pr_out_len > sc->sc_max_stream || pr.pr_err_len > sc->sc_max_stream ||
	    pr.pr_res_len > sc->sc_max_stream || pr.pr_status == 0 ||
	    pr.pr_status >= PROTO_S_MAX)
		return -1;
	r->sr_status = pr.pr_status;
	r->sr_has_id = memcmp(pr.pr_id, (uint8_t[PROTO_ID_LEN]){ 0 }, PROTO_ID_LEN) != 0;
	memcpy(r->sr_id, pr.pr_id, PROTO_ID_LEN);
	r->sr_out_len = pr.pr_out_len;
	r->sr_err_len = pr.pr_err_len;
	r->sr_res_len = pr.pr_res_len;
	r->sr_out_dropped = pr.pr_out_dropped;
	r->sr_err_dropped = pr.pr_err_dropped;
	r->sr_has_result = pr.pr_has_result;
	if ((r->sr_out = malloc(pr.pr_out_len + 1)) == NULL ||
	    (r->sr_err = malloc(pr.pr_err_len + 1)) == NULL ||
	    (r->sr_res = malloc(pr.pr_res_len + 1)) == NULL) {
		log_err("func=%s out of memory", __func__);
		return -1;
	}
	switch (proto_msg_whole(&sc->sc_rx, sizeof(pr),
	    (size_t)pr.pr_out_len + pr.pr_err_len + pr.pr_res_len)) {
	case 1: {
		const uint8_t *p = sc->sc_rx.pm_payload + sizeof(pr);

		memcpy(r->sr_out, p, pr.pr_out_len);
		memcpy(r->sr_err, p + pr.pr_out_len, pr.pr_err_len);
		memcpy(r->sr_res, p + pr.pr_out_len + pr.pr_err_len, pr.pr_res_len);
		break;
	}
	case 0:
		for (;;) {
			if (sc_recv(sc, reqid, deadline) != 1)
				return -1;
			if ((k = sc_take_data(r, &sc->sc_rx, got)) == -1)
				return -1;
			if (k == 1)
				break;
		}
		break;
	default:
		return -1;
	}
	r->sr_out[r->sr_out_len] = '\0';
	r->sr_err[r->sr_err_len] = '\0';
	r->sr_res[r->sr_res_len] = '\0';
	return 0;
}

int
sess_client_exec(struct sess_client *sc, int mode, const uint8_t *id,
    const char *code, size_t len, struct sess_reply *r)
{
	struct proto_exec pe;
	struct proto_part part;
	uint64_t deadline;
	uint32_t reqid;

	memset(r, 0, sizeof(*r));
	memset(&pe, 0, sizeof(pe));
	pe.pe_mode = (uint8_t)mode;
	pe.pe_code_len = (uint32_t)len;
	if (id != NULL) {
		pe.pe_has_id = 1;
		memcpy(pe.pe_id, id, PROTO_ID_LEN);
	}
	part.pp_stream = PROTO_STREAM_CODE;
	part.pp_buf = code;
	part.pp_len = len;
	reqid = ++sc->sc_reqid;
	if (sc_send_req(sc, PROTO_EXEC, &pe, sizeof(pe), &part, 1) == -1)
		return sc_fail(sc, r);
	deadline = mono_ms() + sc->sc_bound_ms;
	if (sc_read_result(sc, reqid, deadline, r) == -1)
		return sc_fail(sc, r);
	sc->sc_used = 1;
	return 0;
}

static int
sc_simple(struct sess_client *sc, uint8_t type, const void *p, size_t len,
    struct sess_reply *r)
{
	uint32_t reqid;

	memset(r, 0, sizeof(*r));
	reqid = ++sc->sc_reqid;
	if (sc_send_req(sc, type, p, len, NULL, 0) == -1)
		return sc_fail(sc, r);
	if (sc_recv(sc, reqid, mono_ms() + 5000) != 1)
		return sc_fail(sc, r);
	if (sc->sc_rx.pm_hdr.ph_type == PROTO_STATUS &&
	    proto_payload_is(&sc->sc_rx, sizeof(struct proto_stat)))
		r->sr_status = ((struct proto_stat *)(void *)sc->sc_rx.pm_payload)->pst_status;
	else if (type == PROTO_METRICS && sc->sc_rx.pm_hdr.ph_type == PROTO_METRICS_REPLY &&
	    proto_payload_is(&sc->sc_rx, sizeof(r->sr_metrics))) {
		memcpy(&r->sr_metrics, sc->sc_rx.pm_payload, sizeof(r->sr_metrics));
		r->sr_status = PROTO_S_OK;
	} else
		return sc_fail(sc, r);
	sc->sc_used = 1;
	return 0;
}

int
sess_client_delete(struct sess_client *sc, const uint8_t id[PROTO_ID_LEN],
    struct sess_reply *r)
{
	struct proto_sid ps;

	memcpy(ps.ps_id, id, PROTO_ID_LEN);
	return sc_simple(sc, PROTO_DELETE, &ps, sizeof(ps), r);
}

int
sess_client_health(struct sess_client *sc, struct sess_reply *r)
{
	return sc_simple(sc, PROTO_HEALTH, NULL, 0, r);
}

int
sess_client_metrics(struct sess_client *sc, struct sess_reply *r)
{
	return sc_simple(sc, PROTO_METRICS, NULL, 0, r);
}
