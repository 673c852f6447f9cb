/*
 * pyexec-fcgi: the FastCGI responder.  Started by a process manager
 * (spawn-fcgi, Apache mod_fcgid, lighttpd), it accepts on the listening
 * socket it inherits on descriptor 0.  It holds no state and no privilege:
 * each of its threads takes one request at a time, checks it, asks the
 * session daemon over that thread's own kept connection, and writes the
 * answer.  Enough threads run (fcgi_threads) that a two-second execution
 * never holds the only free one (architecture.md, rule 5).
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fastcgi.h>
#include <fcgiapp.h>

#include "cfg.h"
#include "fcgi_req.h"
#include "log.h"
#include "proc.h"
#include "sess_client.h"

static struct cfg	cfg;
static unsigned		reply_bound_ms;
static const char	*sched;		/* the scheduling policy, for the start line */
static unsigned long	req_counter;
static pthread_mutex_t	req_counter_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
fcgi_write(FCGX_Request *rq, const struct fcgi_reply *r, int head_only)
{
	char hdr[512];
	int n;

	n = snprintf(hdr, sizeof(hdr),
	    "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n",
	    r->fr_status, fcgi_reason(r->fr_status), r->fr_ctype);
	if (r->fr_allow != NULL)
		n += snprintf(hdr + n, sizeof(hdr) - n, "Allow: %s\r\n", r->fr_allow);
	if (r->fr_sid[0] != '\0')
		n += snprintf(hdr + n, sizeof(hdr) - n, "Pyexec-Session: %s\r\n", r->fr_sid);
	if (r->fr_retry_after >= 0)
		n += snprintf(hdr + n, sizeof(hdr) - n, "Retry-After: %d\r\n",
		    r->fr_retry_after);
	if (r->fr_status == 204)
		n += snprintf(hdr + n, sizeof(hdr) - n, "\r\n");
	else
		n += snprintf(hdr + n, sizeof(hdr) - n, "Content-Length: %zu\r\n\r\n",
		    r->fr_body.jb_len);
	FCGX_PutStr(hdr, n, rq->out);
	if (r->fr_status != 204 && !head_only && r->fr_body.jb_len > 0)
		FCGX_PutStr(r->fr_body.jb_buf, (int)r->fr_body.jb_len, rq->out);
}

/*
 * Reads the body, at most max_body bytes, into a buffer sized by the
 * announced length (web servers pass CONTENT_LENGTH for every body they
 * forward), grown geometrically if more arrives or none was announced.
 * Returns its length, -1 when it is over the limit, -2 on a read error.
 * *out is malloc'd.
 */
static long
fcgi_read_body(FCGX_Request *rq, unsigned long long announced, char **out)
{
	size_t limit = cfg.max_body + 1, cap, len = 0;
	char *buf, *nb;
	int n;

	*out = NULL;
	cap = announced > 0 && announced < limit ? (size_t)announced + 1 : 16384;
	if (cap > limit)
		cap = limit;
	if ((buf = malloc(cap + 1)) == NULL)
		return -2;
	for (;;) {
		if (len == cap) {
			if (cap == limit)
				break;
			cap = cap > limit / 2 ? limit : cap * 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return -2;
			}
			buf = nb;
		}
		n = FCGX_GetStr(buf + len, (int)(cap - len), rq->in);
		if (n <= 0)
			break;
		len += n;
	}
	if (FCGX_GetError(rq->in) != 0) {
		free(buf);
		return -2;
	}
	if (len > cfg.max_body) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	return (long)len;
}

