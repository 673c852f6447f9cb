/*
 * pxbench: the load client of `make bench` (issue 5).  Speaks HTTP/1.1 with
 * keep-alive to nginx on 127.0.0.1:PORT, one blocking TCP connection per
 * thread, and measures the scenarios of issue 5; also spawns Debian's
 * python3.11 for the baseline and reads session memory from /proc and the
 * cgroup tree (root only).  libc only.
 *
 *   pxbench -p PORT [-P POOL_SIZE] [-o results.json] [-r REV] [-q] [SCENARIO...]
 *
 * Scenarios (default: all, in this order): spawn exec tput new churn pandas
 * scale timeout.  Prints one line per measurement as it goes, then a table
 * (scenario, median, p99, throughput, target, met or MISSED), and writes all
 * results as one JSON document to -o.  The exit status is 0 when every
 * scenario ran (targets missed included), 1 when a scenario failed to run.
 *
 * Nothing here knows the numbers it should get: each scenario does the same
 * thing a client would, checks every answer, and counts any wrong one.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SID_LEN		36
#define PYTHON		"/usr/bin/python3.11"	/* never the python3 first on PATH */
#define CODE_PRINT1	"print(1)"
#define CODE_PANDAS	"import pandas as pd; print(pd.DataFrame({\"a\": range(1000)})[\"a\"].sum())"
#define CODE_IMPORTS	"import numpy, pandas, os; print(os.getuid())"

static int	port = 18770;
static unsigned	pool_size = 8;
static int	quiet;
static const char *rev = "";
static int	failed;		/* a scenario could not run */

/* ------------------------------------------------------------------ misc */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
sleep_us(double us)
{
	struct timespec ts;

	if (us <= 0)
		return;
	ts.tv_sec = (time_t)(us / 1e6);
	ts.tv_nsec = (long)((us - ts.tv_sec * 1e6) * 1e3);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void __attribute__((format(printf, 1, 2)))
note(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL) {
		perror("realloc");
		exit(2);
	}
	return p;
}

static void
loadavg(char *out, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a = 0, b = 0, c = 0;

	if (f != NULL) {
		if (fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
			a = b = c = 0;
		fclose(f);
	}
	snprintf(out, len, "%.2f %.2f %.2f", a, b, c);
}

/* ----------------------------------------------------------------- stats */

struct stats {
	double	*v;
	size_t	 n, cap;
};

static void
st_add(struct stats *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->v = xrealloc(s->v, s->cap * sizeof(double));
	}
	s->v[s->n++] = x;
}

