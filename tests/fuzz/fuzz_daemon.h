/*
 * The world around the real session daemon, for fuzz_daemon_conn.c and
 * fuzz_daemon_child.c.  Include it after "../../sessions/sessiond.c" (built
 * with -Dmain=sessiond_main), so its static handlers and state are in reach.
 *
 * The daemon runs as it does in production, minus the processes: FastCGI
 * workers are the far ends of socketpairs wrapped in a struct conn as
 * listen_accept() makes them; the zygote is the far end of zyg.fd and
 * receives the daemon's real PROTO_FORK orders with the child's real
 * descriptors (ctl socket, stdout and stderr pipes); the harness then plays
 * the child on those descriptors.  cgroups are in the degraded "none" mode
 * (sess_cgroup.c's handles do nothing), the "pidfd" of a child is an eventfd
 * (pidfd_send_signal on it fails with EBADF: nothing is ever signalled), and
 * zyg.pid stays -1, so no kill(2) reaches any process.
 *
 * Frames are sent with send(2) on the far ends, one datagram each, so that
 * proto_recv sees exactly those datagrams, malformed ones included; then the
 * readable handlers run as the epoll loop would call them, and after every
 * step whatever the daemon sent is read back and checked:
 *   - to a worker: only well-formed frames (STATUS, METRICS_REPLY, RESULT and
 *     the DATA streams it announces, in order, with END on the last), each
 *     echoing a request id the worker sent;
 *   - to the zygote: FORK orders with their descriptors;
 *   - to a child: RUN and its code as DATA.
 * Each input ends as the daemon ends objects: every conn closed, every
 * session exited and buried; then the counters must be back to zero, the
 * descriptor count as before the input, and LeakSanitizer sees the rest.
 */
#ifndef PYEXEC_FUZZ_DAEMON_H
#define PYEXEC_FUZZ_DAEMON_H

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>

#define FZ_CHECK(c) do {						\
	if (!(c)) {							\
		fprintf(stderr, "fuzz_daemon: invariant failed at %s:%d: %s\n", \
		    __FILE__, __LINE__, #c);				\
		abort();						\
	}								\
} while (0)

#define FZ_WORKERS	3
#define FZ_CHILDREN	16
#define FZ_REQIDS	128
#define FZ_MAX_OPS	512

/* A FastCGI worker: the far end of one daemon conn. */
struct fz_worker {
	int		 w_peer;	/* our end, -1 once closed */
	struct conn	*w_conn;	/* NULL once the daemon freed it */
	int		 w_eof;		/* the daemon closed the link */
	uint32_t	 w_reqid[FZ_REQIDS];	/* request ids sent */
	unsigned	 w_nreq;
	/* A RESULT whose streams are arriving. */
	int		 w_streaming;
	uint32_t	 w_sreq;
	uint32_t	 w_left[3];	/* out, err, result */
	unsigned	 w_replies;
};

/* A child the zygote "forked": its ends of the daemon's descriptors. */
struct fz_child {
	uint32_t	 ch_serial;
	int		 ch_ctl, ch_out, ch_err;
	int		 ch_answered;	/* FORKED sent */
	uint32_t	 ch_run_left;	/* code bytes of a RUN still to come */
	int		 ch_runs;
};

static struct {
	int		 inited;
	int		 zpeer;		/* the zygote's end of zyg.fd */
	struct fz_worker w[FZ_WORKERS];
	struct fz_child	 ch[FZ_CHILDREN];
	unsigned	 nch;
	struct cfg	 defaults;
} fz;

static struct proto_msg fz_rx;	/* what the daemon sent, read back */

struct fz_in {
	const uint8_t	*p;
	size_t		 n;
};

