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

/*
 * The bound of a health check, metrics or a delete.  The daemon answers them
 * at once: one that has not in 5 s is stalled, and /health says so then, not
 * after an execution's bound.
 */
#define SC_SIMPLE_MS	5000
/*
 * How far the timeout in force on the socket may be from the time a call has
 * left before it is set again: calls with the same bound in a row then cost
 * no system call, and a deadline is kept to within this.
 */
#define SC_SLACK_MS	50

struct sess_client {
	char		 sc_path[108];
	int		 sc_fd;
	uint32_t	 sc_reqid;
	unsigned	 sc_bound_ms;
	uint32_t	 sc_max_stream;
	int		 sc_used;	/* a request went through on this connection */
	unsigned	 sc_snd_ms;	/* SO_SNDTIMEO in force, 0: none yet */
	unsigned	 sc_rcv_ms;	/* SO_RCVTIMEO in force, 0: none yet */
	uint64_t	 sc_deadline;	/* of the call under way (mono_ms) */
	unsigned	 sc_call_ms;	/* that call's bound, for the log */
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

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts a call that may take bound_ms in all: connecting, sending, the reply. */
static void
sc_begin(struct sess_client *sc, unsigned bound_ms)
{
	sc->sc_call_ms = bound_ms;
	sc->sc_deadline = mono_ms() + bound_ms;
}

/*
 * Bounds the next wait on the socket by the time the call has left:
 * SO_SNDTIMEO for connect and send (on a Unix socket it bounds connect too,
 * which otherwise waits as long as the daemon's backlog is full), SO_RCVTIMEO
 * for receive.  (The kernel's timer wheel may end such a wait late by up to
 * an eighth of it: at HZ 250, 256 ms for 5 s.)  0, or -1 with errno ETIMEDOUT
 * once the deadline has passed.
 */
static int
sc_arm(struct sess_client *sc, int opt)
{
	unsigned *cur = opt == SO_SNDTIMEO ? &sc->sc_snd_ms : &sc->sc_rcv_ms;
	struct timeval tv;
	uint64_t now = mono_ms(), left;

	if (now >= sc->sc_deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	left = sc->sc_deadline - now;
	if (*cur != 0 && *cur <= left + SC_SLACK_MS &&
	    (uint64_t)*cur + SC_SLACK_MS >= left)
		return 0;
	/* Never 0 (left is at least 1): to the kernel that means no timeout. */
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (setsockopt(sc->sc_fd, SOL_SOCKET, opt, &tv, sizeof(tv)) == -1)
		return -1;
	*cur = (unsigned)left;
	return 0;
}

static int
sc_connect(struct sess_client *sc)
{
	struct sockaddr_un sa;
	int saved;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, sc->sc_path);	/* checked in sess_client_new */
	if ((sc->sc_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	sc->sc_used = 0;
	sc->sc_snd_ms = sc->sc_rcv_ms = 0;
	if (sc_arm(sc, SO_SNDTIMEO) == -1 ||
	    connect(sc->sc_fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		saved = errno;
		sc_disconnect(sc);
		errno = saved;
		return -1;
	}
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

/* A wait that ended at the call's deadline: the socket's timeout, or sc_arm. */
static int
sc_timed_out(int err)
{
	return err == EAGAIN || err == ETIMEDOUT;
}

/* Receives the next frame of request reqid before the call's deadline.  1, or -1. */
static int
sc_recv(struct sess_client *sc, uint32_t reqid)
{
	int r;

	for (;;) {
		r = sc_arm(sc, SO_RCVTIMEO) == -1 ? -1 : proto_recv(sc->sc_fd, &sc->sc_rx);
		/* The timeout in force may end up to SC_SLACK_MS early. */
		if (r == -1 && errno == EAGAIN && mono_ms() < sc->sc_deadline)
			continue;
		if (r == -1 && sc_timed_out(errno)) {
			log_err("func=%s event=daemon_timeout phase=reply bound_ms=%u",
			    __func__, sc->sc_call_ms);
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
			if (sc_timed_out(errno))
				log_err("func=%s event=daemon_timeout phase=connect "
				    "socket=%s bound_ms=%u", __func__, sc->sc_path,
				    sc->sc_call_ms);
			else
				log_err("func=%s event=daemon_unreachable socket=%s "
				    "errno=\"%s\"", __func__, sc->sc_path, strerror(errno));
			return -1;
		}
		/*
		 * A daemon that does not read (stopped, stuck) fills the socket.
		 * Each frame of code too long for one waits at most what the
		 * call had left here: a daemon that takes a frame now and then
		 * is not stuck, and the reply's wait finds the deadline passed.
		 */
		if (sc_arm(sc, SO_SNDTIMEO) == 0 && proto_send_msg(sc->sc_fd, type,
		    sc->sc_reqid, p, len, parts, nparts) == 0)
			return 0;
		if (!sc->sc_used || (errno != EPIPE && errno != ECONNRESET &&
		    errno != ENOTCONN && errno != ECONNREFUSED))
			break;
		sc_disconnect(sc);
	}
	if (sc_timed_out(errno))
		log_err("func=%s event=daemon_timeout phase=send bound_ms=%u", __func__,
		    sc->sc_call_ms);
	else
		log_err("func=%s event=daemon_send_failed errno=\"%s\"", __func__,
		    strerror(errno));
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
sc_read_result(struct sess_client *sc, uint32_t reqid, struct sess_reply *r)
{
	struct proto_result pr;
	uint32_t got[3] = { 0, 0, 0 };
	int k;

	if (sc_recv(sc, reqid) != 1)
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
			if (sc_recv(sc, reqid) != 1)
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
	sc_begin(sc, sc->sc_bound_ms);
	reqid = ++sc->sc_reqid;
	if (sc_send_req(sc, PROTO_EXEC, &pe, sizeof(pe), &part, 1) == -1)
		return sc_fail(sc, r);
	if (sc_read_result(sc, reqid, r) == -1)
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
	sc_begin(sc, SC_SIMPLE_MS);
	reqid = ++sc->sc_reqid;
	if (sc_send_req(sc, type, p, len, NULL, 0) == -1)
		return sc_fail(sc, r);
	if (sc_recv(sc, reqid) != 1)
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