static void
st_merge(struct stats *dst, const struct stats *src)
{
	for (size_t i = 0; i < src->n; i++)
		st_add(dst, src->v[i]);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double
st_pct(const struct stats *s, double p)
{
	size_t k;

	if (s->n == 0)
		return 0;
	k = (size_t)(p / 100.0 * s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static void
st_sort(struct stats *s)
{
	qsort(s->v, s->n, sizeof(double), cmp_double);
}

static void
st_free(struct stats *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* --------------------------------------------------------------- results */

enum unit { U_US, U_MB };

struct result {
	char	 name[40];
	char	 what[160];
	enum unit unit;
	size_t	 n;
	double	 p50, p90, p99, max, min;
	double	 rate;		/* per second; 0: not a throughput scenario */
	char	 rate_unit[16];
	char	 target[64];
	int	 met;		/* 1 met, 0 missed, -1 no target */
	unsigned errors;
	char	 extra[512];	/* more JSON members, without braces */
};

static struct result results[64];
static int nresults;

static struct result *
res_new(const char *name, const char *what, enum unit u)
{
	struct result *r;

	if (nresults == (int)(sizeof(results) / sizeof(results[0]))) {
		fprintf(stderr, "pxbench: too many results\n");
		exit(2);
	}
	r = &results[nresults++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->what, sizeof(r->what), "%s", what);
	r->unit = u;
	r->met = -1;
	return r;
}

static void
res_stats(struct result *r, struct stats *s)
{
	st_sort(s);
	r->n = s->n;
	r->p50 = st_pct(s, 50);
	r->p90 = st_pct(s, 90);
	r->p99 = st_pct(s, 99);
	r->max = s->n ? s->v[s->n - 1] : 0;
	r->min = s->n ? s->v[0] : 0;
}

static void __attribute__((format(printf, 2, 3)))
res_extra(struct result *r, const char *fmt, ...)
{
	size_t l = strlen(r->extra);
	va_list ap;

	if (l > 0 && l + 2 < sizeof(r->extra)) {
		strcat(r->extra, ", ");
		l += 2;
	}
	va_start(ap, fmt);
	vsnprintf(r->extra + l, sizeof(r->extra) - l, fmt, ap);
	va_end(ap);
}

static const char *
fmt_val(char *buf, size_t len, double v, enum unit u)
{
	if (u == U_MB)
		snprintf(buf, len, "%.2f MB", v);
	else if (v < 10)
		snprintf(buf, len, "%.1f us", v);
	else if (v < 1000)
		snprintf(buf, len, "%.0f us", v);
	else if (v < 1e6)
		snprintf(buf, len, "%.2f ms", v / 1e3);
	else
		snprintf(buf, len, "%.3f s", v / 1e6);
	return buf;
}

static void
res_print(const struct result *r)
{
	char a[32], b[32], c[32], d[32];

	if (quiet)
		return;
	fprintf(stderr, "  %-22s n=%-5zu p50=%-10s p90=%-10s p99=%-10s max=%-10s",
	    r->name, r->n, fmt_val(a, sizeof(a), r->p50, r->unit),
	    fmt_val(b, sizeof(b), r->p90, r->unit), fmt_val(c, sizeof(c), r->p99, r->unit),
	    fmt_val(d, sizeof(d), r->max, r->unit));
	if (r->rate > 0)
		fprintf(stderr, " %.1f %s", r->rate, r->rate_unit);
	if (r->errors)
		fprintf(stderr, " ERRORS=%u", r->errors);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ HTTP */

struct conn {
	int	 fd;
	char	*buf;
	size_t	 cap, len;	/* bytes in buf */
	char	*req;
	size_t	 reqcap;
};

struct resp {
	int	 status;
	char	*body;		/* inside the connection's buffer, NUL-terminated */
	size_t	 blen;
};

static int
conn_connect(struct conn *c)
{
	struct sockaddr_in sa;
	int one = 1;

	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static void
conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void
conn_free(struct conn *c)
{
	conn_close(c);
	free(c->buf);
	free(c->req);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more into c->buf; -1 on error or end of stream. */
static int
conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 262144;
		c->buf = xrealloc(c->buf, c->cap);
	}
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

static char *
memfind(char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle));
}

/* Decodes a chunked body in place once it is complete; returns its length,
 * or -1 (nothing moved) while it is incomplete. */
static long
dechunk(char *p, size_t n)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t in = 0, out = 0;

		for (;;) {
			char *crlf = memfind(p + in, n - in, "\r\n");
			unsigned long sz;

			if (crlf == NULL)
				return -1;
			sz = strtoul(p + in, NULL, 16);
			in = (size_t)(crlf - p) + 2;
			if (sz == 0) {
				if (memfind(p + in, n - in, "\r\n") == NULL)
					return -1;
				if (pass == 1)
					return (long)out;
				break;
			}
			if (n - in < sz + 2)
				return -1;
			if (pass == 1)
				memmove(p + out, p + in, sz);
			out += sz;
			in += sz + 2;
		}
	}
	return -1;
}

/*
 * One request, one response, on a kept connection (opened on first use, and
 * again after the server closed it).  Returns 0 with *r filled, or -1.
 */
static int
http_do(struct conn *c, const char *method, const char *path, const char *body,
    size_t blen, struct resp *r)
{
	size_t need = blen + 256, hdr_end, clen = 0;
	int chunked = 0, close_after = 0, have_clen = 0, attempt;
	char *h, *line;
	int hl;

	if (c->reqcap < need) {
		c->reqcap = need;
		c->req = xrealloc(c->req, need);
	}
	hl = snprintf(c->req, c->reqcap,
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
	    method, path, body ? "Content-Type: application/json\r\n" : "", blen);
	if (blen)
		memcpy(c->req + hl, body, blen);
	for (attempt = 0;; attempt++) {
		if (c->fd < 0 && conn_connect(c) == -1)
			return -1;
		if (write_all(c->fd, c->req, (size_t)hl + blen) == 0)
			break;
		conn_close(c);
		if (attempt == 1)
			return -1;
	}
	c->len = 0;
	for (;;) {
		if (c->len >= 4 && (h = memfind(c->buf, c->len, "\r\n\r\n")) != NULL)
			break;
		if (conn_fill(c) == -1)
			goto fail;
	}
	hdr_end = (size_t)(h - c->buf) + 4;
	c->buf[hdr_end - 2] = '\0';
	if (sscanf(c->buf, "HTTP/1.%*d %d", &r->status) != 1)
		goto fail;
	for (line = strstr(c->buf, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
		const char *l = line + 2;

		if (strncasecmp(l, "content-length:", 15) == 0) {
			clen = strtoul(l + 15, NULL, 10);
			have_clen = 1;
		} else if (strncasecmp(l, "transfer-encoding:", 18) == 0 &&
		    strstr(l, "chunked") != NULL)
			chunked = 1;
		else if (strncasecmp(l, "connection:", 11) == 0 &&
		    strncasecmp(l + 11 + strspn(l + 11, " "), "close", 5) == 0)
			close_after = 1;
	}
	if (r->status == 204 || r->status == 304 || r->status / 100 == 1) {
		clen = 0;	/* no body, whatever the headers say */
	} else if (chunked) {
		long n;

		for (;;) {
			if (c->len > hdr_end &&
			    (n = dechunk(c->buf + hdr_end, c->len - hdr_end)) >= 0)
				break;
			if (conn_fill(c) == -1)
				goto fail;
		}
		clen = (size_t)n;
	} else if (have_clen) {
		while (c->len - hdr_end < clen)
			if (conn_fill(c) == -1)
				goto fail;
	} else {
		while (conn_fill(c) == 0)
			;
		clen = c->len - hdr_end;
		close_after = 1;
	}
	r->body = c->buf + hdr_end;
	r->blen = clen;
	r->body[clen] = '\0';
	if (close_after)
		conn_close(c);
	return 0;
fail:
	conn_close(c);
	return -1;
}

/* Appends s as a JSON string (quotes included) to buf. */
static size_t
json_quote(char *out, size_t cap, const char *s)
{
	size_t o = 0;

#define PUT(ch) do { if (o + 1 < cap) out[o] = (ch); o++; } while (0)
	PUT('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			PUT('\\');
			PUT((char)ch);
		} else if (ch == '\n') {
			PUT('\\');
			PUT('n');
		} else if (ch < 0x20) {
			char u[8];

			snprintf(u, sizeof(u), "\\u%04x", ch);
			for (char *q = u; *q; q++)
				PUT(*q);
		} else
			PUT((char)ch);
	}
	PUT('"');
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
#undef PUT
	return o;
}

/*
 * Finds "key": "value" at any level of a flat JSON object and copies the
 * unescaped value (\uXXXX kept as '?') into out.  Returns its length, or -1.
 */
static long
json_get(const char *body, const char *key, char *out, size_t cap)
{
	char k[64];
	const char *p;
	size_t o = 0, total = 0;

	snprintf(k, sizeof(k), "\"%s\"", key);
	if ((p = strstr(body, k)) == NULL)
		return -1;
	p += strlen(k);
	p += strspn(p, " \t");
	if (*p++ != ':')
		return -1;
	p += strspn(p, " \t");
	if (*p++ != '"')
		return -1;
	for (; *p && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\') {
			p++;
			switch (*p) {
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case 'u': ch = '?'; p += 4; break;
			case '\0': return -1;
			default: ch = *p;
			}
		}
		if (o + 1 < cap)
			out[o++] = ch;
		total++;
	}
	if (cap)
		out[o] = '\0';
	return *p == '"' ? (long)total : -1;
}

/* POST /execute {"code": code[, "id": sid]}.  new_sid gets the reply's id. */
static int
px_exec(struct conn *c, const char *sid, const char *code, struct resp *r, char *new_sid)
{
	static __thread char *body;
	static __thread size_t bodycap;
	size_t need = strlen(code) * 6 + 128, o;

	if (bodycap < need) {
		bodycap = need;
		body = xrealloc(body, need);
	}
	o = (size_t)snprintf(body, bodycap, "{\"code\": ");
	o += json_quote(body + o, bodycap - o, code);
	if (sid != NULL)
		o += (size_t)snprintf(body + o, bodycap - o, ", \"id\": \"%s\"}", sid);
	else
		o += (size_t)snprintf(body + o, bodycap - o, "}");
	if (http_do(c, "POST", "/execute", body, o, r) == -1)
		return -1;
	if (new_sid != NULL) {
		char tmp[64];

		if (json_get(r->body, "id", tmp, sizeof(tmp)) != SID_LEN)
			return -1;
		memcpy(new_sid, tmp, SID_LEN + 1);
	}
	return 0;
}

/* The reply is 200 and its stdout is exactly want. */
static int
ok_stdout(const struct resp *r, const char *want)
{
	char out[256];
	long n;

	if (r->status != 200)
		return 0;
	n = json_get(r->body, "stdout", out, sizeof(out));
	return n == (long)strlen(want) && strcmp(out, want) == 0;
}

static int
px_delete(struct conn *c, const char *sid)
{
	char path[128];
	struct resp r;

	snprintf(path, sizeof(path), "/sessions/%s", sid);
	if (http_do(c, "DELETE", path, NULL, 0, &r) == -1)
		return -1;
	return r.status == 204 ? 0 : -1;
}

/* pyexec_pool_ready from GET /metrics, or -1. */
static long
px_pool_ready(struct conn *c)
{
	struct resp r;
	char *p;

	if (http_do(c, "GET", "/metrics", NULL, 0, &r) == -1 || r.status != 200)
		return -1;
	if ((p = strstr(r.body, "\npyexec_pool_ready ")) == NULL)
		return -1;
	return strtol(p + 19, NULL, 10);
}

/* Waits until the warm pool is full again; returns the wait in µs or -1. */
static double
wait_pool_full(struct conn *c, double max_us)
{
	double t0 = now_us();
	long n;

	for (;;) {
		if ((n = px_pool_ready(c)) < 0)
			return -1;
		if ((unsigned long)n >= pool_size)
			return now_us() - t0;
		if (now_us() - t0 > max_us)
			return -1;
		sleep_us(2000);
	}
}

/* A new session (optionally running code); its id into sid. */
static int
px_new_session(struct conn *c, const char *code, char *sid)
{
	struct resp r;

	if (px_exec(c, NULL, code ? code : "", &r, sid) == -1 || r.status != 200)
		return -1;
	return 0;
}

/* ------------------------------------------------------ (baseline) spawn */

static double
spawn_once(const char *code)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "python3.11", "-c", (char *)code, NULL };
	double t0, t;
	pid_t pid;
	int st;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = now_us();
	if (posix_spawn(&pid, PYTHON, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	t = now_us() - t0;
	posix_spawn_file_actions_destroy(&fa);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -1;
}

static double base_print1, base_pandas;

static void
spawn_bench(const char *name, const char *what, const char *code, int warm, int n,
    double *median)
{
	struct stats s = { 0 };
	struct result *r = res_new(name, what, U_US);
	int i;

	for (i = 0; i < warm + n; i++) {
		double t = spawn_once(code);

		if (t < 0) {
			r->errors++;
			continue;
		}
		if (i >= warm)
			st_add(&s, t);
	}
	res_stats(r, &s);
	*median = r->p50;
	snprintf(r->target, sizeof(r->target), "baseline");
	res_print(r);
	st_free(&s);
}

/*
 * What a page costs a forked child here, the unit c2 and d are made of: in a
 * child of this process, which has written 64 MiB of private memory first
 * (as a session is a child of the zygote), the time per page to write one
 * byte into each of 512 pages it shares with its parent (a copy-on-write
 * fault each), or to have 512 such pages copied by one madvise call (what a
 * new session does with the pages it is known to write).  Microseconds per
 * page, or -1.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif
#define FAULT_REGION	(64ul << 20)
#define FAULT_PAGES	512
#define FAULT_STRIDE	8		/* pages apart, for the faults */

static double
fault_once(volatile char *region, size_t pg, int batch)
{
	double t0, t = -1;
	int p[2], st;
	pid_t pid;

	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		t0 = now_us();
		if (batch) {
			if (madvise((void *)region, FAULT_PAGES * pg, MADV_POPULATE_WRITE) == -1)
				_exit(1);
		} else {
			for (size_t i = 0; i < FAULT_PAGES; i++)
				region[i * FAULT_STRIDE * pg]++;
		}
		t = (now_us() - t0) / FAULT_PAGES;
		_exit(write(p[1], &t, sizeof(t)) == (ssize_t)sizeof(t) ? 0 : 1);
	}
	close(p[1]);
	if (pid == -1 || read(p[0], &t, sizeof(t)) != (ssize_t)sizeof(t))
		t = -1;
	close(p[0]);
	if (pid > 0) {
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			t = -1;
	}
	return t;
}