static void
fcgi_execute(FCGX_Request *rq, struct sess_client *sc, struct fcgi_reply *r)
{
	const char *ct = FCGX_GetParam("CONTENT_TYPE", rq->envp);
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
	const char *hsid = FCGX_GetParam("HTTP_PYEXEC_SESSION", rq->envp);
	struct fcgi_exec e;
	struct sess_reply sr;
	const char *err;
	char *body;
	unsigned long long announced = cl != NULL ? strtoull(cl, NULL, 10) : 0;
	long len;
	int st;

	if (announced > cfg.max_body) {
		fcgi_reply_error(r, 413, "request body too large");
		return;
	}
	if (!fcgi_content_type_ok(ct)) {
		fcgi_reply_error(r, 415, "Content-Type must be application/json");
		return;
	}
	if ((len = fcgi_read_body(rq, announced, &body)) < 0) {
		if (len == -1)
			fcgi_reply_error(r, 413, "request body too large");
		else
			fcgi_reply_error(r, 500, "Internal server error");
		return;
	}
	if (hsid != NULL && *hsid == '\0')
		hsid = NULL;
	st = fcgi_parse_exec(body, (size_t)len, hsid, &e, &err);
	free(body);
	if (st != 0) {
		fcgi_reply_error(r, st, err);
		return;
	}
	if (sess_client_exec(sc, e.fe_mode, e.fe_has_id ? e.fe_id : NULL, e.fe_code,
	    e.fe_code_len, &sr) == -1) {
		fcgi_exec_free(&e);
		fcgi_reply_error(r, 500, "Internal server error");
		r->fr_outcome = "daemon_unreachable";
		return;
	}
	fcgi_exec_free(&e);
	fcgi_reply_exec(r, &sr, cfg.retry_after_s);
	sess_reply_clear(&sr);
}

static void
fcgi_health(struct sess_client *sc, struct fcgi_reply *r)
{
	struct sess_reply sr;
	const char *why;

	if (sess_client_health(sc, &sr) == 0 && sr.sr_status == PROTO_S_OK) {
		r->fr_status = 200;
		jbuf_str(&r->fr_body, "{\"status\": \"healthy\"}");
		return;
	}
	why = sr.sr_status == PROTO_S_UNHEALTHY ? "zygote not ready" :
	    "session daemon unreachable";
	r->fr_status = 503;
	jbuf_str(&r->fr_body, "{\"status\": \"unhealthy\", \"error\": \"");
	jbuf_str(&r->fr_body, why);
	jbuf_str(&r->fr_body, "\"}");
	r->fr_outcome = "unhealthy";
}

static void
fcgi_delete(struct sess_client *sc, const char *arg, size_t arglen,
    struct fcgi_reply *r)
{
	uint8_t id[PROTO_ID_LEN];
	struct sess_reply sr;

	if (proto_id_parse(arg, arglen, id) == -1) {
		fcgi_reply_error(r, 404, "session not found");
		return;
	}
	if (sess_client_delete(sc, id, &sr) == -1) {
		fcgi_reply_error(r, 500, "Internal server error");
		return;
	}
	if (sr.sr_status == PROTO_S_OK) {
		r->fr_status = 204;
		proto_id_format(id, r->fr_sid);
	} else
		fcgi_reply_error(r, 404, "session not found");
}

static void
fcgi_metrics(struct sess_client *sc, struct fcgi_reply *r)
{
	struct sess_reply sr;

	if (sess_client_metrics(sc, &sr) == -1) {
		fcgi_reply_error(r, 500, "Internal server error");
		return;
	}
	fcgi_reply_metrics(r, &sr.sr_metrics);
}