static uint8_t
fz_u8(struct fz_in *in)
{
	uint8_t v = 0;

	if (in->n > 0) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t
fz_u16(struct fz_in *in)
{
	uint16_t v = fz_u8(in);

	return (uint16_t)(v << 8 | fz_u8(in));
}

static const uint8_t *
fz_bytes(struct fz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;

	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

static int
fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	FZ_CHECK(d != NULL);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
fz_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* ---- the daemon's replies, read back and checked ------------------------- */

static int
fz_worker_sent(const struct fz_worker *w, uint32_t reqid)
{
	unsigned i;

	for (i = 0; i < w->w_nreq && i < FZ_REQIDS; i++)
		if (w->w_reqid[i] == reqid)
			return 1;
	return w->w_nreq > FZ_REQIDS;	/* lost track: accept */
}

static void
fz_worker_note(struct fz_worker *w, const uint8_t *dgram, size_t n)
{
	uint32_t reqid;

	if (n < sizeof(struct proto_hdr))
		return;
	memcpy(&reqid, dgram + offsetof(struct proto_hdr, ph_reqid), sizeof(reqid));
	if (w->w_nreq < FZ_REQIDS)
		w->w_reqid[w->w_nreq] = reqid;
	w->w_nreq++;
}

/* One frame from the daemon to worker w: the daemon never sends a malformed one. */
static void
fz_worker_frame(struct fz_worker *w, const struct proto_msg *m)
{
	const struct proto_hdr *h = &m->pm_hdr;
	struct proto_result pr;
	struct proto_stat st;
	int k, stream;

	if (getenv("FUZZ_DAEMON_LOG") != NULL)
		fprintf(stderr, "fuzz_daemon: worker %d <- type=%u flags=%#x reqid=%u len=%u "
		    "status=%u\n", (int)(w - fz.w), h->ph_type, h->ph_flags, h->ph_reqid,
		    h->ph_len, h->ph_len ? m->pm_payload[0] : 0);
	FZ_CHECK(m->pm_nfds == 0);
	if (w->w_streaming) {
		FZ_CHECK(h->ph_type == PROTO_DATA);
		FZ_CHECK(h->ph_reqid == w->w_sreq);
		for (k = 0; k < 3 && w->w_left[k] == 0; k++)
			;
		FZ_CHECK(k < 3);
		stream = k == 0 ? PROTO_STREAM_OUT : k == 1 ? PROTO_STREAM_ERR :
		    PROTO_STREAM_RESULT;
		FZ_CHECK((h->ph_flags & PROTO_F_STREAM_MASK) == stream);
		FZ_CHECK((h->ph_flags & ~(PROTO_F_STREAM_MASK | PROTO_F_END)) == 0);
		FZ_CHECK(h->ph_len > 0 && h->ph_len <= w->w_left[k]);
		w->w_left[k] -= h->ph_len;
		if (w->w_left[k] == 0 && (k == 2 || (w->w_left[k + 1] == 0 &&
		    (k == 1 || w->w_left[2] == 0)))) {
			FZ_CHECK(h->ph_flags & PROTO_F_END);
			w->w_streaming = 0;
		} else
			FZ_CHECK(!(h->ph_flags & PROTO_F_END));
		return;
	}
	FZ_CHECK(fz_worker_sent(w, h->ph_reqid));
	w->w_replies++;
	switch (h->ph_type) {
	case PROTO_STATUS:
		FZ_CHECK(h->ph_len == sizeof(st) && h->ph_flags == PROTO_F_END);
		memcpy(&st, m->pm_payload, sizeof(st));
		FZ_CHECK(st.pst_status > 0 && st.pst_status < PROTO_S_MAX);
		return;
	case PROTO_METRICS_REPLY:
		FZ_CHECK(h->ph_len == sizeof(struct proto_metrics) &&
		    h->ph_flags == PROTO_F_END);
		return;
	case PROTO_RESULT:
		FZ_CHECK(h->ph_len >= sizeof(pr));
		memcpy(&pr, m->pm_payload, sizeof(pr));
		FZ_CHECK(pr.pr_status > 0 && pr.pr_status < PROTO_S_MAX);
		/* sess_client.c refuses streams over output_limit. */
		FZ_CHECK(pr.pr_out_len <= cfg.output_limit);
		FZ_CHECK(pr.pr_err_len <= cfg.output_limit);
		FZ_CHECK(pr.pr_res_len <= cfg.output_limit);
		FZ_CHECK(pr.pr_has_result <= 1);
		FZ_CHECK(pr.pr_res_len == 0 || pr.pr_has_result);
		if (pr.pr_status != PROTO_S_OK)
			FZ_CHECK(!pr.pr_has_result && !pr.pr_out_len && !pr.pr_err_len &&
			    !pr.pr_res_len && !pr.pr_out_dropped && !pr.pr_err_dropped);
		FZ_CHECK((h->ph_flags & ~PROTO_F_END) == 0);
		/* Whole in one frame when it fits, else the streams follow. */
		k = proto_msg_whole(m, sizeof(pr),
		    (size_t)pr.pr_out_len + pr.pr_err_len + pr.pr_res_len);
		FZ_CHECK(k != -1);
		if (k == 0) {
			w->w_streaming = 1;
			w->w_sreq = h->ph_reqid;
			w->w_left[0] = pr.pr_out_len;
			w->w_left[1] = pr.pr_err_len;
			w->w_left[2] = pr.pr_res_len;
		}
		return;
	default:
		FZ_CHECK(!"a frame type the daemon never sends a worker");
	}
}

static void
fz_drain_worker(struct fz_worker *w)
{
	int r;

	while (w->w_peer >= 0 && !w->w_eof) {
		r = proto_recv(w->w_peer, &fz_rx);
		if (r == -1 && errno == EAGAIN)
			return;
		/* EPROTO: the daemon sent a malformed frame. */
		FZ_CHECK(r != -1 || errno == ECONNRESET);
		if (r != 1) {	/* closed (with our frames unread: ECONNRESET) */
			w->w_eof = 1;
			return;
		}
		fz_worker_frame(w, &fz_rx);
	}
}

static struct fz_child *
fz_child_by_serial(uint32_t serial)
{
	unsigned i;

	for (i = 0; i < fz.nch; i++)
		if (fz.ch[i].ch_serial == serial)
			return &fz.ch[i];
	return NULL;
}

static void
fz_drain_zygote(void)
{
	struct proto_fork pf;
	struct fz_child *ch;
	int r, i;

	while (fz.zpeer >= 0) {
		r = proto_recv(fz.zpeer, &fz_rx);
		if (r == -1 && errno == EAGAIN)
			return;
		FZ_CHECK(r != -1 || errno == ECONNRESET);
		if (r != 1) {
			fz_close(&fz.zpeer);
			return;
		}
		FZ_CHECK(fz_rx.pm_hdr.ph_type == PROTO_FORK);
		FZ_CHECK(fz_rx.pm_hdr.ph_len == sizeof(pf));
		memcpy(&pf, fz_rx.pm_payload, sizeof(pf));
		FZ_CHECK(pf.pf_ncg == 0);	/* no cgroups */
		FZ_CHECK(fz_rx.pm_nfds == 3);
		FZ_CHECK(pf.pf_uid >= cfg.uid_base && pf.pf_uid < cfg.uid_base + cfg.uid_count);
		FZ_CHECK(fz_child_by_serial(pf.pf_serial) == NULL);
		if (fz.nch == FZ_CHILDREN) {
			/* More children than we play: this one never answers. */
			proto_msg_close_fds(&fz_rx);
			continue;
		}
		ch = &fz.ch[fz.nch++];
		memset(ch, 0, sizeof(*ch));
		ch->ch_serial = pf.pf_serial;
		ch->ch_ctl = fz_rx.pm_fds[0];
		ch->ch_out = fz_rx.pm_fds[1];
		ch->ch_err = fz_rx.pm_fds[2];
		for (i = 0; i < 3; i++)
			FZ_CHECK(set_nonblock(fz_rx.pm_fds[i]) == 0);
		fz_rx.pm_nfds = 0;
	}
}

/* What the daemon sends a child: RUN, then the code as DATA frames. */
static void
fz_drain_child(struct fz_child *ch)
{
	struct proto_run run;
	int r;

	while (ch->ch_ctl >= 0) {
		r = proto_recv(ch->ch_ctl, &fz_rx);
		if (r == -1 && errno == EAGAIN)
			return;
		FZ_CHECK(r != -1 || errno == ECONNRESET);
		if (r != 1) {
			fz_close(&ch->ch_ctl);	/* the daemon let go of it */
			return;
		}
		FZ_CHECK(fz_rx.pm_nfds == 0);
		if (fz_rx.pm_hdr.ph_type == PROTO_RUN) {
			FZ_CHECK(ch->ch_run_left == 0);
			FZ_CHECK(fz_rx.pm_hdr.ph_len >= sizeof(run));
			memcpy(&run, fz_rx.pm_payload, sizeof(run));
			FZ_CHECK(run.prn_mode == PROTO_MODE_CODE ||
			    run.prn_mode == PROTO_MODE_SCRIPT);
			FZ_CHECK(run.prn_code_len <= cfg.max_body);
			r = proto_msg_whole(&fz_rx, sizeof(run), run.prn_code_len);
			FZ_CHECK(r != -1);
			ch->ch_runs++;
			/* Code that did not fit beside the struct follows. */
			if (r == 0)
				ch->ch_run_left = run.prn_code_len | 0x80000000u;
			continue;
		}
		FZ_CHECK(fz_rx.pm_hdr.ph_type == PROTO_DATA);
		FZ_CHECK((fz_rx.pm_hdr.ph_flags & PROTO_F_STREAM_MASK) == PROTO_STREAM_CODE);
		FZ_CHECK(ch->ch_run_left & 0x80000000u);
		FZ_CHECK(fz_rx.pm_hdr.ph_len <= (ch->ch_run_left & 0x7fffffffu));
		ch->ch_run_left -= fz_rx.pm_hdr.ph_len;
		if (fz_rx.pm_hdr.ph_flags & PROTO_F_END) {
			FZ_CHECK(ch->ch_run_left == 0x80000000u);
			ch->ch_run_left = 0;
		}
	}
}

static void
fz_drain_all(void)
{
	unsigned i;

	for (i = 0; i < FZ_WORKERS; i++)
		fz_drain_worker(&fz.w[i]);
	fz_drain_zygote();
	for (i = 0; i < fz.nch; i++)
		fz_drain_child(&fz.ch[i]);
}

/* ---- the end of a loop turn ---------------------------------------------- */

/* As loop() does after each turn: objects ended in it are freed now. */
static void
fz_turn_end(void)
{
	struct sess *s;
	struct conn *c;
	unsigned i;

	for (i = 0; i < FZ_WORKERS; i++)
		if (fz.w[i].w_conn != NULL && fz.w[i].w_conn->c_freed)
			fz.w[i].w_conn = NULL;
	pool_fill(now_ns());
	while ((s = TAILQ_FIRST(&dead_sessions)) != NULL) {
		TAILQ_REMOVE(&dead_sessions, s, s_entry);
		free(s);
	}
	while ((c = TAILQ_FIRST(&dead_conns)) != NULL) {
		TAILQ_REMOVE(&dead_conns, c, c_entry);
		free(c);
	}
	fz_drain_all();
}

/* ---- set-up and tear-down ------------------------------------------------ */

static void
fz_init_once(void)
{
	if (fz.inited)
		return;
	fz.inited = 1;
	log_init("pyexec-sessiond");
	cfg_defaults(&fz.defaults);
	signal(SIGPIPE, SIG_IGN);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	if ((uid_used = calloc(fz.defaults.uid_count, 1)) == NULL)
		fatal("calloc");
	zyg.pid = -1;
	zyg.fd = -1;
}

static void
fz_add_worker(struct fz_worker *w)
{
	int sv[2], sz = conn_sndbuf;
	struct conn *c;

	memset(w, 0, sizeof(*w));
	w->w_peer = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	c = calloc(1, sizeof(*c));
	FZ_CHECK(c != NULL);
	c->c_fd = sv[0];
	c->c_ev = (struct evh){ EV_CONN, c };
	TAILQ_INSERT_TAIL(&conns, c, c_entry);
	ep_add(sv[0], EPOLLIN, &c->c_ev);
	w->w_conn = c;
	w->w_peer = sv[1];
}

/* A fresh daemon state for one input; cf picks limits within cfg_check's ranges. */
static void
fz_begin(uint8_t cf0, uint8_t cf1, int with_zygote)
{
	static const unsigned outlim[4] = { 1024, 4096, 65536, 1 << 20 };
	static const unsigned body[4] = { 1024, 2048, 70000, 1 << 20 };
	int sv[2];
	unsigned i;

	fz_init_once();
	cfg = fz.defaults;
	cfg.output_limit = outlim[cf1 & 3];
	cfg.max_body = body[(cf1 >> 2) & 3];
	cfg.queue_max = 1 + ((cf0 >> 4) & 3);
	cfg.max_sessions = 1 + ((cf0 >> 6) & 3);
	cfg.pool_size = (cf0 >> 2) & 1;
	log_debug_on = (cf1 >> 5) & 1;
	conn_sndbuf = (int)(3ull * cfg.output_limit + (1 << 20));
	ctl_sndbuf = (int)(2ull * cfg.max_body + (1 << 20));
	stopping = 0;
	spawn_retry_ns = 0;
	spawn_backoff_ms = 0;
	n_counted = n_pool = 0;
	uid_cursor = 0;
	next_serial = 1;
	memset(&metrics, 0, sizeof(metrics));
	memset(&fz.w, 0, sizeof(fz.w));
	memset(&fz.ch, 0, sizeof(fz.ch));
	fz.nch = 0;
	fz.zpeer = -1;
	zyg.pid = -1;
	zyg.fd = -1;
	zyg.ready = cf0 & 1;
	zyg.restart_ns = 0;
	zyg.backoff_ms = 0;
	if (with_zygote) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		    sv) == -1)
			fatal("socketpair");
		zyg.fd = sv[0];
		fz.zpeer = sv[1];
		ep_add(zyg.fd, EPOLLIN, &zyg.ev);
	}
	for (i = 0; i < FZ_WORKERS; i++)
		fz_add_worker(&fz.w[i]);
	if ((cf1 >> 4) & 1)
		stopping = 1;
}