static double base_fault, base_copy;

static void
fault_bench(void)
{
	static const struct { const char *name, *what; int batch; double *median; } k[] = {
		{ "machine_cow_fault", "a forked child writes a byte to a page it shares "
		  "(copy-on-write fault), us per page", 0, &base_fault },
		{ "machine_batched_copy", "a forked child has 512 shared pages copied by one "
		  "madvise(MADV_POPULATE_WRITE), us per page", 1, &base_copy },
	};
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char *region;

	region = mmap(NULL, FAULT_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (region == MAP_FAILED) {
		perror("mmap");
		failed = 1;
		return;
	}
	memset(region, 1, FAULT_REGION);
	for (size_t j = 0; j < sizeof(k) / sizeof(k[0]); j++) {
		struct result *r = res_new(k[j].name, k[j].what, U_US);
		struct stats s = { 0 };

		for (int i = 0; i < 2 + 15; i++) {
			double t = fault_once(region, pg, k[j].batch);

			if (t < 0)
				r->errors++;
			else if (i >= 2)
				st_add(&s, t);
		}
		res_stats(r, &s);
		*k[j].median = r->p50;
		snprintf(r->target, sizeof(r->target), "baseline");
		res_print(r);
		st_free(&s);
	}
	munmap(region, FAULT_REGION);
}

static void
sc_spawn(void)
{
	note("== baseline: spawning %s", PYTHON);
	spawn_bench("spawn_python_print1", "posix_spawn + wait of /usr/bin/python3.11 -c 'print(1)'",
	    CODE_PRINT1, 2, 30, &base_print1);
	spawn_bench("spawn_python_pandas", "posix_spawn + wait of /usr/bin/python3.11 -c '<pandas code of (d)>'",
	    CODE_PANDAS, 1, 4, &base_pandas);
	note("== baseline: a page in a forked child");
	fault_bench();
}

/* ------------------------------------------------ (a) one session, 1 client */

/* n executions of code in session sid after warm ones; latencies into s. */
static unsigned
exec_series(struct conn *c, const char *sid, const char *code, const char *want,
    size_t want_len, int warm, int n, struct stats *s)
{
	unsigned errors = 0;
	struct resp r;
	int i;

	for (i = 0; i < warm + n; i++) {
		double t0 = now_us(), t;
		int ok;

		ok = px_exec(c, sid, code, &r, NULL) == 0;
		t = now_us() - t0;
		if (ok)
			ok = want ? ok_stdout(&r, want) : r.status == 200 &&
			    json_get(r.body, "stdout", NULL, 0) == (long)want_len;
		if (!ok) {
			errors++;
			continue;
		}
		if (i >= warm)
			st_add(s, t);
	}
	return errors;
}

static void
sc_exec(void)
{
	struct conn c;
	struct stats s = { 0 };
	struct result *r;
	char sid[SID_LEN + 1];

	note("== (a) print(1) in one existing session, 1 client");
	conn_init(&c);
	r = res_new("a_exec_1client", "print(1) in one existing session, 1 client, keep-alive", U_US);
	snprintf(r->target, sizeof(r->target), "p50 <= 200 us, p99 <= 1 ms");
	if (px_new_session(&c, NULL, sid) == -1) {
		fprintf(stderr, "pxbench: (a) cannot create a session\n");
		failed = 1;
		conn_free(&c);
		return;
	}
	r->errors = exec_series(&c, sid, CODE_PRINT1, "1\n", 0, 300, 3000, &s);
	res_stats(r, &s);
	{
		double sum = 0;

		for (size_t i = 0; i < s.n; i++)
			sum += s.v[i];
		r->rate = sum > 0 ? s.n / (sum / 1e6) : 0;	/* back to back, 1 client */
	}
	snprintf(r->rate_unit, sizeof(r->rate_unit), "req/s");
	r->met = r->p50 <= 200 && r->p99 <= 1000 && r->errors == 0;
	if (base_print1 > 0)
		res_extra(r, "\"spawn_ratio\": %.1f", base_print1 / r->p50);
	res_print(r);
	(void)px_delete(&c, sid);
	st_free(&s);
	conn_free(&c);
}

/* ------------------------------------- (b) 16 connections over 8 sessions */

struct tput_arg {
	const char	*sid;
	double		 t_start, t_end;	/* measured window */
	atomic_int	*stop;
	struct stats	 lat;
	unsigned long	 done, errors;
};

static void *
tput_thread(void *p)
{
	struct tput_arg *a = p;
	struct conn c;
	struct resp r;

	conn_init(&c);
	while (!atomic_load(a->stop)) {
		double t0 = now_us(), t1;
		int ok = px_exec(&c, a->sid, CODE_PRINT1, &r, NULL) == 0 && ok_stdout(&r, "1\n");

		t1 = now_us();
		if (t1 < a->t_start || t1 > a->t_end)
			continue;
		if (!ok) {
			a->errors++;
			continue;
		}
		a->done++;
		st_add(&a->lat, t1 - t0);
	}
	conn_free(&c);
	return NULL;
}

static void
sc_tput(void)
{
	enum { NCONN = 16, NSESS = 8 };
	const double warm = 0.5e6, dur = 5e6;
	char sids[NSESS][SID_LEN + 1];
	struct tput_arg args[NCONN];
	pthread_t th[NCONN];
	atomic_int stop = 0;
	struct stats all = { 0 };
	struct result *r;
	struct conn c;
	unsigned long done = 0, errors = 0;
	double t0;
	int i;

	note("== (b) %d connections over %d sessions, %.0f s", NCONN, NSESS, dur / 1e6);
	conn_init(&c);
	for (i = 0; i < NSESS; i++)
		if (px_new_session(&c, NULL, sids[i]) == -1) {
			fprintf(stderr, "pxbench: (b) cannot create sessions\n");
			failed = 1;
			conn_free(&c);
			return;
		}
	t0 = now_us();
	for (i = 0; i < NCONN; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].sid = sids[i % NSESS];
		args[i].t_start = t0 + warm;
		args[i].t_end = t0 + warm + dur;
		args[i].stop = &stop;
		pthread_create(&th[i], NULL, tput_thread, &args[i]);
	}
	sleep_us(warm + dur);
	atomic_store(&stop, 1);
	for (i = 0; i < NCONN; i++) {
		pthread_join(th[i], NULL);
		st_merge(&all, &args[i].lat);
		done += args[i].done;
		errors += args[i].errors;
		st_free(&args[i].lat);
	}
	r = res_new("b_16conn_8sess", "print(1), 16 keep-alive connections over 8 sessions, 5 s after 0.5 s warm-up", U_US);
	res_stats(r, &all);
	r->errors = (unsigned)errors;
	r->rate = done / (dur / 1e6);
	snprintf(r->rate_unit, sizeof(r->rate_unit), "exec/s");
	snprintf(r->target, sizeof(r->target), ">= 8000 exec/s");
	r->met = r->rate >= 8000 && errors == 0;
	res_print(r);
	for (i = 0; i < NSESS; i++)
		(void)px_delete(&c, sids[i]);
	st_free(&all);
	conn_free(&c);
}