static void
fcgi_handle(FCGX_Request *rq, struct sess_client *sc)
{
	const char *method = FCGX_GetParam("REQUEST_METHOD", rq->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", rq->envp);
	const char *rid = FCGX_GetParam("REQUEST_ID", rq->envp);
	char ridbuf[32], q1[128], q2[80];
	struct fcgi_reply r;
	enum fcgi_route route;
	const char *arg;
	size_t arglen;
	uint64_t t0 = mono_us();

	if (method == NULL)
		method = "";
	if (uri == NULL)
		uri = "";
	if (rid == NULL) {
		pthread_mutex_lock(&req_counter_lock);
		snprintf(ridbuf, sizeof(ridbuf), "%d-%lu", (int)getpid(), ++req_counter);
		pthread_mutex_unlock(&req_counter_lock);
		rid = ridbuf;
	}
	fcgi_reply_init(&r);
	route = fcgi_route(uri, &arg, &arglen);
	if (route == FR_NONE)
		fcgi_reply_error(&r, 404, "not found");
	else if ((r.fr_allow = fcgi_allowed(route, method)) != NULL)
		fcgi_reply_error(&r, 405, "method not allowed");
	else switch (route) {
	case FR_EXECUTE:
		fcgi_execute(rq, sc, &r);
		break;
	case FR_HEALTH:
		fcgi_health(sc, &r);
		break;
	case FR_METRICS:
		fcgi_metrics(sc, &r);
		break;
	case FR_SESSION:
		fcgi_delete(sc, arg, arglen, &r);
		break;
	case FR_STATIC:
		/* The web server serves these files; it has none here. */
		fcgi_reply_error(&r, 404, "not found");
		break;
	case FR_NONE:
	default:
		break;
	}
	fcgi_write(rq, &r, strcmp(method, "HEAD") == 0);
	log_info("event=request rid=%s method=%s path=%s status=%d outcome=%s sid=%s dur_us=%llu",
	    log_quote(q1, sizeof(q1), rid), log_quote(q2, sizeof(q2), method),
	    route == FR_NONE ? "other" : route == FR_EXECUTE ? "/execute" :
	    route == FR_HEALTH ? "/health" : route == FR_METRICS ? "/metrics" :
	    route == FR_STATIC ? "static" : "/sessions",
	    r.fr_status, r.fr_outcome, r.fr_sid[0] ? r.fr_sid : "-",
	    (unsigned long long)(mono_us() - t0));
	fcgi_reply_free(&r);
}

/*
 * Connections.  A web server either opens a connection per request (mod_fcgid,
 * lighttpd, nginx by default) or keeps it for the next one (nginx with
 * fastcgi_keep_conn and an upstream keepalive pool).  Either way no thread
 * ever waits on one connection: every open connection is in the process's
 * epoll set, one-shot, and a thread is handed a connection only when input
 * arrived on it.  A kept connection that goes idle costs a descriptor, never
 * a thread, and a new request never queues behind it.
 *
 * Which thread takes it: every idle thread waits in epoll_wait on the same
 * set, and the kernel wakes one waiter per event, the one that went idle
 * last.  (accept(2) wakes its waiters in FIFO order, which passed the
 * requests round all fcgi_threads stacks and daemon connections, each cold in
 * the caches by its turn.)  The many threads are there for long executions;
 * a light load runs on a few.
 */
static int		 conn_ep = -1;	/* listening socket + open connections */
static int		 listen_tcp;	/* the listening socket is TCP, not Unix */
static const char	*peer_allow;	/* FCGI_WEB_SERVER_ADDRS, TCP only */

/*
 * How many.  Idle kept connections are never closed here: a server may be
 * sending its next request on one as we close it, and it retries no POST;
 * it closes the ones it no longer wants itself (nginx's upstream
 * keepalive_timeout).  But every one costs a descriptor, and a process that
 * ran out of them could neither accept nor reach the daemon.  So a process
 * holds at most conn_max connections: its descriptor limit less one per
 * thread (its daemon connection) and CONN_RESERVE of its own.  At the limit
 * the listening socket leaves the epoll set and new connections wait in
 * the backlog until one closes.  An accept that fails all the same (out of
 * descriptors or memory) takes it out for a back-off, ACCEPT_BACKOFF_MIN_MS
 * doubled up to ACCEPT_BACKOFF_MAX_MS, after which a thread woken by
 * accept_timer puts it back; such failures are logged once in LOG_EVERY_US.
 */
#define CONN_RESERVE		32
#define ACCEPT_BACKOFF_MIN_MS	10
#define ACCEPT_BACKOFF_MAX_MS	1000
#define LOG_EVERY_US		(10 * 1000000ULL)

static pthread_mutex_t	 conn_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned		 conn_open;	/* the connections this process holds */
static unsigned		 conn_max = UINT_MAX;
static int		 listen_polled;	/* the listening socket is in conn_ep */
static int		 accept_timer = -1;	/* timerfd: the end of a back-off */
static unsigned		 accept_backoff_ms;	/* 0: none since the last accept */
static int		 accept_paused;
static unsigned		 accept_failures;	/* since the last log line */
static uint64_t		 accept_logged_us, limit_logged_us;

/* The listening socket in the set or not, as the count and a back-off say. */
static void
listen_update(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = FCGI_LISTENSOCK_FILENO };
	int want = conn_open < conn_max && !accept_paused;
	uint64_t now;

	if (want == listen_polled)
		return;
	if (epoll_ctl(conn_ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
	    FCGI_LISTENSOCK_FILENO, &ev) == -1)
		fatal("epoll_ctl on the listening socket");
	listen_polled = want;
	if (want || conn_open < conn_max)
		return;
	now = mono_us();
	if (limit_logged_us == 0 || now - limit_logged_us >= LOG_EVERY_US) {
		log_warn("event=connection_limit open=%u max=%u", conn_open, conn_max);
		limit_logged_us = now;
	}
}