/* Ends everything as the daemon would, then checks that nothing is left. */
static void
fz_end(int fds_before)
{
	struct sess *s, *tmp;
	struct conn *c, *ctmp;
	unsigned i;

	fz_drain_all();
	TAILQ_FOREACH_SAFE(c, &conns, c_entry, ctmp)
		conn_close(c);
	/* Every child dies: its pidfd fires, or the zygote's link goes first. */
	stopping = 1;
	TAILQ_FOREACH_SAFE(s, &sessions, s_entry, tmp) {
		if (s->s_state != S_BURIED)
			sess_exited(s);
		else
			sess_bury(s, now_ns());
	}
	close_fd(&zyg.fd);
	fz_turn_end();
	FZ_CHECK(TAILQ_EMPTY(&sessions) && TAILQ_EMPTY(&conns));
	/* The accounting of every session ended is back to zero. */
	FZ_CHECK(n_counted == 0);
	FZ_CHECK(n_pool == 0);
	for (i = 0; i < cfg.uid_count; i++)
		FZ_CHECK(uid_used[i] == 0);
	for (i = 0; i < FZ_WORKERS; i++)
		fz_close(&fz.w[i].w_peer);
	for (i = 0; i < fz.nch; i++) {
		fz_close(&fz.ch[i].ch_ctl);
		fz_close(&fz.ch[i].ch_out);
		fz_close(&fz.ch[i].ch_err);
	}
	fz_close(&fz.zpeer);
	FZ_CHECK(fz_count_fds() == fds_before);
}