/* ---------------------------------- (c), (d) a new session per request */

/*
 * Before each timed request, waits until GET /metrics reports the pool full
 * (pyexec_pool_ready == pool_size); after it, deletes the session.  Neither
 * the wait nor the DELETE is timed.
 */
static void
new_paced(const char *name, const char *what, const char *code, const char *want,
    int warm, int n, double target_us, double baseline)
{
	struct conn c, mc;
	struct stats s = { 0 }, waits = { 0 };
	struct result *r = res_new(name, what, U_US);
	unsigned notfull = 0;
	int i;

	conn_init(&c);
	conn_init(&mc);
	for (i = 0; i < warm + n; i++) {
		char sid[SID_LEN + 1];
		struct resp rr;
		double w = wait_pool_full(&mc, 3e6), t0, t;
		int ok;

		if (w < 0)
			notfull++;
		else
			st_add(&waits, w);
		t0 = now_us();
		ok = px_exec(&c, NULL, code, &rr, sid) == 0;
		t = now_us() - t0;
		ok = ok && ok_stdout(&rr, want);
		if (ok && px_delete(&c, sid) == -1)
			ok = 0;
		if (!ok) {
			r->errors++;
			continue;
		}
		if (i >= warm)
			st_add(&s, t);
	}
	res_stats(r, &s);
	snprintf(r->target, sizeof(r->target), "p50 <= %.0f ms", target_us / 1e3);
	r->met = r->p50 <= target_us && r->errors == 0;
	st_sort(&waits);
	res_extra(r, "\"pool_refill_wait_p50_us\": %.0f, \"pool_not_full\": %u",
	    st_pct(&waits, 50), notfull);
	if (baseline > 0)
		res_extra(r, "\"spawn_ratio\": %.1f", baseline / r->p50);
	res_print(r);
	st_free(&s);
	st_free(&waits);
	conn_free(&c);
	conn_free(&mc);
}