static void
conn_opened(void)
{
	pthread_mutex_lock(&conn_lock);
	conn_open++;
	accept_backoff_ms = 0;
	listen_update();
	pthread_mutex_unlock(&conn_lock);
}

/* A connection is closed (by libfcgi, or conn_close). */
static void
conn_closed(void)
{
	pthread_mutex_lock(&conn_lock);
	conn_open--;
	listen_update();
	pthread_mutex_unlock(&conn_lock);
}

static void
conn_close(int fd)
{
	close(fd);
	conn_closed();
}

/* accept(2) failed with err, and would again at once. */
static void
accept_failed(int err)
{
	struct itimerspec its = { .it_value = { 0, 0 } };
	uint64_t now = mono_us();

	pthread_mutex_lock(&conn_lock);
	if (!accept_paused) {
		accept_backoff_ms = accept_backoff_ms == 0 ? ACCEPT_BACKOFF_MIN_MS :
		    accept_backoff_ms >= ACCEPT_BACKOFF_MAX_MS / 2 ?
		    ACCEPT_BACKOFF_MAX_MS : accept_backoff_ms * 2;
		its.it_value.tv_sec = accept_backoff_ms / 1000;
		its.it_value.tv_nsec = (long)(accept_backoff_ms % 1000) * 1000000;
		if (timerfd_settime(accept_timer, 0, &its, NULL) == -1)
			fatal("timerfd_settime");
		accept_paused = 1;
		listen_update();
	}
	accept_failures++;
	if (accept_logged_us == 0 || now - accept_logged_us >= LOG_EVERY_US) {
		log_err("event=accept_failed errno=\"%s\" times=%u open=%u retry_ms=%u",
		    strerror(err), accept_failures, conn_open, accept_backoff_ms);
		accept_failures = 0;
		accept_logged_us = now;
	}
	pthread_mutex_unlock(&conn_lock);
}

/* The back-off's end: accept again. */
static void
accept_resume(void)
{
	uint64_t n;

	/* Another thread woken by the same expiry finds it read. */
	if (read(accept_timer, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&conn_lock);
	accept_paused = 0;
	listen_update();
	pthread_mutex_unlock(&conn_lock);
}

/* Waits for the next input on a connection: armed until then, once. */
static void
conn_arm(int fd, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd };

	if (epoll_ctl(conn_ep, op, fd, &ev) == -1) {
		log_err("func=%s epoll_ctl errno=\"%s\"", __func__, strerror(errno));
		conn_close(fd);
	}
}

/*
 * FCGI_WEB_SERVER_ADDRS lists the web servers' addresses allowed to connect
 * over TCP, as for libfcgi's own accept, which is never used: it checks IPv4
 * peers only.
 */