/* ---- steps --------------------------------------------------------------- */

/*
 * Sends one datagram on fd; a full socket gets its reader run once (as
 * epoll would), then the frame is dropped if it still does not fit.
 */
static void
fz_send(int fd, const void *p, size_t n, void (*reader)(void *), void *arg)
{
	if (fd < 0)
		return;
	if (send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 && errno == EAGAIN &&
	    reader != NULL) {
		reader(arg);
		(void)send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

/*
 * The daemon's epoll set is level-triggered and its handlers read one frame
 * per call: as the loop would, call again while the descriptor is readable.
 */
static int
fz_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return fd >= 0 && poll(&p, 1, 0) == 1;
}

static void
fz_conn_reader(void *arg)
{
	struct fz_worker *w = arg;
	int i;

	for (i = 0; i < 64 && w->w_conn != NULL && !w->w_conn->c_freed &&
	    fz_readable(w->w_conn->c_fd); i++)
		conn_readable(w->w_conn);
	fz_drain_worker(w);
}

static struct sess *
fz_sess_of(const struct fz_child *ch)
{
	struct sess *s = sess_by_serial(ch->ch_serial);

	return s != NULL && !s->s_freed ? s : NULL;
}

static void
fz_ctl_reader(void *arg)
{
	struct fz_child *ch = arg;
	struct sess *s;
	int i;

	for (i = 0; i < 64 && (s = fz_sess_of(ch)) != NULL && fz_readable(s->s_ctl); i++)
		sess_ctl_readable(s);
	fz_drain_child(ch);
}

/* A datagram from input: 0 raw bytes, else a header with a consistent length. */
static size_t
fz_make_dgram(struct fz_in *in, uint8_t *buf, size_t cap, int raw)
{
	struct proto_hdr h;
	const uint8_t *p;
	size_t n;

	if (raw) {
		p = fz_bytes(in, fz_u16(in) % (cap + 1), &n);
		memcpy(buf, p, n);
		return n;
	}
	memset(&h, 0, sizeof(h));
	h.ph_version = PROTO_VERSION;
	h.ph_type = fz_u8(in) % (PROTO_TYPE_MAX + 1);
	h.ph_flags = fz_u16(in);
	h.ph_reqid = fz_u8(in) % 4;
	p = fz_bytes(in, fz_u16(in) % (cap - sizeof(h) + 1), &n);
	h.ph_len = (uint32_t)n;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), p, n);
	return sizeof(h) + n;
}