static void
sc_new(void)
{
	note("== (c) a new session per request, print(1), warm pool (%u)", pool_size);
	new_paced("c_new_session_warm", "new session per request running print(1); each sent once the pool is full again; DELETE untimed",
	    CODE_PRINT1, "1\n", 5, 100, 1000, base_print1);
}

static void
sc_pandas(void)
{
	note("== (d) a new session running the pandas code, warm pool");
	new_paced("d_new_session_pandas", "new session per request: import pandas, sum a 1000-row DataFrame; paced like (c)",
	    CODE_PANDAS, "499500\n", 3, 30, 8000, base_pandas);
}

/* ------------------------------------ (c2) new sessions, pool exhausted */

struct churn_arg {
	double		 t_start, t_end;
	atomic_int	*stop;
	struct stats	 lat, del;
	unsigned long	 done, errors, full;
};

static void *
churn_thread(void *p)
{
	struct churn_arg *a = p;
	struct conn c;

	conn_init(&c);
	while (!atomic_load(a->stop)) {
		char sid[SID_LEN + 1];
		struct resp r;
		double t0 = now_us(), t1, t2;
		int ok = px_exec(&c, NULL, CODE_PRINT1, &r, sid) == 0;
		int in;

		t1 = now_us();
		in = t1 >= a->t_start && t1 <= a->t_end;
		if (ok && r.status == 503) {
			if (in)
				a->full++;
			sleep_us(1000);
			continue;
		}
		ok = ok && ok_stdout(&r, "1\n");
		if (ok) {
			ok = px_delete(&c, sid) == 0;
			t2 = now_us();
			if (in)
				st_add(&a->del, t2 - t1);
		}
		if (!in)
			continue;
		if (!ok) {
			a->errors++;
			continue;
		}
		a->done++;
		st_add(&a->lat, t1 - t0);
	}
	conn_free(&c);
	return NULL;
}

static void
sc_churn(void)
{
	enum { NCLI = 4 };
	const double warm = 0.5e6, dur = 4e6;
	struct churn_arg args[NCLI];
	pthread_t th[NCLI];
	atomic_int stop = 0;
	struct stats lat = { 0 }, del = { 0 };
	struct result *r;
	unsigned long done = 0, errors = 0, full = 0;
	struct conn mc;
	long ready_end;
	double t0;
	int i;

	note("== (c2) sustained new sessions, %d clients creating + deleting, %.0f s", NCLI, dur / 1e6);
	t0 = now_us();
	for (i = 0; i < NCLI; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].t_start = t0 + warm;
		args[i].t_end = t0 + warm + dur;
		args[i].stop = &stop;
		pthread_create(&th[i], NULL, churn_thread, &args[i]);
	}
	sleep_us(warm + dur / 2);
	conn_init(&mc);
	ready_end = px_pool_ready(&mc);		/* mid-run: is the pool empty? */
	sleep_us(dur / 2);
	atomic_store(&stop, 1);
	for (i = 0; i < NCLI; i++) {
		pthread_join(th[i], NULL);
		st_merge(&lat, &args[i].lat);
		st_merge(&del, &args[i].del);
		done += args[i].done;
		errors += args[i].errors;
		full += args[i].full;
		st_free(&args[i].lat);
		st_free(&args[i].del);
	}
	r = res_new("c2_new_session_sustained", "4 clients each creating a session (print(1)) then deleting it, as fast as they can, 4 s after 0.5 s", U_US);
	res_stats(r, &lat);
	r->errors = (unsigned)errors;
	r->rate = done / (dur / 1e6);
	snprintf(r->rate_unit, sizeof(r->rate_unit), "sessions/s");
	snprintf(r->target, sizeof(r->target), ">= 150 sessions/s");
	r->met = r->rate >= 150 && errors == 0;
	st_sort(&del);
	res_extra(r, "\"delete_p50_us\": %.0f, \"pool_ready_midrun\": %ld, \"max_sessions_503\": %lu",
	    st_pct(&del, 50), ready_end, full);
	res_print(r);
	st_free(&lat);
	st_free(&del);
	/* let the pool refill before whatever comes next */
	(void)wait_pool_full(&mc, 5e6);
	conn_free(&mc);
}

/* ------------------------------------------------ memory, from the host */