static int
conn_peer_allowed(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	const struct in6_addr *a6;
	const char *p, *e;
	const void *bin;
	size_t n;
	int af;

	if (peer_allow == NULL)
		return 1;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return 0;
	if (ss.ss_family == AF_INET) {
		af = AF_INET;
		bin = &((struct sockaddr_in *)&ss)->sin_addr;
	} else if (ss.ss_family == AF_INET6) {
		/* An IPv4 client of a dual-stack socket is listed by its IPv4 address. */
		a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		af = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
		bin = af == AF_INET ? (const void *)&a6->s6_addr[12] : (const void *)a6;
	} else
		return 1;
	if (inet_ntop(af, bin, addr, sizeof(addr)) == NULL)
		return 0;
	n = strlen(addr);
	for (p = peer_allow; *p != '\0'; p = *e ? e + 1 : e) {
		e = p + strcspn(p, ",");
		while (p < e && *p == ' ')
			p++;
		if ((size_t)(e - p) == n && memcmp(p, addr, n) == 0)
			return 1;
	}
	log_warn("event=peer_refused addr=%s", addr);
	return 0;
}

/* An idle thread's wait: the next connection with input on it. */
static int
conn_next(void)
{
	struct epoll_event ev;
	int fd, one = 1;

	for (;;) {
		if (epoll_wait(conn_ep, &ev, 1, -1) != 1) {
			if (errno != EINTR)
				fatal("epoll_wait");
			continue;
		}
		if (ev.data.fd == accept_timer) {
			accept_resume();
			continue;
		}
		if (ev.data.fd != FCGI_LISTENSOCK_FILENO)
			return ev.data.fd;
		if ((fd = accept4(FCGI_LISTENSOCK_FILENO, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			switch (errno) {
			case EAGAIN:		/* another thread took it */
			case EINTR:
			case ECONNABORTED:
			/* The new connection's own errors (accept(2)): try again. */
			case EPROTO:
			case EPERM:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
				break;
			default:
				/* EMFILE, ENFILE, ENOBUFS, ENOMEM: it stays in the backlog. */
				accept_failed(errno);
				break;
			}
			continue;
		}
		if (listen_tcp) {
			if (!conn_peer_allowed(fd)) {
				close(fd);
				continue;
			}
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		conn_opened();
		conn_arm(fd, EPOLL_CTL_ADD);
	}
}

/*
 * Whether a connection epoll reported holds input for libfcgi.  One the
 * server closed is closed here, and one woken without input is armed again:
 * libfcgi must be given only a connection with input to read (see
 * fcgi_worker).  MSG_DONTWAIT: a connection is blocking for libfcgi.
 */
static int
conn_has_input(int fd)
{
	ssize_t n;
	char c;

	while ((n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT)) == -1 && errno == EINTR)
		;
	if (n == 1)
		return 1;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		conn_arm(fd, EPOLL_CTL_MOD);
	else
		conn_close(fd);	/* the end of the connection (0), or a reset */
	return 0;
}

/*
 * The end of a request.  libfcgi ends a connection with a lingering close:
 * shutdown, then wait for the web server to close its end.  That protects
 * a reply from a reset while the server still has input in flight; once the
 * request's input has been read to its end there is none, and the wait is
 * one more sleep and wake-up per request: then the connection is closed at
 * once, or kept if the server asked for that.  A request without a body has
 * only the empty end-of-input record left, which the server sends with the
 * parameters.
 *
 * Input left unread (a body refused for its announced length, its type, its
 * path or its method) is read here and dropped before the reply ends, up to
 * a bound, so that a kept connection carries the next request.  Closing it
 * instead would lose that request: a web server puts a connection back in
 * its pool once it sent the whole request, possibly before our close, sends
 * the next one on it, and retries no POST.  The bound is max_body or
 * DRAIN_MIN, the larger: the shipped web server configurations let bodies up
 * to 8 MiB through (nginx client_max_body_size, Apache LimitRequestBody,
 * lighttpd server.max-request-size) so that pyexec answers its own 413 past
 * max_body; every request a server could follow with another on the same
 * connection ends within it.  Beyond it (announced, or sent) the server is
 * still sending and will not reuse the connection: it gets the lingering
 * close.  Dropping 8 MiB costs milliseconds of copying, and the body comes
 * at once: web servers buffer a whole body before they pass it on.
 */
#define DRAIN_MIN	(8UL << 20)

static void
fcgi_end(FCGX_Request *rq)
{
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
	size_t bound = cfg.max_body > DRAIN_MIN ? cfg.max_body : DRAIN_MIN;
	size_t dropped = 0;
	char buf[8192];
	int n;

	if (cl != NULL && strtoull(cl, NULL, 10) > bound)
		dropped = bound + 1;	/* it cannot end within the bound */
	while (dropped <= bound && FCGX_HasSeenEOF(rq->in) != EOF &&
	    (n = FCGX_GetStr(buf, sizeof(buf), rq->in)) > 0)
		dropped += n;
	/* On a read error (also "seen EOF") libfcgi closes it, at once. */
	if (FCGX_GetError(rq->in) == 0 && FCGX_HasSeenEOF(rq->in) != EOF) {
		rq->keepConnection = 0;
		(void)FCGX_Attach(rq);	/* the lingering close */
	}
	FCGX_Finish_r(rq);
	if (rq->ipcFd >= 0)
		conn_arm(rq->ipcFd, EPOLL_CTL_MOD);
	else
		conn_closed();
	rq->ipcFd = -1;
}

static void *
fcgi_worker(void *arg)
{
	struct sess_client *sc;
	FCGX_Request rq;
	int fd;

	(void)arg;
	if ((sc = sess_client_new(cfg.socket, reply_bound_ms, cfg.output_limit)) == NULL)
		fatalx("out of memory");
	/*
	 * No listening socket for libfcgi (-1).  Given a connection that yields
	 * no request (closed, or not FastCGI), FCGX_Accept_r closes it and
	 * accepts on its request's listening socket; that accept would check
	 * FCGI_WEB_SERVER_ADDRS for IPv4 peers only, letting any IPv6 one in
	 * (v4-mapped too), and wait up to 2 s for a Unix peer's first byte.  On
	 * -1 it fails at once (EBADF): every connection is accepted and checked
	 * in conn_next, none by libfcgi.
	 */
	if (FCGX_InitRequest(&rq, -1, 0) != 0)
		fatalx("FCGX_InitRequest failed");
	for (;;) {
		if (!conn_has_input(fd = conn_next()))
			continue;
		rq.ipcFd = fd;
		rq.keepConnection = 1;	/* nothing for FCGX_Accept_r to finish */
		/*
		 * Closed at once, not lingered on: one that yields no request,
		 * and one whose request's input was read to its end (fcgi_end).
		 */
		(void)FCGX_Detach(&rq);
		if (FCGX_Accept_r(&rq) < 0) {
			/* libfcgi closed it; its accept on -1 failed. */
			log_warn("event=connection_error error=\"no FastCGI request on it\"");
			conn_closed();
			rq.ipcFd = -1;
			continue;
		}
		fcgi_handle(&rq, sc);
		fcgi_end(&rq);
	}
	return NULL;
}

static void	fcgi_serve(void);

static sigset_t	spawn_mask;	/* the signal mask a worker starts with */

static pid_t
fcgi_spawn(pid_t master)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* A worker never outlives its supervisor. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	sigprocmask(SIG_SETMASK, &spawn_mask, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != master)
		_exit(1);
	fcgi_serve();
	_exit(0);
}

/*
 * A slot's next start after a failed one (fork failed, or the worker died
 * within RESPAWN_QUICK_MS of its start): RESPAWN_MIN_MS, doubled each time
 * up to RESPAWN_MAX_MS.  A fork fails for lack of processes or memory, which
 * a retry at once would not find, and a worker that dies at once must not
 * spin us.
 */
#define RESPAWN_MIN_MS		100
#define RESPAWN_MAX_MS		10000
#define RESPAWN_QUICK_MS	1000

struct fcgi_kid {
	pid_t		pid;		/* -1: none, due at due_ms */
	uint64_t	born_ms;
	uint64_t	due_ms;
	unsigned	delay_ms;	/* before the next start, when this one fails */
};

/* No worker in this slot until its next start. */
static void
fcgi_kid_later(struct fcgi_kid *k, uint64_t now)
{
	k->pid = -1;
	k->due_ms = now + k->delay_ms;
	k->delay_ms = k->delay_ms >= RESPAWN_MAX_MS / 2 ? RESPAWN_MAX_MS :
	    k->delay_ms * 2;
}

/*
 * fcgi_processes > 1: this process keeps that many workers accepting on the
 * inherited socket, and replaces any that dies (a crash, a kill -9), so a
 * process manager that starts pyexec-fcgi once still gets its workers back.
 * A worker that could not be started is retried until it is.  The
 * supervisor waits with its signals blocked, in sigtimedwait: for a worker's
 * exit, a stop, or the next start due.  Never returns.
 */
static void
fcgi_supervise(void)
{
	struct fcgi_kid *kids, *k;
	struct timespec ts;
	sigset_t set;
	pid_t master = getpid(), pid;
	uint64_t now, next;
	unsigned i, n = cfg.fcgi_processes;
	int sig = 0, st;

	if ((kids = calloc(n, sizeof(*kids))) == NULL)
		fatal("calloc");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, &spawn_mask) == -1)
		fatal("sigprocmask");
	now = mono_us() / 1000;
	for (i = 0; i < n; i++) {
		if ((kids[i].pid = fcgi_spawn(master)) == -1)
			fatal("fork");
		kids[i].born_ms = now;
		kids[i].delay_ms = RESPAWN_MIN_MS;
	}
	log_info("event=supervising workers=%u", n);
	while (sig != SIGTERM && sig != SIGINT) {
		now = mono_us() / 1000;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < n && kids[i].pid != pid; i++)
				;
			if (i == n)
				continue;
			log_warn("event=worker_exit pid=%d status=%d signal=%d", (int)pid,
			    WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			if (now - kids[i].born_ms >= RESPAWN_QUICK_MS)
				kids[i].delay_ms = RESPAWN_MIN_MS;
			fcgi_kid_later(&kids[i], now);
		}
		next = UINT64_MAX;
		for (i = 0; i < n; i++) {
			k = &kids[i];
			if (k->pid == -1 && k->due_ms <= now) {
				if ((k->pid = fcgi_spawn(master)) == -1) {
					log_err("event=worker_fork_failed errno=\"%s\" retry_ms=%u",
					    strerror(errno), k->delay_ms);
					fcgi_kid_later(k, now);
				} else
					k->born_ms = now;
			}
			if (k->pid == -1 && k->due_ms < next)
				next = k->due_ms;
		}
		if (next != UINT64_MAX) {
			ts.tv_sec = (next - now) / 1000;
			ts.tv_nsec = (long)((next - now) % 1000) * 1000000;
		}
		/* -1: the time came (EAGAIN), or EINTR. */
		sig = sigtimedwait(&set, NULL, next != UINT64_MAX ? &ts : NULL);
	}
	for (i = 0; i < n; i++)
		if (kids[i].pid > 0)
			kill(kids[i].pid, SIGTERM);
	while (wait(NULL) > 0)
		;
	log_info("event=stopped signal=%d", sig);
	exit(0);
}

