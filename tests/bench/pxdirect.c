/*
 * pxdirect: the same requests as pxbench, sent straight to the daemon's Unix
 * socket with the project's own client (sessions/sess_client.c), bypassing
 * nginx and pyexec-fcgi.  The difference between the two is what the HTTP
 * front (nginx + FastCGI + JSON) costs.  Root (or the socket's group) only.
 *
 *   pxdirect -s SOCKET [-P POOL_SIZE] [exec|new|pandas|churn|output ...]
 *
 * Not part of the table of `make bench`; run.sh runs it after pxbench when
 * PXBENCH_DIRECT=1, and anyone can run it by hand against a stack.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "sess_client.h"

static struct sess_client *sc;
static unsigned pool_size = 8;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * n + 0.999999);

	if (n == 0)
		return 0;
	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

static void
report(const char *name, double *v, size_t n, unsigned errors)
{
	qsort(v, n, sizeof(double), cmp_double);
	printf("direct %-24s n=%-5zu p50=%9.0f us p90=%9.0f us p99=%9.0f us max=%9.0f us%s\n",
	    name, n, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), n ? v[n - 1] : 0,
	    errors ? " ERRORS" : "");
}

static int
new_session(const char *code, uint8_t id[PROTO_ID_LEN], const char *want)
{
	struct sess_reply r;
	int ok;

	if (sess_client_exec(sc, PROTO_MODE_CODE, NULL, code, strlen(code), &r) == -1)
		return -1;
	ok = r.sr_status == PROTO_S_OK && r.sr_has_id &&
	    (want == NULL || (r.sr_out && strcmp((char *)r.sr_out, want) == 0));
	memcpy(id, r.sr_id, PROTO_ID_LEN);
	sess_reply_clear(&r);
	return ok ? 0 : -1;
}

static void
delete_session(const uint8_t id[PROTO_ID_LEN])
{
	struct sess_reply r;

	if (sess_client_delete(sc, id, &r) == 0)
		sess_reply_clear(&r);
}

static int
pool_full(void)
{
	struct sess_reply r;
	double t0 = now_us();

	while (now_us() - t0 < 3e6) {
		if (sess_client_metrics(sc, &r) == -1)
			return -1;
		if (r.sr_metrics.pm_pool_ready >= pool_size)
			return 0;
		usleep(2000);
	}
	return -1;
}

static void
d_exec(const char *name, const char *code, size_t want_len, int n)
{
	uint8_t id[PROTO_ID_LEN];
	double *v = calloc((size_t)n, sizeof(double));
	unsigned errors = 0;
	size_t k = 0;

	if (v == NULL || new_session("", id, NULL) == -1) {
		fprintf(stderr, "pxdirect: no session\n");
		exit(1);
	}
	for (int i = 0; i < n + n / 10; i++) {
		struct sess_reply r;
		double t0 = now_us(), t;
		int ok = sess_client_exec(sc, PROTO_MODE_CODE, id, code, strlen(code), &r) == 0;

		t = now_us() - t0;
		if (ok) {
			ok = r.sr_status == PROTO_S_OK && r.sr_out_len == want_len;
			sess_reply_clear(&r);
		}
		if (!ok)
			errors++;
		else if (i >= n / 10)
			v[k++] = t;
	}
	report(name, v, k, errors);
	delete_session(id);
	free(v);
}

static void
d_new(const char *name, const char *code, const char *want, int n)
{
	double *v = calloc((size_t)n, sizeof(double));
	unsigned errors = 0;
	size_t k = 0;

	for (int i = 0; i < n; i++) {
		uint8_t id[PROTO_ID_LEN];
		double t0, t;
		int ok;

		(void)pool_full();
		t0 = now_us();
		ok = new_session(code, id, want) == 0;
		t = now_us() - t0;
		delete_session(id);
		if (ok)
			v[k++] = t;
		else
			errors++;
	}
	report(name, v, k, errors);
	free(v);
}

/* A fresh pool child: the empty first request, then the first and second print(1). */
static void
d_first(int n)
{
	double *v[3];
	const char *names[3] = { "fresh_empty_code", "fresh_first_print1", "fresh_second_print1" };
	size_t k = 0;
	unsigned errors = 0;

	for (int j = 0; j < 3; j++)
		v[j] = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++) {
		uint8_t id[PROTO_ID_LEN];
		double t[4];
		int ok;

		(void)pool_full();
		usleep(20000);	/* the pool child is idle, the zygote too */
		t[0] = now_us();
		ok = new_session("", id, NULL) == 0;
		t[1] = now_us();
		if (getenv("PXDIRECT_GAP_MS") != NULL) {	/* let the pool refill first */
			usleep((useconds_t)atoi(getenv("PXDIRECT_GAP_MS")) * 1000);
			(void)pool_full();
			t[1] = now_us();
		}
		for (int j = 0; ok && j < 2; j++) {
			struct sess_reply r;

			ok = sess_client_exec(sc, PROTO_MODE_CODE, id, "print(1)", 8, &r) == 0;
			if (ok) {
				ok = r.sr_status == PROTO_S_OK && r.sr_out_len == 2;
				sess_reply_clear(&r);
			}
			t[2 + j] = now_us();
		}
		delete_session(id);
		if (!ok) {
			errors++;
			continue;
		}
		for (int j = 0; j < 3; j++)
			v[j][k] = t[j + 1] - t[j];
		k++;
	}
	for (int j = 0; j < 3; j++) {
		report(names[j], v[j], k, errors);
		free(v[j]);
	}
}

