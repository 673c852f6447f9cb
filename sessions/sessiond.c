/*
 * pyexec-sessiond: the session daemon.  One single-threaded epoll loop owns
 * every session: its id, its child process, its queue, its timer and its
 * cgroup.  It speaks binary frames (proto.h) to FastCGI workers, to the zygote
 * and to session children, and never runs Python itself: the zygote is this
 * same binary re-executed with SESS_ZYGOTE_ARG, so no session child is ever
 * forked from an image that held the session table.
 *
 * Trust: frames from FastCGI workers are checked (a bad one closes that
 * connection); frames and bytes from a session child are hostile (a bad one
 * kills that child).  Neither brings the daemon down.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "sess.h"
#include "sess_cgroup.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) && ((tvar) = TAILQ_NEXT(var, field), 1);		\
	    (var) = (tvar))
#endif

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal	424
#endif

#define DRAIN_MAX		(1 << 20)	/* bytes read from a pipe per wakeup */
#define SPAWN_BACKOFF_MAX_MS	5000
#define START_TIMEOUT_NS	(30 * 1000000000ull)	/* fork to ready */
#define ZYGOTE_START_NS		(300 * 1000000000ull)	/* zygote start to ready */
/* A new session's child is not made to share the CPU with a fork at once. */
#define POOL_REFILL_DELAY_NS	(10 * 1000000ull)
/* Pool children warm up unless the pool ran short this recently. */
#define POOL_WARM_QUIET_NS	(250 * 1000000ull)
#define ZYGOTE_READ_MAX		64	/* frames read from the zygote per wakeup */

enum ev_kind {
	EV_LISTEN, EV_SIGNAL, EV_ZYGOTE, EV_CONN,
	EV_CTL, EV_OUT, EV_ERR, EV_PIDFD
};

struct evh {
	enum ev_kind	 eh_kind;
	void		*eh_obj;
};

struct obuf {
	uint8_t		*ob_buf;
	size_t		 ob_len, ob_cap;
	uint64_t	 ob_dropped;
};

struct conn;

/* One request for a session: code to run, and whom to answer. */
struct job {
	TAILQ_ENTRY(job) j_entry;
	struct conn	*j_conn;	/* NULL once the worker has gone */
	uint32_t	 j_reqid;
	uint8_t		 j_mode;
	uint8_t		*j_code;
	uint32_t	 j_len, j_got;
	uint64_t	 j_queued_ns;
};
TAILQ_HEAD(jobq, job);

enum sess_state {
	S_FORKING,	/* fork order sent to the zygote */
	S_STARTING,	/* forked, entering the sandbox */
	S_IDLE,
	S_RUNNING,
	S_INTERRUPTED,	/* past the time limit, SIGINT sent, in grace */
	S_DYING,	/* SIGKILL sent, waiting for the exit */
	S_BURIED	/* exited, its cgroup not yet removable */
};

/* A child process and everything made for it; a session once it has an id. */
struct sess {
	TAILQ_ENTRY(sess) s_entry;
	uint8_t		 s_id[PROTO_ID_LEN];
	int		 s_has_id;	/* a session (findable until S_DYING) */
	int		 s_oneshot;	/* script mode: ends after one run */
	int		 s_warm;	/* told to warm up before ready */
	int		 s_counted;	/* counts toward max_sessions */
	int		 s_frozen;	/* its cgroup frozen since its last run */
	int		 s_started;	/* the child said ready: it could run code */
	int		 s_early_ready;	/* it said so before FORKED named its pid */
	enum sess_state	 s_state;
	uint32_t	 s_serial;
	unsigned	 s_uid;		/* index into the uid range */
	pid_t		 s_pid;
	int		 s_pidfd, s_ctl, s_out, s_err;
	struct evh	 s_ev_ctl, s_ev_out, s_ev_err, s_ev_pid;
	struct cg	*s_cg;
	struct jobq	 s_queue;
	unsigned	 s_qlen;
	struct job	*s_job;		/* running */
	uint64_t	 s_deadline;	/* ns, 0: none */
	uint64_t	 s_run_ns;	/* when the running job started; 0: none */
	uint64_t	 s_born_ns, s_last_ns;
	uint64_t	 s_oom_base;	/* OOM kills seen at the end of the last run */
	struct obuf	 s_o, s_e, s_r;
	int		 s_result;	/* script: main() returned, result in s_r */
	int		 s_done_status;	/* set by DONE while its data arrives */
	uint32_t	 s_res_want;
	int		 s_kill_status;	/* what the running job gets when it dies */
	const char	*s_end_reason;
	unsigned	 s_nexec;
	unsigned	 s_buried_tries;
	int		 s_freed;
};
TAILQ_HEAD(sessq, sess);

struct conn {
	TAILQ_ENTRY(conn) c_entry;
	int		 c_fd;
	struct evh	 c_ev;
	struct job	*c_recv;	/* a job whose code is arriving */
	struct job	*c_inflight;	/* a job queued or running */
	struct proto_exec c_pending;	/* the EXEC of c_recv */
	int		 c_freed;
};
TAILQ_HEAD(connq, conn);

static struct cfg	 cfg;
static int		 ep = -1;
static int		 self_exe = -1;
static int		 listen_fd = -1;
static int		 sig_fd = -1;
static struct evh	 ev_listen = { EV_LISTEN, NULL };
static struct evh	 ev_signal = { EV_SIGNAL, NULL };
static struct sessq	 sessions = TAILQ_HEAD_INITIALIZER(sessions);
static struct sessq	 dead_sessions = TAILQ_HEAD_INITIALIZER(dead_sessions);
static struct connq	 conns = TAILQ_HEAD_INITIALIZER(conns);
static struct connq	 dead_conns = TAILQ_HEAD_INITIALIZER(dead_conns);
static unsigned		 n_counted;	/* sessions + one-shot runs */
static unsigned		 n_pool;	/* unassigned children, any state */
static uint32_t		 next_serial = 1;
static uint8_t		*uid_used;
static unsigned		 uid_cursor;
static gid_t		 sock_gid;
static int		 stopping;
static uint64_t		 spawn_retry_ns;	/* pool refill paused until then */
static uint64_t		 pool_hold_ns;	/* no refill before then: a session just started */
static uint64_t		 pool_short_ns;	/* last time a new session found no ready child */
static unsigned		 spawn_backoff_ms;
static char		 sandbox_desc[256] = "unknown";
/*
 * Socket send buffers (SO_SNDBUFFORCE: we are root) larger than the largest
 * message, so that a send never finds them full: a reply to a worker is at
 * most three streams of output_limit, code to a child at most max_body.
 * A peer that does not read is then broken, and is dropped.
 */
static int		 conn_sndbuf, ctl_sndbuf;

static struct {
	pid_t		 pid;
	int		 fd;
	int		 ready;
	struct evh	 ev;
	uint64_t	 restart_ns;	/* 0: not waiting to restart */
	unsigned	 backoff_ms;
	uint64_t	 start_ns;	/* when it was started */
} zyg = { -1, -1, 0, { EV_ZYGOTE, NULL }, 0, 0, 0 };

static struct proto_metrics metrics;
static const uint64_t lat_bounds_us[PROTO_HIST_BUCKETS] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
	1000000, 2500000
};

static struct proto_msg	 rx;	/* one receive buffer: the loop is single-threaded */

static void	sess_kill(struct sess *, int, const char *);
static void	sess_dispatch(struct sess *);
static void	sess_ready(struct sess *);
static void	conn_close(struct conn *);
static void	pool_fill(uint64_t);

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void
ep_add(int fd, uint32_t events, struct evh *h)
{
	struct epoll_event e;

	e.events = events;
	e.data.ptr = h;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == -1)
		fatal("epoll_ctl add fd=%d", fd);
}

static void
ep_del(int fd)
{
	if (fd >= 0)
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		ep_del(*fd);
		close(*fd);
		*fd = -1;
	}
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int
pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static const char *
sid_str(const struct sess *s, char buf[PROTO_ID_STRLEN + 1])
{
	if (!s->s_has_id && !s->s_oneshot)
		return "-";
	if (s->s_oneshot)
		return "script";
	proto_id_format(s->s_id, buf);
	return buf;
}