struct memrec {
	double	priv_kb, pss_kb, rss_kb, cg_bytes, cg_rss_bytes;
	int	nprocs;
};

static int
smaps_rollup(int pid, struct memrec *m)
{
	char path[64], line[256];
	FILE *f;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Private_Clean: %ld kB", &v) == 1 ||
		    sscanf(line, "Private_Dirty: %ld kB", &v) == 1)
			m->priv_kb += v;
		else if (sscanf(line, "Pss: %ld kB", &v) == 1)
			m->pss_kb += v;
		else if (sscanf(line, "Rss: %ld kB", &v) == 1)
			m->rss_kb += v;
	}
	fclose(f);
	m->nprocs++;
	return 0;
}

/* The memory cgroup directory of pid (v1 memory hierarchy, or v2). */
static int
pid_memcg(int pid, char *dir, size_t len, int *v2)
{
	char path[64], line[512];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		line[strcspn(line, "\n")] = '\0';
		*c2 = '\0';
		if (strcmp(c1 + 1, "memory") == 0 || strstr(c1 + 1, ",memory") ||
		    strstr(c1 + 1, "memory,")) {
			snprintf(dir, len, "/sys/fs/cgroup/memory%s", c2 + 1);
			*v2 = 0;
			found = 1;
			break;
		}
		if (strncmp(line, "0:", 2) == 0 && c1[1] == '\0' && !found) {
			snprintf(dir, len, "/sys/fs/cgroup%s", c2 + 1);
			*v2 = 1;
			found = 2;	/* keep looking for a v1 memory line */
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

static double
read_num(const char *path)
{
	FILE *f = fopen(path, "r");
	double v = -1;

	if (f != NULL) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* One key of a memory.stat file. */
static double
read_stat(const char *dir, const char *key)
{
	char path[512], k[64];
	double v, out = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fscanf(f, "%63s %lf", k, &v) == 2)
		if (strcmp(k, key) == 0) {
			out = v;
			break;
		}
	fclose(f);
	return out;
}

/*
 * The memory of the session whose interpreter runs as uid: finds a process of
 * that uid in /proc, then sums smaps_rollup over every process of its memory
 * cgroup (cgroup.procs), and reads the cgroup's own usage.
 */
static int
session_mem(unsigned uid, struct memrec *m)
{
	char dir[400], path[512], cgname[64];
	DIR *d;
	struct dirent *e;
	int pid = -1, v2 = 0;
	FILE *f;

	memset(m, 0, sizeof(*m));
	/* Other stacks on the machine give out the same uids: the process
	 * wanted has this uid and sits in one of this stack's cgroups. */
	snprintf(cgname, sizeof(cgname), "/pyexec-%d/s", port);
	if ((d = opendir("/proc")) == NULL)
		return -1;
	while (pid < 0 && (e = readdir(d)) != NULL) {
		char line[128];
		unsigned ruid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "Uid: %u", &ruid) == 1) {
				if (ruid == uid &&
				    pid_memcg(atoi(e->d_name), dir, sizeof(dir), &v2) == 0 &&
				    strstr(dir, cgname) != NULL)
					pid = atoi(e->d_name);
				break;
			}
		fclose(f);
	}
	closedir(d);
	if (pid < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((f = fopen(path, "r")) != NULL) {
		int p;

		while (fscanf(f, "%d", &p) == 1)
			(void)smaps_rollup(p, m);
		fclose(f);
	}
	if (m->nprocs == 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, v2 ? "memory.current" : "memory.usage_in_bytes");
	m->cg_bytes = read_num(path);
	m->cg_rss_bytes = read_stat(dir, v2 ? "anon" : "total_rss");
	return 0;
}

/* ----------------------------------- (e), (g) sessions alive, memory, scaling */

struct live {
	char	 (*sid)[SID_LEN + 1];
	unsigned *uid;
	int	 n, cap;
};

/* Creates sessions that import numpy and pandas until there are want. */
static int
live_grow(struct conn *c, struct live *L, int want)
{
	while (L->n < want) {
		char out[64];
		struct resp r;

		if (L->n == L->cap) {
			L->cap = L->cap ? L->cap * 2 : 64;
			L->sid = xrealloc(L->sid, L->cap * sizeof(*L->sid));
			L->uid = xrealloc(L->uid, L->cap * sizeof(*L->uid));
		}
		if (px_exec(c, NULL, CODE_IMPORTS, &r, L->sid[L->n]) == -1 || r.status != 200 ||
		    json_get(r.body, "stdout", out, sizeof(out)) <= 0)
			return -1;
		L->uid[L->n] = (unsigned)strtoul(out, NULL, 10);
		L->n++;
	}
	return 0;
}

/* Memory of every live session: private MB and cgroup MB into stats. */
static unsigned
live_mem(struct live *L, struct stats *priv, struct stats *cg, struct stats *cgrss,
    struct stats *pss)
{
	unsigned errors = 0;

	for (int i = 0; i < L->n; i++) {
		struct memrec m;

		if (session_mem(L->uid[i], &m) == -1) {
			errors++;
			continue;
		}
		st_add(priv, m.priv_kb / 1024.0);
		st_add(pss, m.pss_kb / 1024.0);
		if (m.cg_bytes >= 0)
			st_add(cg, m.cg_bytes / 1048576.0);
		if (m.cg_rss_bytes >= 0)
			st_add(cgrss, m.cg_rss_bytes / 1048576.0);
	}
	return errors;
}

static void
mem_result(const char *name, const char *what, struct live *L, int is_target)
{
	struct stats priv = { 0 }, cg = { 0 }, cgrss = { 0 }, pss = { 0 };
	struct result *r = res_new(name, what, U_MB);

	r->errors = live_mem(L, &priv, &cg, &cgrss, &pss);
	res_stats(r, &priv);
	st_sort(&cg);
	st_sort(&cgrss);
	st_sort(&pss);
	res_extra(r, "\"sessions\": %d, \"cgroup_usage_p50_mb\": %.2f, \"cgroup_usage_max_mb\": %.2f, "
	    "\"cgroup_rss_p50_mb\": %.2f, \"pss_p50_mb\": %.2f", L->n, st_pct(&cg, 50),
	    cg.n ? cg.v[cg.n - 1] : 0, st_pct(&cgrss, 50), st_pct(&pss, 50));
	if (is_target) {
		snprintf(r->target, sizeof(r->target), "<= 3 MB private each (median)");
		r->met = r->p50 <= 3.0 && r->errors == 0;
	}
	res_print(r);
	if (!quiet)
		fprintf(stderr, "  %-22s cgroup usage p50 %.2f MB (rss %.2f MB), Pss p50 %.2f MB\n", "",
		    st_pct(&cg, 50), st_pct(&cgrss, 50), st_pct(&pss, 50));
	st_free(&priv);
	st_free(&cg);
	st_free(&cgrss);
	st_free(&pss);
}

static void
sc_scale(void)
{
	static const int levels[] = { 1, 10, 40, 200 };
	static const size_t sizes[] = { 1, 65536, 1048576 };
	static const int size_n[] = { 500, 200, 40 };
	struct live L = { 0 };
	struct conn c;
	char name[64], what[160];
	size_t li;

	conn_init(&c);
	note("== (e) + (g) live sessions (each imported numpy and pandas): latency of print(1) and memory");
	for (li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
		struct stats s = { 0 };
		struct result *r;

		if (live_grow(&c, &L, levels[li]) == -1) {
			fprintf(stderr, "pxbench: (g) cannot grow to %d sessions (max_sessions?)\n",
			    levels[li]);
			failed = 1;
			break;
		}
		sleep_us(200e3);	/* let the pool refill: idle state */
		snprintf(name, sizeof(name), "g_exec_%d_sessions", levels[li]);
		snprintf(what, sizeof(what), "print(1), 1 client, in one of %d live sessions", levels[li]);
		r = res_new(name, what, U_US);
		r->errors = exec_series(&c, L.sid[0], CODE_PRINT1, "1\n", 0, 100, 1000, &s);
		res_stats(r, &s);
		res_print(r);
		st_free(&s);
		snprintf(name, sizeof(name), "g_mem_%d_sessions", levels[li]);
		snprintf(what, sizeof(what), "private memory per session (Private_Clean+Private_Dirty), %d idle sessions with numpy+pandas imported", levels[li]);
		mem_result(name, what, &L, 0);
		if (levels[li] == 40)
			mem_result("e_mem_40_sessions", "private memory per idle session, 40 sessions with numpy+pandas imported (smaps_rollup of the session's cgroup.procs)", &L, 1);
	}
	for (int i = 0; i < L.n; i++)
		(void)px_delete(&c, L.sid[i]);

	note("== (g) output size, 1 client, one session");
	{
		char sid[SID_LEN + 1];

		if (px_new_session(&c, NULL, sid) == -1) {
			failed = 1;
		} else {
			for (li = 0; li < sizeof(sizes) / sizeof(sizes[0]); li++) {
				struct stats s = { 0 };
				struct result *r;
				char code[96];

				snprintf(code, sizeof(code), "import sys; sys.stdout.write(\"x\" * %zu)", sizes[li]);
				snprintf(name, sizeof(name), "g_output_%zu", sizes[li]);
				snprintf(what, sizeof(what), "sys.stdout.write of %zu bytes in one session, 1 client", sizes[li]);
				r = res_new(name, what, U_US);
				r->errors = exec_series(&c, sid, code, NULL, sizes[li], 10, size_n[li], &s);
				res_stats(r, &s);
				if (r->p50 > 0)
					res_extra(r, "\"mb_per_s\": %.1f", sizes[li] / r->p50);
				res_print(r);
				st_free(&s);
			}
			(void)px_delete(&c, sid);
		}
	}
	free(L.sid);
	free(L.uid);
	conn_free(&c);
}

/* ------------------------------------------------ (f) execution timeout */

struct to_arg {
	char	 sid[SID_LEN + 1];
	double	 t;
	int	 ok;
};

static void *
to_thread(void *p)
{
	struct to_arg *a = p;
	struct conn c;
	struct resp r;
	char err[64];
	double t0;

	conn_init(&c);
	t0 = now_us();
	a->ok = px_exec(&c, a->sid, "while True: pass", &r, NULL) == 0 && r.status == 200 &&
	    json_get(r.body, "error", err, sizeof(err)) > 0 &&
	    strcmp(err, "execution timeout") == 0;
	a->t = now_us() - t0;
	conn_free(&c);
	return NULL;
}

static void
sc_timeout(void)
{
	enum { RUNS = 10, PAR = 5 };
	struct to_arg args[RUNS];
	pthread_t th[RUNS];
	struct stats s = { 0 };
	struct result *r;
	struct conn c;
	int i, w;

	note("== (f) while True: pass -> execution timeout, %d runs, %d at a time", RUNS, PAR);
	conn_init(&c);
	r = res_new("f_timeout", "while True: pass in an existing session, answered as execution timeout; 10 runs, 5 sessions at a time", U_US);
	for (i = 0; i < RUNS; i++)
		if (px_new_session(&c, NULL, args[i].sid) == -1) {
			fprintf(stderr, "pxbench: (f) cannot create sessions\n");
			failed = 1;
			conn_free(&c);
			return;
		}
	for (w = 0; w < RUNS; w += PAR) {
		for (i = w; i < w + PAR && i < RUNS; i++)
			pthread_create(&th[i], NULL, to_thread, &args[i]);
		for (i = w; i < w + PAR && i < RUNS; i++)
			pthread_join(th[i], NULL);
	}
	for (i = 0; i < RUNS; i++) {
		if (args[i].ok)
			st_add(&s, args[i].t);
		else
			r->errors++;
		(void)px_delete(&c, args[i].sid);	/* 404 if the session was ended */
	}
	res_stats(r, &s);
	snprintf(r->target, sizeof(r->target), "p50 in 2.00-2.05 s");
	r->met = r->p50 >= 2.0e6 && r->p50 <= 2.05e6 && r->errors == 0;
	res_extra(r, "\"spread_us\": %.0f", r->max - r->min);
	res_print(r);
	st_free(&s);
	conn_free(&c);
}

/* ------------------------------------------------------------ the report */

static void
json_str(FILE *f, const char *s)
{
	char buf[1024];

	json_quote(buf, sizeof(buf), s);
	fputs(buf, f);
}

static void
write_json(const char *path, const char *load0, const char *load1, double secs)
{
	char tmp[600];
	struct utsname u;
	FILE *f;
	time_t t = time(NULL);
	char when[64];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		perror(tmp);
		failed = 1;
		return;
	}
	uname(&u);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"tool\": \"pxbench\",\n  \"date\": \"%s\",\n  \"rev\": ", when);
	json_str(f, rev);
	fprintf(f, ",\n  \"kernel\": ");
	json_str(f, u.release);
	fprintf(f, ",\n  \"cpus\": %ld,\n  \"loadavg_start\": \"%s\",\n  \"loadavg_end\": \"%s\",\n"
	    "  \"seconds\": %.1f,\n  \"port\": %d,\n  \"pool_size\": %u,\n"
	    "  \"baseline_spawn_print1_us\": %.0f,\n  \"baseline_spawn_pandas_us\": %.0f,\n"
	    "  \"baseline_cow_fault_us\": %.1f,\n  \"baseline_batched_copy_us\": %.1f,\n"
	    "  \"results\": [\n", sysconf(_SC_NPROCESSORS_ONLN), load0, load1, secs, port,
	    pool_size, base_print1, base_pandas, base_fault, base_copy);
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		fprintf(f, "    {\"name\": \"%s\", \"what\": ", r->name);
		json_str(f, r->what);
		fprintf(f, ", \"unit\": \"%s\", \"n\": %zu, \"p50\": %.1f, \"p90\": %.1f, "
		    "\"p99\": %.1f, \"max\": %.1f, \"min\": %.1f, \"errors\": %u",
		    r->unit == U_MB ? "MB" : "us", r->n, r->p50, r->p90, r->p99, r->max, r->min,
		    r->errors);
		if (r->rate > 0)
			fprintf(f, ", \"rate\": %.1f, \"rate_unit\": \"%s\"", r->rate, r->rate_unit);
		if (r->target[0]) {
			fprintf(f, ", \"target\": ");
			json_str(f, r->target);
		}
		if (r->met >= 0)
			fprintf(f, ", \"met\": %s", r->met ? "true" : "false");
		if (r->extra[0])
			fprintf(f, ", %s", r->extra);
		fprintf(f, "}%s\n", i + 1 < nresults ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f) != 0 || rename(tmp, path) == -1) {
		perror(path);
		failed = 1;
	}
}