int
main(int argc, char **argv)
{
	/*
	 * libfcgi allocates 8 KiB stream buffers per request; with fastbins,
	 * each such allocation first consolidates every small free chunk of the
	 * arena.  The small ones are served by the per-thread cache anyway.
	 */
	(void)mallopt(M_MXFAST, 0);
	log_init("pyexec-fcgi");
	argc = cfg_from_args(&cfg, argc, argv);
	if (argc > 1)
		fatalx("unexpected argument \"%s\"; usage: pyexec-fcgi [-c FILE] [--key=value ...]",
		    argv[1]);
	/* The web-facing process holds nothing worth stealing, privilege included. */
	if (geteuid() == 0 || getegid() == 0)
		fatalx("refusing to run as root: start it as the web server's user "
		    "(spawn-fcgi -u www-data -g www-data)");
	if (FCGX_Init() != 0)
		fatalx("FCGX_Init failed");
	/*
	 * libfcgi turns SIGTERM into a flag its blocked accept() never sees:
	 * a worker holds no state, so a stop request ends it at once.
	 */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (FCGX_IsCGI())
		fatalx("descriptor 0 is not a listening socket: start pyexec-fcgi under "
		    "spawn-fcgi, Apache mod_fcgid or lighttpd");
	signal(SIGPIPE, SIG_IGN);
	reply_bound_ms = cfg_reply_bound_ms(&cfg);
	/* Before the workers and their threads, which inherit it (proc.c). */
	sched = proc_sched_batch();
	if (cfg.fcgi_processes > 1)
		fcgi_supervise();
	fcgi_serve();
	return 0;
}