/* ---- output buffers ---------------------------------------------------- */

static void
obuf_reset(struct obuf *b)
{
	/* Keep small buffers for the next run; give big ones back. */
	if (b->ob_cap > 65536) {
		free(b->ob_buf);
		b->ob_buf = NULL;
		b->ob_cap = 0;
	}
	b->ob_len = 0;
	b->ob_dropped = 0;
}

static void
obuf_free(struct obuf *b)
{
	free(b->ob_buf);
	memset(b, 0, sizeof(*b));
}

/* Appends what fits under limit and counts the rest as dropped. */
static void
obuf_add(struct obuf *b, const uint8_t *p, size_t n, size_t limit)
{
	size_t room = b->ob_len < limit ? limit - b->ob_len : 0;
	size_t take = n < room ? n : room;

	if (take > 0 && b->ob_len + take > b->ob_cap) {
		size_t cap = b->ob_cap ? b->ob_cap : 4096;
		uint8_t *nb;

		while (cap < b->ob_len + take)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		if ((nb = realloc(b->ob_buf, cap)) == NULL) {
			log_err("func=%s realloc of %zu bytes failed", __func__, cap);
			take = 0;
		} else {
			b->ob_buf = nb;
			b->ob_cap = cap;
		}
	}
	if (take > 0) {
		memcpy(b->ob_buf + b->ob_len, p, take);
		b->ob_len += take;
	}
	b->ob_dropped += n - take;
}

/* ---- replies to FastCGI workers ---------------------------------------- */

/* Counts an outcome; s: the session that ran it; timed: dur_us is its duration. */
static void
metrics_exec(int status, const struct sess *s, int timed, uint64_t dur_us)
{
	int i;

	if (status > 0 && status < PROTO_S_MAX)
		metrics.pm_exec[status]++;
	if (status == PROTO_S_OK && s != NULL && s->s_e.ob_len + s->s_e.ob_dropped > 0)
		metrics.pm_exec_stderr++;
	if (timed) {
		for (i = 0; i < PROTO_HIST_BUCKETS; i++)
			if (dur_us <= lat_bounds_us[i])
				metrics.pm_lat_bucket[i]++;
		metrics.pm_lat_count++;
		metrics.pm_lat_sum_us += dur_us;
	}
}

static void
conn_send_status(struct conn *c, uint32_t reqid, int status)
{
	struct proto_stat st;

	memset(&st, 0, sizeof(st));
	st.pst_status = (uint8_t)status;
	if (proto_send(c->c_fd, PROTO_STATUS, PROTO_F_END, reqid, &st, sizeof(st),
	    NULL, 0) == -1) {
		log_warn("func=%s event=conn_drop errno=\"%s\"", __func__, strerror(errno));
		conn_close(c);
	}
}

/*
 * Answers job j of session s (s may be NULL for errors before any session)
 * with status; with PROTO_S_OK the captured streams go along.  ran says j
 * was executing (its duration is then measured).  Frees j.
 */
static void
job_reply(struct job *j, struct sess *s, int status, int ran)
{
	struct conn *c = j->j_conn;
	struct proto_result r;
	struct proto_part parts[3];
	int ok = status == PROTO_S_OK, timed = ran && s->s_run_ns != 0;

	if (c == NULL && !ran)
		goto done;	/* cancelled before it ran: nobody asked any more */
	/*
	 * A run is timed from its RUN's sending (s_run_ns), once.  One whose
	 * RUN could not be sent (sess_dispatch) has no start of its own: the
	 * time left is the last run's, or 0, and would be a false duration.
	 */
	metrics_exec(status, ran ? s : NULL, timed,
	    timed ? (now_ns() - s->s_run_ns) / 1000 : 0);
	if (ran)
		s->s_run_ns = 0;
	if (c == NULL)
		goto done;
	memset(&r, 0, sizeof(r));
	r.pr_status = (uint8_t)status;
	if (s != NULL && s->s_has_id && !s->s_oneshot) {
		memcpy(r.pr_id, s->s_id, PROTO_ID_LEN);
	}
	if (ok && s != NULL) {
		r.pr_out_len = (uint32_t)s->s_o.ob_len;
		r.pr_err_len = (uint32_t)s->s_e.ob_len;
		r.pr_out_dropped = (uint32_t)(s->s_o.ob_dropped > UINT32_MAX ?
		    UINT32_MAX : s->s_o.ob_dropped);
		r.pr_err_dropped = (uint32_t)(s->s_e.ob_dropped > UINT32_MAX ?
		    UINT32_MAX : s->s_e.ob_dropped);
		if (s->s_result) {
			r.pr_has_result = 1;
			r.pr_res_len = (uint32_t)s->s_r.ob_len;
		}
	}
	memset(parts, 0, sizeof(parts));
	parts[0].pp_stream = PROTO_STREAM_OUT;
	parts[1].pp_stream = PROTO_STREAM_ERR;
	parts[2].pp_stream = PROTO_STREAM_RESULT;
	if (ok && s != NULL) {
		parts[0].pp_buf = s->s_o.ob_buf;
		parts[0].pp_len = r.pr_out_len;
		parts[1].pp_buf = s->s_e.ob_buf;
		parts[1].pp_len = r.pr_err_len;
		parts[2].pp_buf = s->s_r.ob_buf;
		parts[2].pp_len = r.pr_res_len;
	}
	if (proto_send_msg(c->c_fd, PROTO_RESULT, j->j_reqid, &r, sizeof(r), parts, 3) == -1)
		goto fail;
	c->c_inflight = NULL;
	goto done;
fail:
	/* The worker reads every reply at once; one that does not is broken. */
	log_warn("func=%s event=conn_drop errno=\"%s\"", __func__, strerror(errno));
	c->c_inflight = NULL;
	conn_close(c);
done:
	free(j->j_code);
	free(j);
}

/* ---- uids -------------------------------------------------------------- */

static int
uid_alloc(unsigned *out)
{
	unsigned i, k;

	for (i = 0; i < cfg.uid_count; i++) {
		k = (uid_cursor + i) % cfg.uid_count;
		if (!uid_used[k]) {
			uid_used[k] = 1;
			/* Round robin: a uid is reused as late as possible. */
			uid_cursor = (k + 1) % cfg.uid_count;
			*out = k;
			return 0;
		}
	}
	return -1;
}

/* ---- sessions ---------------------------------------------------------- */

static struct sess *
sess_find(const uint8_t id[PROTO_ID_LEN])
{
	struct sess *s;

	TAILQ_FOREACH(s, &sessions, s_entry)
		if (s->s_has_id && s->s_state < S_DYING &&
		    memcmp(s->s_id, id, PROTO_ID_LEN) == 0)
			return s;
	return NULL;
}

/*
 * Asks the zygote for a new child.  A child for the pool warms up before it
 * says ready, while the pool keeps up with demand; when new sessions have
 * lately found no ready child, the next ones are needed at once and skip it,
 * as does a child made for a waiting request.  Returns the new (S_FORKING)
 * sess or NULL.
 */