static void
print_table(const char *load0, const char *load1)
{
	char a[32], b[32], c[32];

	printf("\n%-26s %11s %11s %18s  %-30s %s\n", "scenario", "median", "p99",
	    "throughput", "target", "result");
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->rate > 0)
			snprintf(c, sizeof(c), "%.0f %s", r->rate, r->rate_unit);
		else
			snprintf(c, sizeof(c), "-");
		printf("%-26s %11s %11s %18s  %-30s %s%s\n", r->name,
		    fmt_val(a, sizeof(a), r->p50, r->unit), fmt_val(b, sizeof(b), r->p99, r->unit),
		    c, r->target[0] ? r->target : "-",
		    r->met == 1 ? "met" : r->met == 0 ? "MISSED" : "-",
		    r->errors ? " (errors)" : "");
	}
	if (base_print1 > 0) {
		for (int i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			const char *b0 = strstr(r->extra, "\"spawn_ratio\": ");

			if (b0 != NULL)
				printf("ratio: spawning python3 / %-22s = %sx\n", r->name, b0 + 15);
		}
	}
	printf("load average at start %s, at end %s (%ld CPUs)\n", load0, load1,
	    sysconf(_SC_NPROCESSORS_ONLN));
	if (base_print1 > 0)	/* issue 5 measured 15.6 ms on the idle development VM */
		printf("machine speed: spawning python3 took %.1f ms here, 15.6 ms on the idle "
		    "development VM of issue 5 (%.1fx)\n", base_print1 / 1e3, base_print1 / 15.6e3);
	if (base_fault > 0 && base_copy > 0)
		printf("machine pages: in a forked child a copy-on-write fault took %.1f us per "
		    "page here, a batched copy %.1f us\n", base_fault, base_copy);
}