/* Latency of the k-th print(1) in a fresh session, k = 1..40 (median of n sessions). */
static void
d_curve(int n)
{
	enum { K = 40 };
	double v[K][64];
	int got = 0;

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		uint8_t id[PROTO_ID_LEN];
		int ok;

		(void)pool_full();
		usleep(100000);
		ok = new_session("", id, NULL) == 0;
		usleep(100000);
		(void)pool_full();
		for (int k = 0; ok && k < K; k++) {
			struct sess_reply r;
			double t0 = now_us();

			ok = sess_client_exec(sc, PROTO_MODE_CODE, id, "print(1)", 8, &r) == 0;
			if (ok)
				sess_reply_clear(&r);
			v[k][got] = now_us() - t0;
		}
		delete_session(id);
		if (ok)
			got++;
	}
	printf("direct k-th print(1) in a fresh session (pool refilled first), median of %d:", got);
	for (int k = 0; k < K; k++) {
		qsort(v[k], (size_t)got, sizeof(double), cmp_double);
		if (k < 10 || k % 5 == 4)
			printf(" #%d=%.0f", k + 1, pct(v[k], (size_t)got, 50));
	}
	printf(" us\n");
}

static void
d_churn(void)
{
	const double dur = 3e6;
	double t0 = now_us(), *v = calloc(100000, sizeof(double)), *dv = calloc(100000, sizeof(double));
	size_t k = 0, dk = 0;
	unsigned errors = 0;

	while (now_us() - t0 < dur && k < 100000) {
		uint8_t id[PROTO_ID_LEN];
		double a = now_us(), b, c;
		int ok = new_session("print(1)", id, "1\n") == 0;

		b = now_us();
		delete_session(id);
		c = now_us();
		if (ok) {
			v[k++] = b - a;
			dv[dk++] = c - b;
		} else
			errors++;
	}
	printf("direct churn: %.1f sessions/s (1 client, create + delete)\n", k / ((now_us() - t0) / 1e6));
	report("churn_create", v, k, errors);
	report("churn_delete", dv, dk, 0);
	free(v);
	free(dv);
}

int
main(int argc, char **argv)
{
	const char *sock = NULL;
	int ch;

	log_init("pxdirect");
	while ((ch = getopt(argc, argv, "s:P:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'P': pool_size = (unsigned)atoi(optarg); break;
		default: goto usage;
		}
	}
	if (sock == NULL)
		goto usage;
	if ((sc = sess_client_new(sock, 10000, 2u << 20)) == NULL)
		return 1;
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "exec") == 0)
			d_exec("exec_print1", "print(1)", 2, 3000);
		else if (strcmp(argv[i], "output") == 0) {
			d_exec("output_65536", "import sys; sys.stdout.write(\"x\" * 65536)", 65536, 200);
			d_exec("output_1048576", "import sys; sys.stdout.write(\"x\" * 1048576)", 1048576, 40);
		} else if (strcmp(argv[i], "new") == 0)
			d_new("new_session_warm", "print(1)", "1\n", 60);
		else if (strcmp(argv[i], "pandas") == 0)
			d_new("new_session_pandas",
			    "import pandas as pd; print(pd.DataFrame({\"a\": range(1000)})[\"a\"].sum())",
			    "499500\n", 20);
		else if (strcmp(argv[i], "curve") == 0)
			d_curve(10);
		else if (strcmp(argv[i], "first") == 0)
			d_first(30);
		else if (strcmp(argv[i], "churn") == 0)
			d_churn();
		else
			goto usage;
	}
	sess_client_free(sc);
	return 0;
usage:
	fprintf(stderr, "usage: pxdirect -s SOCKET [-P POOL_SIZE] [exec|output|new|first|pandas|churn ...]\n");
	return 2;
}