static struct sess *
sess_spawn(int pooled)
{
	int ctl[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int fds[3 + CG_MAX_PROCS_FDS], nfds = 3, sz = ctl_sndbuf;
	struct proto_fork pf;
	struct sess *s;

	if (zyg.fd < 0) {
		errno = ESRCH;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	TAILQ_INIT(&s->s_queue);
	s->s_pidfd = s->s_ctl = s->s_out = s->s_err = -1;
	s->s_pid = -1;
	s->s_serial = next_serial++;
	s->s_born_ns = s->s_last_ns = now_ns();
	if (uid_alloc(&s->s_uid) == -1) {
		log_err("func=%s no free uid in the range", __func__);
		free(s);
		return NULL;
	}
	if ((s->s_cg = cg_create(s->s_serial)) == NULL)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1 ||
	    pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
		log_err("func=%s socketpair/pipe errno=\"%s\"", __func__, strerror(errno));
		goto fail;
	}
	if (set_nonblock(ctl[0]) == -1 || set_nonblock(out[0]) == -1 ||
	    set_nonblock(err[0]) == -1)
		goto fail;
	(void)setsockopt(ctl[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	fds[0] = ctl[1];
	fds[1] = out[1];
	fds[2] = err[1];
	nfds += cg_procs_fds(s->s_cg, fds + 3);
	memset(&pf, 0, sizeof(pf));
	pf.pf_serial = s->s_serial;
	pf.pf_uid = cfg.uid_base + s->s_uid;
	pf.pf_ncg = nfds - 3;
	s->s_warm = pooled && now_ns() - pool_short_ns > POOL_WARM_QUIET_NS;
	pf.pf_warm = (uint32_t)s->s_warm;
	if (proto_send(zyg.fd, PROTO_FORK, 0, 0, &pf, sizeof(pf), fds, nfds) == -1) {
		log_err("func=%s fork order errno=\"%s\"", __func__, strerror(errno));
		goto fail;
	}
	/* The child's ends now travel to the zygote; ours are not needed. */
	close(ctl[1]);
	close(out[1]);
	close(err[1]);
	cg_procs_close(s->s_cg);
	s->s_ctl = ctl[0];
	s->s_out = out[0];
	s->s_err = err[0];
	s->s_ev_ctl = (struct evh){ EV_CTL, s };
	s->s_ev_out = (struct evh){ EV_OUT, s };
	s->s_ev_err = (struct evh){ EV_ERR, s };
	s->s_ev_pid = (struct evh){ EV_PIDFD, s };
	ep_add(s->s_ctl, EPOLLIN, &s->s_ev_ctl);
	ep_add(s->s_out, EPOLLIN, &s->s_ev_out);
	ep_add(s->s_err, EPOLLIN, &s->s_ev_err);
	s->s_state = S_FORKING;
	s->s_deadline = s->s_born_ns + START_TIMEOUT_NS;
	TAILQ_INSERT_TAIL(&sessions, s, s_entry);
	return s;
fail:
	for (nfds = 0; nfds < 2; nfds++) {
		if (ctl[nfds] >= 0) close(ctl[nfds]);
		if (out[nfds] >= 0) close(out[nfds]);
		if (err[nfds] >= 0) close(err[nfds]);
	}
	if (s->s_cg != NULL) {
		cg_kill_all(s->s_cg);
		(void)cg_destroy(s->s_cg);
	}
	uid_used[s->s_uid] = 0;
	free(s);
	return NULL;
}

/* A warmed pool child that is ready, else any ready one, else one still
 * starting, else NULL. */
static struct sess *
pool_take(void)
{
	struct sess *s, *idle = NULL, *starting = NULL;

	TAILQ_FOREACH(s, &sessions, s_entry) {
		if (s->s_has_id || s->s_oneshot || s->s_state > S_IDLE)
			continue;
		if (s->s_state == S_IDLE && s->s_warm)
			return s;
		if (s->s_state == S_IDLE && idle == NULL)
			idle = s;
		else if (s->s_state != S_IDLE && starting == NULL)
			starting = s;
	}
	return idle != NULL ? idle : starting;
}

static void
pool_fill(uint64_t now)
{
	struct sess *s;

	if (stopping || zyg.fd < 0 || now < spawn_retry_ns || now < pool_hold_ns)
		return;
	while (n_pool < cfg.pool_size) {
		if ((s = sess_spawn(1)) == NULL) {
			spawn_backoff_ms = spawn_backoff_ms ? spawn_backoff_ms * 2 : 100;
			if (spawn_backoff_ms > SPAWN_BACKOFF_MAX_MS)
				spawn_backoff_ms = SPAWN_BACKOFF_MAX_MS;
			spawn_retry_ns = now + spawn_backoff_ms * 1000000ull;
			return;
		}
		n_pool++;
	}
}

static void
sess_set_idle_deadline(struct sess *s)
{
	s->s_deadline = s->s_has_id ?
	    s->s_last_ns + (uint64_t)cfg.idle_timeout_s * 1000000000ull : 0;
}

/* Sends the next queued job to the child, if it is free. */
static void
sess_dispatch(struct sess *s)
{
	char sid[PROTO_ID_STRLEN + 1];
	struct proto_run run;
	struct proto_part part;
	struct job *j;
	uint64_t now;

	if (s->s_state != S_IDLE)
		return;
	/* A queued job whose worker has gone is not run: nobody would see it. */
	while ((j = TAILQ_FIRST(&s->s_queue)) != NULL && j->j_conn == NULL) {
		TAILQ_REMOVE(&s->s_queue, j, j_entry);
		s->s_qlen--;
		job_reply(j, s, PROTO_S_INTERNAL, 0);
	}
	if (j == NULL)
		return;
	TAILQ_REMOVE(&s->s_queue, j, j_entry);
	s->s_qlen--;
	now = now_ns();
	metrics.pm_queue_wait_count++;
	metrics.pm_queue_wait_sum_us += (now - j->j_queued_ns) / 1000;
	obuf_reset(&s->s_o);
	obuf_reset(&s->s_e);
	obuf_reset(&s->s_r);
	s->s_result = 0;
	s->s_done_status = 0;
	s->s_job = j;
	if (s->s_frozen) {
		if (cg_freeze(s->s_cg, 0) == -1) {
			/* Still frozen, the run would only meet its time limit. */
			log_err("func=%s sid=%s event=thaw_failed errno=\"%s\"", __func__,
			    sid_str(s, sid), strerror(errno));
			s->s_state = S_RUNNING;
			sess_kill(s, PROTO_S_INTERNAL, "thaw_failed");
			return;
		}
		s->s_frozen = 0;
	}
	memset(&run, 0, sizeof(run));
	run.prn_mode = j->j_mode;
	run.prn_code_len = j->j_len;
	part.pp_stream = PROTO_STREAM_CODE;
	part.pp_buf = j->j_code;
	part.pp_len = j->j_len;
	if (proto_send_msg(s->s_ctl, PROTO_RUN, j->j_reqid, &run, sizeof(run), &part, 1) == -1) {
		log_warn("func=%s sid=- event=child_unreachable errno=\"%s\"", __func__,
		    strerror(errno));
		s->s_state = S_RUNNING;
		sess_kill(s, PROTO_S_TERMINATED, "unreachable");
		return;
	}
	/* The limit counts from here: queue time is not execution time. */
	s->s_state = S_RUNNING;
	s->s_run_ns = now_ns();
	s->s_deadline = s->s_run_ns + (uint64_t)cfg.time_limit_ms * 1000000ull;
	s->s_nexec++;
}

/* Ends the child: SIGKILL now, resources when its exit is seen. */
static void
sess_kill(struct sess *s, int status_for_job, const char *reason)
{
	if (s->s_state >= S_DYING)
		return;
	s->s_kill_status = status_for_job;
	s->s_end_reason = reason;
	s->s_state = S_DYING;	/* no longer findable: later requests get 404 */
	/*
	 * Its exit is seen through the pidfd.  Before FORKED has brought one,
	 * the fork order's deadline stays: a zygote that never answers is
	 * stuck (sess_timer), and the zygote's end ends the session.
	 */
	if (s->s_pidfd >= 0)
		s->s_deadline = 0;
	if (s->s_pidfd >= 0 && pidfd_signal(s->s_pidfd, SIGKILL) == -1 && errno != ESRCH)
		log_err("func=%s pidfd_send_signal errno=\"%s\"", __func__, strerror(errno));
	if (s->s_cg != NULL)
		cg_kill_all(s->s_cg);
}

static void
sess_release_fds(struct sess *s)
{
	close_fd(&s->s_ctl);
	close_fd(&s->s_out);
	close_fd(&s->s_err);
	close_fd(&s->s_pidfd);
}

static void
sess_free(struct sess *s)
{
	TAILQ_REMOVE(&sessions, s, s_entry);
	uid_used[s->s_uid] = 0;
	obuf_free(&s->s_o);
	obuf_free(&s->s_e);
	obuf_free(&s->s_r);
	s->s_freed = 1;
	TAILQ_INSERT_TAIL(&dead_sessions, s, s_entry);
}

/* Tries to remove the cgroup; keeps the sess as S_BURIED until it can. */
static void
sess_bury(struct sess *s, uint64_t now)
{
	if (cg_destroy(s->s_cg) == 0) {
		s->s_cg = NULL;
		sess_free(s);
		return;
	}
	if (++s->s_buried_tries > 100) {
		log_err("func=%s serial=%u event=cgroup_left errno=\"%s\"", __func__,
		    s->s_serial, strerror(errno));
		cg_abandon(s->s_cg);
		s->s_cg = NULL;
		sess_free(s);
		return;
	}
	cg_kill_all(s->s_cg);
	s->s_state = S_BURIED;
	s->s_deadline = now + 20000000ull;
}

/*
 * The child has exited (its pidfd fired), or never got a pid.  As pid 1 of its
 * PID namespace, its exit took every other process of the session with it.
 * Answers whoever waits, then gives back every resource made for it.
 */
static void
sess_exited(struct sess *s)
{
	char sid[PROTO_ID_STRLEN + 1];
	/*
	 * Not the state: a kill sets S_DYING, above S_IDLE, whether or not the
	 * child had ever said ready.
	 */
	int started = s->s_started, status;
	uint64_t now = now_ns();
	struct job *j;

	if (s->s_job != NULL) {
		/* The kernel's OOM kill is read from the cgroup, whoever noticed first. */
		if (cg_oom_kills(s->s_cg) > s->s_oom_base) {
			status = PROTO_S_MEMORY;
			s->s_end_reason = "memory";
		} else if (s->s_state == S_DYING)
			status = s->s_kill_status;
		else
			status = PROTO_S_TERMINATED;
		j = s->s_job;
		s->s_job = NULL;
		job_reply(j, s, status, 1);
	}
	while ((j = TAILQ_FIRST(&s->s_queue)) != NULL) {
		TAILQ_REMOVE(&s->s_queue, j, j_entry);
		/* A session that never started could not be created: that is ours. */
		job_reply(j, s, started ? PROTO_S_NOT_FOUND : PROTO_S_INTERNAL, 0);
	}
	s->s_qlen = 0;
	/* Given to a request (counted), or still the pool's: one count each. */
	if (s->s_counted) {
		n_counted--;
		s->s_counted = 0;
	} else if (!s->s_has_id && !s->s_oneshot)
		n_pool--;
	if (s->s_has_id)
		log_info("event=session_end sid=%s reason=%s execs=%u lifetime_ms=%llu",
		    sid_str(s, sid), s->s_end_reason ? s->s_end_reason : "exited",
		    s->s_nexec, (unsigned long long)((now - s->s_born_ns) / 1000000));
	if (!started && !stopping)
		log_warn("event=child_lost serial=%u reason=%s", s->s_serial,
		    s->s_end_reason ? s->s_end_reason : "exited");
	sess_release_fds(s);
	s->s_state = S_BURIED;
	s->s_deadline = 0;
	sess_bury(s, now);
}

/* Takes everything the child wrote before it reported DONE. */
static void
sess_drain(struct sess *s, int which)
{
	uint8_t buf[65536];
	int *fd = which == EV_OUT ? &s->s_out : &s->s_err;
	struct obuf *b = which == EV_OUT ? &s->s_o : &s->s_e;
	int collect = s->s_state == S_RUNNING || s->s_state == S_INTERRUPTED;
	size_t total = 0;
	ssize_t n;

	while (*fd >= 0 && total < DRAIN_MAX) {
		n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			total += n;
			if (collect)
				obuf_add(b, buf, n, cfg.output_limit);
			/* A short read emptied the pipe: whatever comes later wakes us. */
			if ((size_t)n < sizeof(buf))
				break;
			continue;
		}
		if (n == 0)
			close_fd(fd);	/* every writer is gone */
		else if (errno != EAGAIN && errno != EINTR)
			close_fd(fd);
		break;
	}
}

static void
sess_finish_run(struct sess *s)
{
	struct job *j = s->s_job;
	int status, interrupted = s->s_state == S_INTERRUPTED, end = 0;
	const char *reason = NULL;
	char sid[PROTO_ID_STRLEN + 1];
	uint64_t oom;

	sess_drain(s, EV_OUT);
	sess_drain(s, EV_ERR);
	switch (s->s_done_status) {
	case PROTO_D_NO_MAIN:
		status = PROTO_S_NO_MAIN;
		break;
	case PROTO_D_NOT_JSON:
		status = PROTO_S_NOT_JSON;
		break;
	case PROTO_D_MEMERR:
		status = PROTO_S_MEMORY;
		break;
	default:
		status = PROTO_S_OK;
		break;
	}
	oom = cg_oom_kills(s->s_cg);
	if (oom > s->s_oom_base)
		status = PROTO_S_MEMORY;	/* a process or thread of it was OOM-killed */
	s->s_oom_base = oom;
	if (interrupted)
		status = PROTO_S_TIMEOUT;
	if (status == PROTO_S_MEMORY) {
		end = 1;
		reason = "memory";
	} else if (interrupted && cg_tasks(s->s_cg) > 1) {
		/* Threads still running after an interrupt: the code that overran goes. */
		end = 1;
		reason = "timeout_threads";
	} else if (s->s_oneshot) {
		end = 1;
		reason = "script_done";
	} else if (cg_tasks(s->s_cg) > 1 && cg_freeze(s->s_cg, 1) == 0) {
		/*
		 * Threads or processes the code left running stop with it until
		 * the next run: outside a run nothing of a session gets the CPU,
		 * and nothing keeps writing into pipes nobody collects.
		 */
		s->s_frozen = 1;
		log_debug("event=session_frozen sid=%s", sid_str(s, sid));
	}
	s->s_job = NULL;
	job_reply(j, s, status, 1);
	s->s_state = S_IDLE;
	s->s_last_ns = now_ns();
	sess_set_idle_deadline(s);
	if (end) {
		sess_kill(s, PROTO_S_TERMINATED, reason);
		return;
	}
	sess_dispatch(s);
}

/* A frame from a session child: hostile input, checked strictly. */
static void
sess_ctl_frame(struct sess *s, struct proto_msg *m)
{
	const struct proto_hdr *h = &m->pm_hdr;
	char why[256], q[300];
	struct proto_done d;
	int whole;

	if (m->pm_nfds > 0)
		goto bad;	/* children never send descriptors */
	switch (h->ph_type) {
	case PROTO_CHILD_READY:
		if (h->ph_len != 0)
			goto bad;
		if (s->s_state == S_FORKING && !s->s_early_ready) {
			/*
			 * The zygote writes the child's go byte before it sends
			 * FORKED, and the two links are read in turns: a child
			 * can say ready before we know its pid.  Kept until
			 * FORKED, which makes it ready (zygote_frame).
			 */
			s->s_early_ready = 1;
			return;
		}
		if (s->s_state != S_STARTING)
			goto bad;
		sess_ready(s);
		return;
	case PROTO_CHILD_FAIL:
		/* Before FORKED too, as CHILD_READY; ended at once, pid or not. */
		if ((s->s_state != S_STARTING && s->s_state != S_FORKING) ||
		    s->s_early_ready)
			goto bad;
		snprintf(why, sizeof(why), "%.*s", (int)(h->ph_len < 200 ? h->ph_len : 200),
		    (const char *)m->pm_payload);
		log_err("event=sandbox_failed serial=%u why=%s", s->s_serial,
		    log_quote(q, sizeof(q), why));
		spawn_retry_ns = now_ns() + (spawn_backoff_ms = spawn_backoff_ms ?
		    (spawn_backoff_ms * 2 > SPAWN_BACKOFF_MAX_MS ? SPAWN_BACKOFF_MAX_MS :
		    spawn_backoff_ms * 2) : 100) * 1000000ull;
		sess_kill(s, PROTO_S_INTERNAL, "setup_failed");
		return;
	case PROTO_DONE:
		if ((s->s_state != S_RUNNING && s->s_state != S_INTERRUPTED) ||
		    s->s_done_status != 0 || h->ph_len < sizeof(d))
			goto bad;
		memcpy(&d, m->pm_payload, sizeof(d));
		/* Only script mode has a result, and the child keeps it to the limit. */
		if (d.pd_status < PROTO_D_OK || d.pd_status > PROTO_D_RESULT ||
		    (d.pd_status != PROTO_D_RESULT && d.pd_res_len != 0) ||
		    (d.pd_status == PROTO_D_RESULT && (s->s_job->j_mode != PROTO_MODE_SCRIPT ||
		    d.pd_res_len > cfg.output_limit)) ||
		    (whole = proto_msg_whole(m, sizeof(d), d.pd_res_len)) == -1)
			goto bad;
		s->s_done_status = d.pd_status;
		if (d.pd_status == PROTO_D_RESULT) {
			s->s_result = 1;
			s->s_res_want = d.pd_res_len;
			if (!whole)
				return;	/* the JSON follows as DATA */
			obuf_add(&s->s_r, m->pm_payload + sizeof(d), d.pd_res_len,
			    cfg.output_limit);
		}
		sess_finish_run(s);
		return;
	case PROTO_DATA:
		if ((h->ph_flags & PROTO_F_STREAM_MASK) != PROTO_STREAM_RESULT ||
		    s->s_done_status != PROTO_D_RESULT || !s->s_result ||
		    s->s_r.ob_len + h->ph_len > s->s_res_want)
			goto bad;
		obuf_add(&s->s_r, m->pm_payload, h->ph_len, cfg.output_limit);
		if (h->ph_flags & PROTO_F_END) {
			if (s->s_r.ob_len != s->s_res_want)
				goto bad;
			sess_finish_run(s);
		}
		return;
	default:
		goto bad;
	}
bad:
	proto_msg_close_fds(m);
	log_warn("event=child_protocol_violation serial=%u type=%u", s->s_serial,
	    h->ph_type);
	sess_kill(s, PROTO_S_TERMINATED, "protocol");
}

/* The child said ready (now, or before FORKED): its session can run code. */
static void
sess_ready(struct sess *s)
{
	/*
	 * What a warming child printed is in the pipes before it says
	 * ready: read and dropped now, never taken for a run's output.
	 */
	sess_drain(s, EV_OUT);
	sess_drain(s, EV_ERR);
	s->s_early_ready = 0;
	s->s_started = 1;
	s->s_state = S_IDLE;
	s->s_last_ns = now_ns();
	sess_set_idle_deadline(s);
	spawn_backoff_ms = 0;
	sess_dispatch(s);
}

/*
 * The epoll set is level-triggered: one frame per wake-up, and a socket with
 * more queued is reported again.  (Reading on to EAGAIN would cost a system
 * call per message, in the daemon's one thread.)
 */
static void
sess_ctl_readable(struct sess *s)
{
	int r;

	r = proto_recv(s->s_ctl, &rx);
	if (r == 1 && s->s_state >= S_DYING) {
		proto_msg_close_fds(&rx);	/* killed: what it said no longer counts */
		return;
	}
	if (r == 1) {
		sess_ctl_frame(s, &rx);
		return;
	}
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	/* End of stream or a malformed frame: the child is gone or hostile. */
	close_fd(&s->s_ctl);
	sess_kill(s, PROTO_S_TERMINATED, r == 0 ? "closed" : "protocol");
}

static void
sess_timer(struct sess *s, uint64_t now)
{
	char sid[PROTO_ID_STRLEN + 1];

	switch (s->s_state) {
	case S_RUNNING:
		/* As Ctrl-C would: a Python loop or sleep stops, the session lives. */
		s->s_state = S_INTERRUPTED;
		s->s_deadline = now + (uint64_t)cfg.grace_ms * 1000000ull;
		if (pidfd_signal(s->s_pidfd, SIGINT) == -1)
			sess_kill(s, PROTO_S_TIMEOUT, "timeout");
		break;
	case S_INTERRUPTED:
		sess_kill(s, PROTO_S_TIMEOUT, "timeout");
		break;
	case S_IDLE:
		if (s->s_has_id && TAILQ_EMPTY(&s->s_queue)) {
			log_debug("event=session_idle sid=%s", sid_str(s, sid));
			sess_kill(s, PROTO_S_TERMINATED, "idle");
		} else
			s->s_deadline = 0;
		break;
	case S_DYING:
		if (s->s_pidfd >= 0) {
			s->s_deadline = 0;
			break;
		}
		/* Killed before its pid came: the fork order is still unanswered. */
		/* FALLTHROUGH */
	case S_FORKING:
		/*
		 * Orders sent while the zygote starts wait for its start (the
		 * interpreter, the preloaded modules, the warm-up: tens of
		 * seconds on a slow or busy machine), up to ZYGOTE_START_NS.
		 */
		if (!zyg.ready && zyg.pid > 0 && now < zyg.start_ns + ZYGOTE_START_NS) {
			s->s_deadline = zyg.start_ns + ZYGOTE_START_NS;
			break;
		}
		/*
		 * The zygote answers fork orders at once; one that does not is
		 * stuck.  Its end (zygote_down) ends the sessions it left.
		 */
		log_err("event=zygote_stuck pid=%d ready=%d", (int)zyg.pid, zyg.ready);
		if (zyg.pid > 0)
			kill(zyg.pid, SIGKILL);
		s->s_deadline = 0;
		break;
	case S_STARTING:
		sess_kill(s, PROTO_S_INTERNAL, "start_timeout");
		break;
	case S_BURIED:
		sess_bury(s, now);
		break;
	}
}

/* ---- the zygote -------------------------------------------------------- */

static void
zygote_down(const char *why)
{
	struct sess *s, *tmp;

	if (zyg.fd < 0)
		return;
	if (stopping)
		log_info("event=zygote_stopped pid=%d", (int)zyg.pid);
	else
		log_err("event=zygote_down pid=%d why=%s", (int)zyg.pid, why);
	/*
	 * Killed before its link is closed: a zygote that sees the link end
	 * kills every child it forked (zygote_orphaned), and the sessions
	 * that are running must outlive it.
	 */
	if (zyg.pid > 0)
		kill(zyg.pid, SIGKILL);	/* reaped through SIGCHLD */
	close_fd(&zyg.fd);
	zyg.ready = 0;
	/*
	 * Fork orders it had not answered are lost, those of sessions
	 * already killed too: without a pid they have no pidfd whose exit
	 * would end them.  A child of theirs, if any, dies with its cgroup
	 * (sess_kill, sess_bury), or at the end of its control socket,
	 * closed here; one still waiting for its go byte, when the dead
	 * zygote's end of that pipe closes.
	 */
	TAILQ_FOREACH_SAFE(s, &sessions, s_entry, tmp)
		if (s->s_state == S_FORKING ||
		    (s->s_state == S_DYING && s->s_pidfd < 0)) {
			if (s->s_end_reason == NULL)
				s->s_end_reason = "zygote_down";
			sess_exited(s);
		}
	if (!stopping) {
		zyg.backoff_ms = zyg.backoff_ms ? zyg.backoff_ms * 2 : 100;
		if (zyg.backoff_ms > SPAWN_BACKOFF_MAX_MS)
			zyg.backoff_ms = SPAWN_BACKOFF_MAX_MS;
		zyg.restart_ns = now_ns() + zyg.backoff_ms * 1000000ull;
	}
}

static void
zygote_start(void)
{
	static char *const zargv[] = { "pyexec-sessiond", SESS_ZYGOTE_ARG, NULL };
	/* A fixed environment: nothing of the daemon's reaches user code. */
	char *zenv[12], coretype[64], l2[64];
	int sv[2], n = 0;
	const char *v;
	sigset_t none;
	pid_t pid;

	zenv[n++] = "PATH=/usr/bin:/bin";
	zenv[n++] = "LANG=C.UTF-8";
	zenv[n++] = "HOME=/sandbox";
	/* Math libraries start no threads of their own: one per session is enough. */
	zenv[n++] = "OPENBLAS_NUM_THREADS=1";
	zenv[n++] = "OMP_NUM_THREADS=1";
	zenv[n++] = "MKL_NUM_THREADS=1";
	zenv[n++] = "NUMEXPR_NUM_THREADS=1";
	/* Kept: on some CPUs OpenBLAS computes wrong results without them. */
	if ((v = getenv("OPENBLAS_CORETYPE")) != NULL && strlen(v) < 32) {
		snprintf(coretype, sizeof(coretype), "OPENBLAS_CORETYPE=%s", v);
		zenv[n++] = coretype;
	}
	if ((v = getenv("OPENBLAS_L2_SIZE")) != NULL && strlen(v) < 32) {
		snprintf(l2, sizeof(l2), "OPENBLAS_L2_SIZE=%s", v);
		zenv[n++] = l2;
	}
	zenv[n] = NULL;

	zyg.restart_ns = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_err("func=%s socketpair errno=\"%s\"", __func__, strerror(errno));
		zyg.restart_ns = now_ns() + 1000000000ull;
		return;
	}
	if ((pid = fork()) == -1) {
		log_err("func=%s fork errno=\"%s\"", __func__, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		zyg.restart_ns = now_ns() + 1000000000ull;
		return;
	}
	if (pid == 0) {
		/*
		 * Only the link to the daemon and the standard streams go
		 * across, and no inherited signal disposition: a SIGINT ignored
		 * by whoever started us would make Python keep ignoring it, and
		 * the time limit's interrupt would never reach user code.
		 */
		int sig;

		for (sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int link = fcntl(sv[1], F_DUPFD, 10), exe = fcntl(self_exe, F_DUPFD, 10);

		if (link == -1 || exe == -1 || dup2(link, SESS_ZYGOTE_FD) == -1 ||
		    dup2(exe, SESS_ZYGOTE_FD + 1) == -1)
			_exit(127);
		syscall(SYS_close_range, SESS_ZYGOTE_FD + 2, ~0U, 0);
		fcntl(SESS_ZYGOTE_FD + 1, F_SETFD, FD_CLOEXEC);
		fexecve(SESS_ZYGOTE_FD + 1, zargv, zenv);
		_exit(127);
	}
	close(sv[1]);
	zyg.pid = pid;
	zyg.start_ns = now_ns();
	zyg.fd = sv[0];
	zyg.ready = 0;
	if (set_nonblock(zyg.fd) == -1 ||
	    proto_send(zyg.fd, PROTO_ZYGOTE_HELLO, PROTO_F_END, 0, &cfg, sizeof(cfg),
	    NULL, 0) == -1) {
		log_err("func=%s hello errno=\"%s\"", __func__, strerror(errno));
		close(zyg.fd);
		zyg.fd = -1;
		kill(pid, SIGKILL);
		zyg.restart_ns = now_ns() + 1000000000ull;
		return;
	}
	ep_add(zyg.fd, EPOLLIN, &zyg.ev);
	log_info("event=zygote_start pid=%d", (int)pid);
}

static struct sess *
sess_by_serial(uint32_t serial)
{
	struct sess *s;

	TAILQ_FOREACH(s, &sessions, s_entry)
		if (s->s_serial == serial)
			return s;
	return NULL;
}

static void
zygote_frame(struct proto_msg *m)
{
	struct proto_forked fk;
	struct sess *s;
	char q[300];

	switch (m->pm_hdr.ph_type) {
	case PROTO_ZYGOTE_READY:
		snprintf(sandbox_desc, sizeof(sandbox_desc), "%.*s",
		    (int)(m->pm_hdr.ph_len < 200 ? m->pm_hdr.ph_len : 200),
		    (const char *)m->pm_payload);
		log_info("event=zygote_ready pid=%d sandbox=%s", (int)zyg.pid,
		    log_quote(q, sizeof(q), sandbox_desc));
		/* A layer off must not go unnoticed. */
		if (!cfg.landlock || !cfg.seccomp)
			log_warn("event=SANDBOX_DEGRADED layers=%s: a sandbox layer is "
			    "switched off", log_quote(q, sizeof(q), sandbox_desc));
		if (strstr(sandbox_desc, "unavailable") != NULL)
			log_warn("event=SANDBOX_DEGRADED layers=%s: the kernel lacks a "
			    "sandbox layer", log_quote(q, sizeof(q), sandbox_desc));
		zyg.ready = 1;
		zyg.backoff_ms = 0;
		proto_msg_close_fds(m);
		/* Orders that waited for the start: their answer is due from now. */
		TAILQ_FOREACH(s, &sessions, s_entry)
			if (s->s_pidfd < 0 && s->s_deadline != 0 &&
			    (s->s_state == S_FORKING || s->s_state == S_DYING))
				s->s_deadline = now_ns() + START_TIMEOUT_NS;
		pool_fill(now_ns());
		return;
	case PROTO_FORKED:
		if (!proto_payload_is(m, sizeof(fk)))
			break;
		memcpy(&fk, m->pm_payload, sizeof(fk));
		s = sess_by_serial(fk.pfk_serial);
		if (s == NULL || s->s_pidfd >= 0 ||
		    (s->s_state != S_FORKING && s->s_state != S_DYING)) {
			log_err("event=zygote_unknown_child serial=%u", fk.pfk_serial);
			proto_msg_close_fds(m);
			return;
		}
		if (fk.pfk_pid <= 0 || m->pm_nfds != 1) {
			errno = fk.pfk_errno;
			log_err("event=fork_failed serial=%u errno=\"%s\"", fk.pfk_serial,
			    strerror(fk.pfk_errno));
			proto_msg_close_fds(m);
			s->s_end_reason = "fork_failed";
			sess_exited(s);
			return;
		}
		s->s_pid = fk.pfk_pid;
		s->s_pidfd = m->pm_fds[0];
		m->pm_nfds = 0;
		ep_add(s->s_pidfd, EPOLLIN, &s->s_ev_pid);
		if (s->s_state == S_DYING) {
			/*
			 * Ended before its pid was known: finish the job now; its
			 * exit is seen through the pidfd, the fork order's
			 * deadline (sess_kill) is done with.
			 */
			pidfd_signal(s->s_pidfd, SIGKILL);
			s->s_deadline = 0;
			return;
		}
		s->s_state = S_STARTING;
		s->s_deadline = now_ns() + START_TIMEOUT_NS;
		if (s->s_early_ready)
			sess_ready(s);
		return;
	default:
		break;
	}
	proto_msg_close_fds(m);
	zygote_down("protocol");
}

/*
 * Unlike the other links, read on until it is empty: the zygote is trusted,
 * it sends only answers to our fork orders, and an answer left queued is a
 * session that cannot start (its child may be ready already).  Bounded, so
 * the other descriptors still get their turn.
 */
static void
zygote_readable(void)
{
	int i, r;

	for (i = 0; i < ZYGOTE_READ_MAX && zyg.fd >= 0; i++) {
		if ((r = proto_recv(zyg.fd, &rx)) == 1) {
			zygote_frame(&rx);	/* may end the link: zyg.fd -1 */
			continue;
		}
		if (r == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		zygote_down(r == 0 ? "closed" : "protocol");
		return;
	}
}

/* ---- FastCGI workers ---------------------------------------------------- */

static void
conn_close(struct conn *c)
{
	struct job *j;

	if (c->c_freed)
		return;
	close_fd(&c->c_fd);
	if (c->c_recv != NULL) {
		free(c->c_recv->j_code);
		free(c->c_recv);
		c->c_recv = NULL;
	}
	if ((j = c->c_inflight) != NULL) {
		/* A queued job whose asker has gone is not run; a running one finishes. */
		j->j_conn = NULL;
		c->c_inflight = NULL;
	}
	c->c_freed = 1;
	TAILQ_REMOVE(&conns, c, c_entry);
	TAILQ_INSERT_TAIL(&dead_conns, c, c_entry);
}

static void
conn_submit(struct conn *c, struct job *j, const struct proto_exec *pe)
{
	char sid[PROTO_ID_STRLEN + 1];
	uint8_t id[PROTO_ID_LEN];
	struct sess *s;

	c->c_recv = NULL;
	c->c_inflight = j;
	j->j_queued_ns = now_ns();
	if (stopping) {
		job_reply(j, NULL, PROTO_S_INTERNAL, 0);
		return;
	}
	if (pe->pe_mode == PROTO_MODE_CODE && pe->pe_has_id) {
		if ((s = sess_find(pe->pe_id)) == NULL) {
			job_reply(j, NULL, PROTO_S_NOT_FOUND, 0);
			return;
		}
		if (s->s_qlen >= cfg.queue_max) {
			job_reply(j, s, PROTO_S_BUSY, 0);
			return;
		}
	} else {
		if (n_counted >= cfg.max_sessions) {
			job_reply(j, NULL, PROTO_S_FULL, 0);
			return;
		}
		/* The id first: a failure then has nothing to give back. */
		if (pe->pe_mode != PROTO_MODE_SCRIPT && proto_id_new(id) == -1) {
			log_err("func=%s no random bytes for a session id errno=\"%s\"",
			    __func__, strerror(errno));
			job_reply(j, NULL, PROTO_S_INTERNAL, 0);
			return;
		}
		if ((s = pool_take()) != NULL) {
			n_pool--;
			pool_hold_ns = j->j_queued_ns + POOL_REFILL_DELAY_NS;
		}
		if (s == NULL || s->s_state != S_IDLE)
			pool_short_ns = j->j_queued_ns;
		if (s == NULL && (s = sess_spawn(0)) == NULL) {
			job_reply(j, NULL, PROTO_S_INTERNAL, 0);
			return;
		}
		s->s_counted = 1;
		n_counted++;
		metrics.pm_sessions_created++;
		s->s_born_ns = now_ns();
		if (pe->pe_mode == PROTO_MODE_SCRIPT)
			s->s_oneshot = 1;
		else {
			memcpy(s->s_id, id, PROTO_ID_LEN);
			s->s_has_id = 1;
			log_info("event=session_start sid=%s uid=%u pid=%d",
			    sid_str(s, sid), cfg.uid_base + s->s_uid, (int)s->s_pid);
		}
		/* The pool is refilled a little later (pool_hold_ns), not while
		 * the new session runs its first code. */
	}
	TAILQ_INSERT_TAIL(&s->s_queue, j, j_entry);
	s->s_qlen++;
	sess_dispatch(s);
}

static void
conn_metrics(struct conn *c, uint32_t reqid)
{
	struct proto_metrics pm = metrics;

	pm.pm_sessions_live = n_counted;
	pm.pm_pool_ready = 0;
	{
		struct sess *s;

		TAILQ_FOREACH(s, &sessions, s_entry)
			if (!s->s_has_id && !s->s_oneshot && s->s_state == S_IDLE)
				pm.pm_pool_ready++;
	}
	if (proto_send(c->c_fd, PROTO_METRICS_REPLY, PROTO_F_END, reqid, &pm,
	    sizeof(pm), NULL, 0) == -1)
		conn_close(c);
}

/* A frame from a FastCGI worker: checked; anything wrong closes the link. */
static void
conn_frame(struct conn *c, struct proto_msg *m)
{
	const struct proto_hdr *h = &m->pm_hdr;
	struct proto_exec pe;
	struct proto_sid ps;
	struct job *j;
	struct sess *s;
	int whole;

	if (m->pm_nfds > 0)
		goto bad;
	switch (h->ph_type) {
	case PROTO_EXEC:
		if (c->c_recv != NULL || c->c_inflight != NULL || h->ph_len < sizeof(pe))
			goto bad;
		memcpy(&pe, m->pm_payload, sizeof(pe));
		if ((pe.pe_mode != PROTO_MODE_CODE && pe.pe_mode != PROTO_MODE_SCRIPT) ||
		    pe.pe_code_len > cfg.max_body ||
		    (whole = proto_msg_whole(m, sizeof(pe), pe.pe_code_len)) == -1)
			goto bad;
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (pe.pe_code_len > 0 && (j->j_code = malloc(pe.pe_code_len)) == NULL)) {
			log_err("func=%s out of memory for %u bytes", __func__, pe.pe_code_len);
			free(j);
			conn_send_status(c, h->ph_reqid, PROTO_S_INTERNAL);
			return;
		}
		j->j_conn = c;
		j->j_reqid = h->ph_reqid;
		j->j_mode = pe.pe_mode;
		j->j_len = pe.pe_code_len;
		c->c_recv = j;
		/* The struct rides with the job until submission. */
		memcpy(&c->c_pending, &pe, sizeof(pe));
		if (whole) {
			if (j->j_len > 0)
				memcpy(j->j_code, m->pm_payload + sizeof(pe), j->j_len);
			j->j_got = j->j_len;
			conn_submit(c, j, &c->c_pending);
		}
		return;
	case PROTO_DATA:
		if ((j = c->c_recv) == NULL || h->ph_reqid != j->j_reqid ||
		    (h->ph_flags & PROTO_F_STREAM_MASK) != PROTO_STREAM_CODE ||
		    h->ph_len > j->j_len - j->j_got)
			goto bad;
		memcpy(j->j_code + j->j_got, m->pm_payload, h->ph_len);
		j->j_got += h->ph_len;
		if (!!(h->ph_flags & PROTO_F_END) != (j->j_got == j->j_len))
			goto bad;
		if (j->j_got == j->j_len)
			conn_submit(c, j, &c->c_pending);
		return;
	case PROTO_DELETE:
		if (c->c_recv != NULL || c->c_inflight != NULL ||
		    !proto_payload_is(m, sizeof(ps)))
			goto bad;
		memcpy(&ps, m->pm_payload, sizeof(ps));
		if ((s = sess_find(ps.ps_id)) == NULL) {
			conn_send_status(c, h->ph_reqid, PROTO_S_NOT_FOUND);
			return;
		}
		sess_kill(s, PROTO_S_TERMINATED, "deleted");
		conn_send_status(c, h->ph_reqid, PROTO_S_OK);
		return;
	case PROTO_HEALTH:
		if (h->ph_len != 0)
			goto bad;
		conn_send_status(c, h->ph_reqid, zyg.ready ? PROTO_S_OK : PROTO_S_UNHEALTHY);
		return;
	case PROTO_METRICS:
		if (h->ph_len != 0)
			goto bad;
		conn_metrics(c, h->ph_reqid);
		return;
	default:
		goto bad;
	}
bad:
	proto_msg_close_fds(m);
	log_warn("event=worker_protocol_violation type=%u", h->ph_type);
	conn_close(c);
}

/* One frame per wake-up, as sess_ctl_readable. */
static void
conn_readable(struct conn *c)
{
	int r;

	if (c->c_freed)
		return;
	if ((r = proto_recv(c->c_fd, &rx)) == 1) {
		conn_frame(c, &rx);
		return;
	}
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r == -1)
		log_warn("event=worker_bad_frame errno=\"%s\"", strerror(errno));
	conn_close(c);
}

static void
listen_accept(void)
{
	struct ucred uc;
	socklen_t sl = sizeof(uc);
	struct conn *c;
	int fd, sz = conn_sndbuf, i;

	for (i = 0; i < 64; i++) {
		if ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("func=%s accept errno=\"%s\"", __func__, strerror(errno));
			return;
		}
		/* The socket's mode lets the workers' group in; check the peer anyway. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) == -1 ||
		    (uc.uid != 0 && uc.gid != sock_gid)) {
			log_warn("event=peer_refused uid=%d gid=%d", (int)uc.uid, (int)uc.gid);
			close(fd);
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->c_fd = fd;
		c->c_ev = (struct evh){ EV_CONN, c };
		TAILQ_INSERT_TAIL(&conns, c, c_entry);
		ep_add(fd, EPOLLIN, &c->c_ev);
	}
}

static void
listen_open(void)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cfg.socket) >= sizeof(sa.sun_path))
		fatalx("socket path too long: %s", cfg.socket);
	strcpy(sa.sun_path, cfg.socket);	/* length checked above */
	/* Refuse to steal the socket of a daemon that still answers on it. */
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		fatalx("another pyexec-sessiond is serving %s", cfg.socket);
	close(fd);
	(void)unlink(cfg.socket);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		fatal("bind %s", cfg.socket);
	if (chown(cfg.socket, 0, sock_gid) == -1 || chmod(cfg.socket, 0660) == -1)
		fatal("chown/chmod %s", cfg.socket);
	if (listen(fd, 512) == -1)
		fatal("listen");
	listen_fd = fd;
	ep_add(fd, EPOLLIN, &ev_listen);
}

/* ---- signals, shutdown, the loop --------------------------------------- */

static void
reap_children(void)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		if (pid == zyg.pid) {
			if (!stopping)
				log_err("event=zygote_exit pid=%d status=%d signal=%d", (int)pid,
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1,
				    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			zyg.pid = -1;
			zygote_down("exited");
		}
}

static void
begin_stop(const char *why)
{
	struct sess *s, *tmp;

	if (stopping)
		return;
	stopping = 1;
	log_info("event=stopping why=%s", why);
	if (listen_fd >= 0) {
		close_fd(&listen_fd);
		(void)unlink(cfg.socket);
	}
	TAILQ_FOREACH_SAFE(s, &sessions, s_entry, tmp) {
		if (s->s_state == S_FORKING) {
			s->s_end_reason = "shutdown";
			sess_exited(s);
		} else
			sess_kill(s, PROTO_S_INTERNAL, "shutdown");
	}
	if (zyg.pid > 0)
		kill(zyg.pid, SIGKILL);
}

static void
signal_readable(void)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_children();
			break;
		case SIGTERM:
		case SIGINT:
			begin_stop(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		default:
			break;
		}
	}
}