static void
run_one(const char *name, void (*fn)(void))
{
	double t0 = now_us();
	char la[64];

	fn();
	loadavg(la, sizeof(la));
	note("   (%s: %.1f s, load average %s)", name, (now_us() - t0) / 1e6, la);
}

static void
usage(void)
{
	fprintf(stderr, "usage: pxbench -p PORT [-P POOL_SIZE] [-o FILE.json] [-r REV] [-q] "
	    "[spawn|exec|tput|new|churn|pandas|scale|timeout ...]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct { const char *name; void (*fn)(void); } sc[] = {
		{ "spawn", sc_spawn }, { "exec", sc_exec }, { "tput", sc_tput },
		{ "new", sc_new }, { "churn", sc_churn }, { "pandas", sc_pandas },
		{ "scale", sc_scale }, { "timeout", sc_timeout },
	};
	const size_t nsc = sizeof(sc) / sizeof(sc[0]);
	const char *out = NULL;
	char load0[64], load1[64];
	double t0;
	int ch, i;

	while ((ch = getopt(argc, argv, "p:P:o:r:q")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'P': pool_size = (unsigned)atoi(optarg); break;
		case 'o': out = optarg; break;
		case 'r': rev = optarg; break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535)
		usage();
	loadavg(load0, sizeof(load0));
	t0 = now_us();
	if (optind == argc) {
		for (size_t k = 0; k < nsc; k++)
			run_one(sc[k].name, sc[k].fn);
	} else {
		for (i = optind; i < argc; i++) {
			size_t k;

			for (k = 0; k < nsc && strcmp(sc[k].name, argv[i]) != 0; k++)
				;
			if (k == nsc)
				usage();
			run_one(sc[k].name, sc[k].fn);
		}
	}
	loadavg(load1, sizeof(load1));
	print_table(load0, load1);
	if (out != NULL)
		write_json(out, load0, load1, (now_us() - t0) / 1e6);
	return failed ? 1 : 0;
}