/* A big frame: a header as given (length too), then fill bytes. */
static size_t
fz_make_big(struct fz_in *in, uint8_t *buf, size_t cap)
{
	struct proto_hdr h;
	size_t n;
	uint8_t fill;

	memset(&h, 0, sizeof(h));
	h.ph_version = PROTO_VERSION;
	h.ph_type = fz_u8(in) % (PROTO_TYPE_MAX + 1);
	h.ph_flags = fz_u16(in);
	h.ph_reqid = fz_u8(in) % 4;
	n = (size_t)fz_u8(in) << 9;	/* up to 128 KiB */
	n |= (size_t)fz_u8(in) << 1;
	fill = fz_u8(in);
	if (n > cap - sizeof(h))
		n = cap - sizeof(h);
	h.ph_len = (uint32_t)n;
	if (fill & 1)
		h.ph_len += fz_u8(in) % 3;	/* lie about the length, a little */
	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), fill, n);
	return sizeof(h) + n;
}

static uint8_t fz_buf[PROTO_MAX_PAYLOAD + 4096];

/* The zygote answers its oldest unanswered fork order. */
static void
fz_zygote_answer(int ok)
{
	struct proto_forked fk;
	unsigned i;
	int efd;

	fz_drain_zygote();
	for (i = 0; i < fz.nch && fz.ch[i].ch_answered; i++)
		;
	if (i == fz.nch || fz.zpeer < 0)
		return;
	fz.ch[i].ch_answered = 1;
	memset(&fk, 0, sizeof(fk));
	fk.pfk_serial = fz.ch[i].ch_serial;
	if (ok) {
		fk.pfk_pid = 100000 + (int)fk.pfk_serial;
		if ((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
			fatal("eventfd");
		(void)proto_send(fz.zpeer, PROTO_FORKED, PROTO_F_END, 0, &fk, sizeof(fk),
		    &efd, 1);
		close(efd);
	} else {
		fk.pfk_pid = -1;
		fk.pfk_errno = EAGAIN;
		(void)proto_send(fz.zpeer, PROTO_FORKED, PROTO_F_END, 0, &fk, sizeof(fk),
		    NULL, 0);
		fz_close(&fz.ch[i].ch_ctl);
		fz_close(&fz.ch[i].ch_out);
		fz_close(&fz.ch[i].ch_err);
	}
	for (i = 0; i < 64 && fz_readable(zyg.fd); i++)
		zygote_readable();
}

/* Worker w asks to run code, in a session the harness knows or not. */
static void
fz_worker_exec(struct fz_worker *w, struct fz_in *in)
{
	uint8_t fl = fz_u8(in), idx = fz_u8(in);
	struct proto_exec pe;
	struct sess *s;
	uint32_t reqid = fz_u8(in) % 4;
	size_t len = fz_u16(in) % 3000, half;
	static uint8_t code[3000];

	memset(&pe, 0, sizeof(pe));
	pe.pe_mode = (fl & 1) ? PROTO_MODE_SCRIPT : PROTO_MODE_CODE;
	if (fl & 2) {
		pe.pe_has_id = 1;
		/* The id of the idx-th session of the table, or of none. */
		TAILQ_FOREACH(s, &sessions, s_entry)
			if (s->s_has_id && idx-- == 0)
				break;
		if (s != NULL)
			memcpy(pe.pe_id, s->s_id, PROTO_ID_LEN);
		else
			pe.pe_id[0] = idx;
	}
	pe.pe_code_len = (uint32_t)len;
	memset(code, 'x', len);
	if (w->w_peer < 0)
		return;
	if (!(fl & 4)) {
		/* As sess_client.c sends it: one frame, code beside the struct. */
		memcpy(fz_buf, &(struct proto_hdr){ PROTO_VERSION, PROTO_EXEC,
		    PROTO_F_END, reqid, sizeof(pe) + len }, sizeof(struct proto_hdr));
		memcpy(fz_buf + sizeof(struct proto_hdr), &pe, sizeof(pe));
		memcpy(fz_buf + sizeof(struct proto_hdr) + sizeof(pe), code, len);
		fz_worker_note(w, fz_buf, sizeof(struct proto_hdr) + sizeof(pe) + len);
		fz_send(w->w_peer, fz_buf, sizeof(struct proto_hdr) + sizeof(pe) + len,
		    fz_conn_reader, w);
		fz_conn_reader(w);
		return;
	}
	/* Split although it fits (refused), maybe with a wrong END flag. */
	memcpy(fz_buf, &(struct proto_hdr){ PROTO_VERSION, PROTO_EXEC,
	    len ? 0 : PROTO_F_END, reqid, sizeof(pe) }, sizeof(struct proto_hdr));
	memcpy(fz_buf + sizeof(struct proto_hdr), &pe, sizeof(pe));
	fz_worker_note(w, fz_buf, sizeof(struct proto_hdr) + sizeof(pe));
	fz_send(w->w_peer, fz_buf, sizeof(struct proto_hdr) + sizeof(pe), fz_conn_reader, w);
	if (len > 0) {
		half = len / 2;
		if (half)
			(void)proto_send_data(w->w_peer, PROTO_STREAM_CODE, reqid, code,
			    half, 0);
		(void)proto_send_data(w->w_peer, PROTO_STREAM_CODE, reqid, code + half,
		    len - half, !(fl & 8));
	}
	fz_conn_reader(w);
}

/* A well-behaved child finishes its run: some output, then DONE (and a result). */
static void
fz_child_done(struct fz_child *ch, struct fz_in *in)
{
	uint8_t st = fz_u8(in), olen = fz_u8(in);
	struct proto_done d;
	static const char res[] = "{\"sum\": 30, \"x\": [1, 2.5, null, \"\\u00e9\"]}";
	uint8_t out[256];

	memset(out, 'o', olen);
	if (olen && ch->ch_out >= 0)
		(void)!write(ch->ch_out, out, olen);
	if ((st & 0x40) && ch->ch_err >= 0)
		(void)!write(ch->ch_err, "\xff\xfe err\n", 7);
	memset(&d, 0, sizeof(d));
	d.pd_status = 1 + (st & 7) % 5;	/* 0 OK, 1 MEMERR, 2 NO_MAIN, 3 NOT_JSON, 4 RESULT */
	if (d.pd_status == PROTO_D_RESULT)
		d.pd_res_len = (st & 0x80) ? 0 : sizeof(res) - 1;
	if (ch->ch_ctl >= 0) {
		struct proto_part part = { PROTO_STREAM_RESULT, res, d.pd_res_len };

		(void)proto_send_msg(ch->ch_ctl, PROTO_DONE, 0, &d, sizeof(d), &part, 1);
	}
	fz_ctl_reader(ch);
}

/* The child process dies: its descriptors close, its pidfd fires. */
static void
fz_child_exit(struct fz_child *ch)
{
	struct sess *s = fz_sess_of(ch);

	fz_close(&ch->ch_ctl);
	fz_close(&ch->ch_out);
	fz_close(&ch->ch_err);
	if (s != NULL && s->s_pidfd >= 0 && s->s_state != S_BURIED)
		sess_exited(s);
}

/*
 * Every session's deadline passes.  The fake pidfd refuses signals (EBADF),
 * so sess_timer would always go straight to the kill; with intr the SIGINT
 * of the time limit "was delivered" instead, as sess_timer does on success,
 * and the child keeps the floor in S_INTERRUPTED.
 */
static void
fz_timers(int intr)
{
	struct sess *s, *tmp;

	TAILQ_FOREACH_SAFE(s, &sessions, s_entry, tmp) {
		if (!s->s_deadline)
			continue;
		if (intr && s->s_state == S_RUNNING) {
			s->s_state = S_INTERRUPTED;
			s->s_deadline = s->s_deadline + (uint64_t)cfg.grace_ms * 1000000ull;
		} else
			sess_timer(s, s->s_deadline);
	}
}

static struct fz_child *
fz_pick_child(struct fz_in *in)
{
	if (fz.nch == 0) {
		(void)fz_u8(in);
		return NULL;
	}
	return &fz.ch[fz_u8(in) % fz.nch];
}

/* Steps every target shares; returns 0 for an op it does not know. */
enum fz_op {
	FZ_W_RAW, FZ_W_FRAME, FZ_W_BIG, FZ_W_READ, FZ_W_EXEC, FZ_W_CLOSE,
	FZ_Z_ANSWER, FZ_C_RAW, FZ_C_FRAME, FZ_C_BIG, FZ_C_READ, FZ_C_READY,
	FZ_C_DONE, FZ_C_OUT, FZ_C_ERR, FZ_C_DRAIN, FZ_C_CLOSE, FZ_C_EXIT,
	FZ_TIMERS
};

static void
fz_step(enum fz_op op, struct fz_in *in)
{
	struct fz_worker *w = &fz.w[0];
	struct fz_child *ch;
	struct sess *s;
	size_t n;
	uint8_t a;

	switch (op) {
	case FZ_W_RAW:
	case FZ_W_FRAME:
	case FZ_W_BIG:
		w = &fz.w[fz_u8(in) % FZ_WORKERS];
		n = op == FZ_W_BIG ? fz_make_big(in, fz_buf, sizeof(fz_buf)) :
		    fz_make_dgram(in, fz_buf, PROTO_MAX_PAYLOAD + 16, op == FZ_W_RAW);
		fz_worker_note(w, fz_buf, n);
		fz_send(w->w_peer, fz_buf, n, fz_conn_reader, w);
		break;
	case FZ_W_READ:
		fz_conn_reader(&fz.w[fz_u8(in) % FZ_WORKERS]);
		break;
	case FZ_W_EXEC:
		fz_worker_exec(&fz.w[fz_u8(in) % FZ_WORKERS], in);
		break;
	case FZ_W_CLOSE:
		/* The worker goes away (killed mid-request); the daemon sees EOF. */
		w = &fz.w[fz_u8(in) % FZ_WORKERS];
		fz_close(&w->w_peer);
		fz_conn_reader(w);
		break;
	case FZ_Z_ANSWER:
		fz_zygote_answer(!(fz_u8(in) & 0x10));
		break;
	case FZ_C_RAW:
	case FZ_C_FRAME:
	case FZ_C_BIG:
		if ((ch = fz_pick_child(in)) == NULL)
			break;
		n = op == FZ_C_BIG ? fz_make_big(in, fz_buf, sizeof(fz_buf)) :
		    fz_make_dgram(in, fz_buf, PROTO_MAX_PAYLOAD + 16, op == FZ_C_RAW);
		fz_send(ch->ch_ctl, fz_buf, n, fz_ctl_reader, ch);
		break;
	case FZ_C_READ:
		if ((ch = fz_pick_child(in)) != NULL)
			fz_ctl_reader(ch);
		break;
	case FZ_C_READY:
		if ((ch = fz_pick_child(in)) == NULL)
			break;
		if (ch->ch_ctl >= 0)
			(void)proto_send(ch->ch_ctl, PROTO_CHILD_READY, PROTO_F_END, 0, NULL,
			    0, NULL, 0);
		fz_ctl_reader(ch);
		break;
	case FZ_C_DONE:
		if ((ch = fz_pick_child(in)) != NULL)
			fz_child_done(ch, in);
		break;
	case FZ_C_OUT:
	case FZ_C_ERR:
		if ((ch = fz_pick_child(in)) == NULL)
			break;
		a = fz_u8(in);
		n = (size_t)(a & 0x7f) << 6;	/* up to 8 KiB a step */
		if (a & 0x80) {
			const uint8_t *p = fz_bytes(in, n, &n);
			memcpy(fz_buf, p, n);
		} else
			memset(fz_buf, 'y', n);
		if (n > 0) {
			int fd = op == FZ_C_OUT ? ch->ch_out : ch->ch_err;
			if (fd >= 0)
				(void)!write(fd, fz_buf, n);
		}
		break;
	case FZ_C_DRAIN:
		if ((ch = fz_pick_child(in)) != NULL && (s = fz_sess_of(ch)) != NULL) {
			sess_drain(s, EV_OUT);
			sess_drain(s, EV_ERR);
		}
		break;
	case FZ_C_CLOSE:
		if ((ch = fz_pick_child(in)) == NULL)
			break;
		a = fz_u8(in);
		if (a & 1)
			fz_close(&ch->ch_ctl);
		if (a & 2)
			fz_close(&ch->ch_out);
		if (a & 4)
			fz_close(&ch->ch_err);
		fz_ctl_reader(ch);
		if ((s = fz_sess_of(ch)) != NULL) {
			sess_drain(s, EV_OUT);
			sess_drain(s, EV_ERR);
		}
		break;
	case FZ_C_EXIT:
		if ((ch = fz_pick_child(in)) != NULL)
			fz_child_exit(ch);
		break;
	case FZ_TIMERS:
		fz_timers(fz_u8(in) & 1);
		break;
	}
	fz_turn_end();
}

#endif
