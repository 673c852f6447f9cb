/*
 * pyexec-fcgi: the FastCGI responder.  Started by a process manager
 * (spawn-fcgi, Apache mod_fcgid, lighttpd), it accepts on the listening
 * socket it inherits on descriptor 0.  It holds no state and no privilege:
 * each of its threads takes one request at a time, checks it, asks the
 * session daemon over that thread's own kept connection, and writes the
 * answer.  Enough threads run (fcgi_threads) that a two-second execution
 * never holds the only free one (architecture.md, rule 5).
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "cfg.h"
#include "fcgi_req.h"
#include "log.h"
#include "sess_client.h"

static struct cfg	cfg;
static unsigned		reply_bound_ms;
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
 * libfcgi ends a connection with a lingering close: shutdown, then wait for
 * the web server to close its end.  That protects a reply from a reset
 * while the server still has input in flight; once the request's input has
 * been read to its end there is none, and the wait is one more sleep and
 * wake-up per request.  Then the connection is closed at once.  A request
 * without a body has only the empty end-of-input record left, which the
 * server sends with the parameters.
 */
static void
fcgi_close_early(FCGX_Request *rq)
{
	const char *cl;

	if (FCGX_HasSeenEOF(rq->in) != EOF) {
		cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
		if ((cl != NULL && strtoull(cl, NULL, 10) != 0) ||
		    FCGX_GetChar(rq->in) != EOF || FCGX_HasSeenEOF(rq->in) != EOF)
			return;
	}
	(void)FCGX_Detach(rq);
}

/*
 * Which thread accepts the next connection: the one that went idle last.
 * Threads blocked in accept(2) are woken in FIFO order, which passes the
 * requests round all fcgi_threads stacks and daemon connections, each cold
 * in the caches by its turn.  Here one thread, the leader, waits in accept;
 * the idle others wait on a LIFO stack, and a leader that got a connection
 * hands the role to the top of the stack before it serves.  The many
 * threads are still there for long executions; a light load runs on a few.
 */
struct idler {
	pthread_cond_t	 i_cv;
	int		 i_lead;	/* handed the leader's role */
	struct idler	*i_next;
};
static pthread_mutex_t	 lead_mu = PTHREAD_MUTEX_INITIALIZER;
static struct idler	*idle_top;
static int		 leader_busy;	/* a thread is the leader */

static void
lead_take(struct idler *me)
{
	pthread_mutex_lock(&lead_mu);
	if (leader_busy) {
		me->i_lead = 0;
		me->i_next = idle_top;
		idle_top = me;
		while (!me->i_lead)
			pthread_cond_wait(&me->i_cv, &lead_mu);
	} else
		leader_busy = 1;
	pthread_mutex_unlock(&lead_mu);
}

static void
lead_pass(void)
{
	struct idler *next;

	pthread_mutex_lock(&lead_mu);
	if ((next = idle_top) != NULL) {
		idle_top = next->i_next;
		next->i_lead = 1;
		pthread_cond_signal(&next->i_cv);
	} else
		leader_busy = 0;
	pthread_mutex_unlock(&lead_mu);
}

static void *
fcgi_worker(void *arg)
{
	struct sess_client *sc;
	struct idler me;
	FCGX_Request rq;
	int r;

	(void)arg;
	if ((sc = sess_client_new(cfg.socket, reply_bound_ms, cfg.output_limit)) == NULL)
		fatalx("out of memory");
	if (FCGX_InitRequest(&rq, 0, 0) != 0)
		fatalx("FCGX_InitRequest failed");
	pthread_cond_init(&me.i_cv, NULL);
	for (;;) {
		lead_take(&me);
		r = FCGX_Accept_r(&rq);
		lead_pass();
		if (r < 0)
			break;
		fcgi_handle(&rq, sc);
		fcgi_close_early(&rq);
		FCGX_Finish_r(&rq);
	}
	pthread_cond_destroy(&me.i_cv);
	sess_client_free(sc);
	return NULL;
}

static void	fcgi_serve(void);

static volatile sig_atomic_t stop_signal;

static void
fcgi_on_stop(int sig)
{
	stop_signal = sig;
}

static pid_t
fcgi_spawn(pid_t master)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* A worker never outlives its supervisor. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != master)
		_exit(1);
	fcgi_serve();
	_exit(0);
}

/*
 * fcgi_processes > 1: this process keeps that many workers accepting on the
 * inherited socket, and replaces any that dies (a crash, a kill -9), so a
 * process manager that starts pyexec-fcgi once still gets its workers back.
 * Never returns.
 */
static void
fcgi_supervise(void)
{
	struct sigaction sa;
	pid_t master = getpid(), *kids, pid;
	unsigned i, n = cfg.fcgi_processes;
	int st;

	if ((kids = calloc(n, sizeof(*kids))) == NULL)
		fatal("calloc");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fcgi_on_stop;	/* no SA_RESTART: waitpid returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (i = 0; i < n; i++)
		if ((kids[i] = fcgi_spawn(master)) == -1)
			fatal("fork");
	log_info("event=supervising workers=%u", n);
	while (!stop_signal) {
		if ((pid = waitpid(-1, &st, 0)) == -1)
			continue;
		for (i = 0; i < n; i++) {
			if (kids[i] != pid)
				continue;
			log_warn("event=worker_exit pid=%d status=%d signal=%d", (int)pid,
			    WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			if (stop_signal)
				break;
			usleep(100000);	/* a worker that dies at once must not spin us */
			if ((kids[i] = fcgi_spawn(master)) == -1)
				log_err("func=%s fork errno=\"%s\"", __func__, strerror(errno));
		}
	}
	for (i = 0; i < n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGTERM);
	while (wait(NULL) > 0)
		;
	log_info("event=stopped signal=%d", (int)stop_signal);
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
	if (cfg.fcgi_processes > 1)
		fcgi_supervise();
	fcgi_serve();
	return 0;
}

/* Runs the accept loops of this process's threads; returns when they end. */
static void
fcgi_serve(void)
{
	pthread_attr_t attr;
	pthread_t *tids;
	unsigned i;

	if ((tids = calloc(cfg.fcgi_threads, sizeof(*tids))) == NULL)
		fatal("calloc");
	pthread_attr_init(&attr);
	/* Requests need little stack; many threads should cost little memory. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (i = 0; i < cfg.fcgi_threads; i++)
		if (pthread_create(&tids[i], &attr, fcgi_worker, NULL) != 0)
			fatal("pthread_create");
	log_info("event=started threads=%u socket=%s", cfg.fcgi_threads, cfg.socket);
	for (i = 0; i < cfg.fcgi_threads; i++)
		pthread_join(tids[i], NULL);
	free(tids);
}