/* Runs this process's threads; they serve until the process is stopped. */
static void
fcgi_serve(void)
{
	struct sockaddr_storage ss;
	struct epoll_event ev;
	struct rlimit rl;
	pthread_attr_t attr;
	socklen_t sl;
	pthread_t *tids;
	rlim_t reserve = (rlim_t)cfg.fcgi_threads + CONN_RESERVE;
	unsigned i;
	int fl;

	if ((tids = calloc(cfg.fcgi_threads, sizeof(*tids))) == NULL)
		fatal("calloc");
	/* Each process its own set: its connections are served by its threads. */
	if ((conn_ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	if ((fl = fcntl(FCGI_LISTENSOCK_FILENO, F_GETFL)) == -1 ||
	    fcntl(FCGI_LISTENSOCK_FILENO, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("fcntl O_NONBLOCK on the listening socket");
	ev.events = EPOLLIN;
	ev.data.fd = FCGI_LISTENSOCK_FILENO;
	if (epoll_ctl(conn_ep, EPOLL_CTL_ADD, FCGI_LISTENSOCK_FILENO, &ev) == -1)
		fatal("epoll_ctl on the listening socket");
	listen_polled = 1;
	if ((accept_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) == -1)
		fatal("timerfd_create");
	ev.events = EPOLLIN;
	ev.data.fd = accept_timer;
	if (epoll_ctl(conn_ep, EPOLL_CTL_ADD, accept_timer, &ev) == -1)
		fatal("epoll_ctl on the timer");
	/* Every thread holds a daemon connection: take all the descriptors allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		if (rl.rlim_cur < reserve + 16) {
			log_warn("event=nofile_low nofile=%llu threads=%u max_connections=16 "
			    "hint=\"raise the open files limit\"", (unsigned long long)rl.rlim_cur,
			    cfg.fcgi_threads);
			conn_max = 16;
		} else if (rl.rlim_cur - reserve < UINT_MAX)
			conn_max = (unsigned)(rl.rlim_cur - reserve);
	}
	sl = sizeof(ss);
	listen_tcp = getsockname(FCGI_LISTENSOCK_FILENO, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	peer_allow = getenv("FCGI_WEB_SERVER_ADDRS");
	pthread_attr_init(&attr);
	/* Requests need little stack; many threads should cost little memory. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (i = 0; i < cfg.fcgi_threads; i++)
		if (pthread_create(&tids[i], &attr, fcgi_worker, NULL) != 0)
			fatal("pthread_create");
	log_info("event=started threads=%u max_connections=%u socket=%s sched=%s",
	    cfg.fcgi_threads, conn_max, cfg.socket, sched);
	for (i = 0; i < cfg.fcgi_threads; i++)
		pthread_join(tids[i], NULL);
	free(tids);
}