static void
dispatch_event(struct evh *h, uint32_t events)
{
	struct sess *s;
	struct conn *c;

	switch (h->eh_kind) {
	case EV_LISTEN:
		listen_accept();
		break;
	case EV_SIGNAL:
		signal_readable();
		break;
	case EV_ZYGOTE:
		zygote_readable();
		break;
	case EV_CONN:
		c = h->eh_obj;
		if (!c->c_freed)
			conn_readable(c);
		break;
	case EV_CTL:
		s = h->eh_obj;
		if (!s->s_freed && s->s_ctl >= 0)
			sess_ctl_readable(s);
		break;
	case EV_OUT:
	case EV_ERR:
		s = h->eh_obj;
		if (!s->s_freed)
			sess_drain(s, h->eh_kind);
		break;
	case EV_PIDFD:
		s = h->eh_obj;
		if (!s->s_freed && s->s_pidfd >= 0 && s->s_state != S_BURIED)
			sess_exited(s);
		break;
	}
	(void)events;
}

static int
loop_timeout(uint64_t now)
{
	uint64_t next = UINT64_MAX, ms;
	struct sess *s;

	TAILQ_FOREACH(s, &sessions, s_entry)
		if (s->s_deadline && s->s_deadline < next)
			next = s->s_deadline;
	if (zyg.restart_ns && zyg.restart_ns < next)
		next = zyg.restart_ns;
	if (n_pool < cfg.pool_size) {
		uint64_t at = spawn_retry_ns > pool_hold_ns ? spawn_retry_ns : pool_hold_ns;

		if (at > now && at < next)
			next = at;
	}
	if (stopping && now + 50000000ull < next)
		next = now + 50000000ull;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	/* Round up: waking early only costs another turn of the loop. */
	ms = (next - now + 999999) / 1000000;
	/*
	 * An idle timeout may be 30 days, more milliseconds than an int
	 * holds: converted, it would be negative, which epoll_wait takes
	 * for "no timeout".  Waking early is harmless, as above.
	 */
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void
loop(void)
{
	struct epoll_event evs[64];
	struct sess *s, *tmp;
	struct conn *c;
	uint64_t now, stop_deadline = 0;
	int n, i;

	for (;;) {
		now = now_ns();
		n = epoll_wait(ep, evs, 64, loop_timeout(now));
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (i = 0; i < n; i++)
			dispatch_event(evs[i].data.ptr, evs[i].events);
		now = now_ns();
		TAILQ_FOREACH_SAFE(s, &sessions, s_entry, tmp)
			if (s->s_deadline && s->s_deadline <= now)
				sess_timer(s, now);
		if (zyg.restart_ns && zyg.restart_ns <= now && !stopping) {
			metrics.pm_zygote_restarts++;
			zygote_start();
		}
		pool_fill(now);
		/* Objects ended during this turn are freed once no event can name them. */
		while ((s = TAILQ_FIRST(&dead_sessions)) != NULL) {
			TAILQ_REMOVE(&dead_sessions, s, s_entry);
			free(s);
		}
		while ((c = TAILQ_FIRST(&dead_conns)) != NULL) {
			TAILQ_REMOVE(&dead_conns, c, c_entry);
			free(c);
		}
		if (stopping) {
			if (stop_deadline == 0)
				stop_deadline = now + 5000000000ull;
			if ((TAILQ_EMPTY(&sessions) && zyg.pid <= 0) || now > stop_deadline)
				break;
		}
	}
}

static void
make_state_dir(void)
{
	char root[sizeof(cfg.state_dir) + 8];

	if (mkdir(cfg.state_dir, 0755) == -1 && errno != EEXIST)
		fatal("mkdir %s", cfg.state_dir);
	snprintf(root, sizeof(root), "%s/root", cfg.state_dir);
	if (mkdir(root, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", root);
}

int
main(int argc, char **argv)
{
	struct group gr, *grp = NULL;
	char grbuf[4096], err[512];
	const char *sched;
	sigset_t mask;
	struct rlimit rl;
	int r;

	if (argc == 2 && strcmp(argv[1], SESS_ZYGOTE_ARG) == 0) {
		log_init("pyexec-zygote");
		zygote_main(SESS_ZYGOTE_FD);
	}
	log_init("pyexec-sessiond");
	argc = cfg_from_args(&cfg, argc, argv);
	if (argc > 1)
		fatalx("unexpected argument \"%s\"; usage: pyexec-sessiond [-c FILE] [--key=value ...]",
		    argv[1]);
	if (geteuid() != 0)
		fatalx("must start as root: it creates cgroups, namespaces and per-session users");
	if (getgrnam_r(cfg.socket_group, &gr, grbuf, sizeof(grbuf), &grp) != 0 || grp == NULL)
		fatalx("socket_group \"%s\" does not exist", cfg.socket_group);
	sock_gid = grp->gr_gid;
	if ((uid_used = calloc(cfg.uid_count, 1)) == NULL)
		fatal("calloc");
	conn_sndbuf = (int)(3ull * cfg.output_limit + (1 << 20) < (1u << 30) ?
	    3ull * cfg.output_limit + (1 << 20) : (1u << 30));
	ctl_sndbuf = (int)(2ull * cfg.max_body + (1 << 20) < (1u << 30) ?
	    2ull * cfg.max_body + (1 << 20) : (1u << 30));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Orphans of a dead zygote come to us, and are reaped here. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		fatal("PR_SET_CHILD_SUBREAPER");
	if ((self_exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("open /proc/self/exe");
	r = cg_init(&cfg, err, sizeof(err));
	if (r == -1)
		fatalx("cgroups: %s", err);
	if (r == 0) {
		if (!cfg.allow_degraded)
			fatalx("cgroups: %s; refusing to run without memory limits "
			    "(allow_degraded = yes runs with RLIMIT_AS instead)", err);
		log_warn("event=DEGRADED cgroups=none why=%s; memory is limited with "
		    "RLIMIT_AS only, processes with RLIMIT_NPROC only", err);
	}
	make_state_dir();
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Dispositions inherited as SIG_IGN would discard these even when blocked. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	if ((sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	ep_add(sig_fd, EPOLLIN, &ev_signal);
	/* Before the zygote: it and every session inherit the policy (proc.c). */
	sched = proc_sched_batch();
	zygote_start();
	listen_open();
	log_info("event=started socket=%s cgroups=%s max_sessions=%u time_limit_ms=%u "
	    "memory_limit_mb=%u pool_size=%u sched=%s", cfg.socket, cg_mode(), cfg.max_sessions,
	    cfg.time_limit_ms, cfg.memory_limit_mb, cfg.pool_size, sched);
	loop();
	reap_children();
	cg_fini();
	log_info("event=stopped");
	return 0;
}
