/*
 * Unit test of sessions/sess_client.c: every call to the daemon ends within
 * its bound, whichever phase the daemon stalls in (connect, send, reply), and
 * a call that timed out leaves no connection a late reply could come back on.
 * The daemon is a listening socket of this process that accepts and reads only
 * when told (a stopped daemon's socket behaves the same: the kernel completes
 * connections into its backlog and queues frames until its buffers are full),
 * or a forked child that answers at once.  Prints TAP; exit status 0 only if
 * everything passed.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "sess_client.h"
#include "tap.h"

#define BOUND_MS	300	/* the execution bound these clients get */

static char dir[] = "/tmp/pyexec-sc.XXXXXX";
static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct proto_msg rx;	/* 64 KiB: not on the stack */

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void
sockaddr_of(struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, path);
}

/* A daemon's listening socket that nobody accepts on. */
static int
listener(int backlog)
{
	struct sockaddr_un sa;
	int fd;

	sockaddr_of(&sa);
	(void)unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, backlog) == -1) {
		perror("listener");
		exit(2);
	}
	return fd;
}

/* Connects without waiting until the listener's backlog refuses: how many got in. */
static int
fill_backlog(int *fds, int max)
{
	struct sockaddr_un sa;
	int n;

	sockaddr_of(&sa);
	for (n = 0; n < max; n++) {
		fds[n] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[n] == -1 || connect(fds[n], (struct sockaddr *)&sa, sizeof(sa)) == -1) {
			if (fds[n] >= 0)
				close(fds[n]);
			break;
		}
	}
	return n;
}

/* A stalled daemon: a health check fails in about 5 s, not the execution bound. */
static void
test_health_stalled(void)
{
	struct sess_client *sc;
	struct sess_reply r;
	long t0, t;
	int lfd = listener(16);

	/* An execution bound far above 5 s: the health check must not wait for it. */
	if ((sc = sess_client_new(path, 60000, 1024)) == NULL)
		exit(2);
	t0 = now_ms();
	is_int(sess_client_health(sc, &r), -1, "health, daemon stalled: fails");
	t = now_ms() - t0;
	/* The kernel's timer wheel ends a 5 s socket timeout up to 256 ms late. */
	ok(t >= 4900 && t < 5800, "  after %ld ms (5 s bound; the execution bound is 60 s)", t);
	is_int(r.sr_status, 0, "  no status");
	sess_client_free(sc);
	close(lfd);
}

/* The daemon took the connection and the request, and never answers. */
static void
test_reply_stalled(void)
{
	struct sess_client *sc;
	struct sess_reply r;
	long t0, t;
	int lfd = listener(16), cfd;

	if ((sc = sess_client_new(path, BOUND_MS, 1024)) == NULL)
		exit(2);
	t0 = now_ms();
	is_int(sess_client_exec(sc, PROTO_MODE_CODE, NULL, "1", 1, &r), -1,
	    "exec, no reply: fails");
	t = now_ms() - t0;
	ok(t >= BOUND_MS - 10 && t < BOUND_MS + 300, "  after %ld ms (bound %d)", t,
	    BOUND_MS);
	/* The request arrived; the client hung up on it, so a reply has nowhere to go. */
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ok(cfd >= 0 && proto_recv(cfd, &rx) == 1 && rx.pm_hdr.ph_type == PROTO_EXEC,
	    "  the daemon got the request");
	is_int(proto_recv(cfd, &rx), 0, "  then the end of the connection: no late reply "
	    "can answer a later request");
	if (cfd >= 0)
		close(cfd);
	sess_client_free(sc);
	close(lfd);
}

/* The daemon's backlog is full (stopped, or stuck): connect() would wait forever. */
static void
test_connect_stalled(void)
{
	struct sess_client *sc;
	struct sess_reply r;
	long t0, t;
	int lfd = listener(0), fds[64], n, i;

	n = fill_backlog(fds, 64);
	ok(n > 0 && n < 64, "backlog filled with %d connection(s)", n);
	if ((sc = sess_client_new(path, BOUND_MS, 1024)) == NULL)
		exit(2);
	t0 = now_ms();
	is_int(sess_client_exec(sc, PROTO_MODE_CODE, NULL, "1", 1, &r), -1,
	    "exec, backlog full: fails");
	t = now_ms() - t0;
	ok(t >= BOUND_MS - 10 && t < BOUND_MS + 300, "  after %ld ms (bound %d)", t,
	    BOUND_MS);
	sess_client_free(sc);
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
}

/* The daemon does not read: code longer than the socket's buffer cannot all go. */
static void
test_send_stalled(void)
{
	struct sess_client *sc;
	struct sess_reply r;
	size_t len = 4 << 20;
	char *code;
	long t0, t;
	int lfd = listener(16);

	if ((code = malloc(len)) == NULL)
		exit(2);
	memset(code, '#', len);
	if ((sc = sess_client_new(path, BOUND_MS, 1024)) == NULL)
		exit(2);
	t0 = now_ms();
	is_int(sess_client_exec(sc, PROTO_MODE_CODE, NULL, code, len, &r), -1,
	    "exec of 4 MiB, daemon not reading: fails");
	t = now_ms() - t0;
	ok(t >= BOUND_MS - 10 && t < BOUND_MS + 300, "  after %ld ms (bound %d)", t,
	    BOUND_MS);
	sess_client_free(sc);
	free(code);
	close(lfd);
}

/* Answers every request on one connection at once, then exits. */
static void
responder(int lfd)
{
	struct proto_result pr;
	struct proto_stat st;
	int cfd;

	if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		_exit(1);
	while (proto_recv(cfd, &rx) == 1) {
		if (rx.pm_hdr.ph_type == PROTO_EXEC) {
			memset(&pr, 0, sizeof(pr));
			pr.pr_status = PROTO_S_OK;
			(void)proto_send(cfd, PROTO_RESULT, PROTO_F_END, rx.pm_hdr.ph_reqid,
			    &pr, sizeof(pr), NULL, 0);
		} else {
			memset(&st, 0, sizeof(st));
			st.pst_status = PROTO_S_OK;
			(void)proto_send(cfd, PROTO_STATUS, PROTO_F_END, rx.pm_hdr.ph_reqid,
			    &st, sizeof(st), NULL, 0);
		}
	}
	_exit(0);
}

/*
 * A daemon that answers: calls of both bounds in turn all succeed, on the one
 * connection the responder accepts (a second would never be answered).
 */
static void
test_answers(void)
{
	struct sess_client *sc;
	struct sess_reply r;
	pid_t pid;
	int lfd = listener(16), i, st, good = 0;

	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0)
		responder(lfd);
	if ((sc = sess_client_new(path, BOUND_MS, 1024)) == NULL)
		exit(2);
	for (i = 0; i < 6; i++) {
		if (i % 2 == 0) {
			if (sess_client_health(sc, &r) == 0 && r.sr_status == PROTO_S_OK)
				good++;
		} else if (sess_client_exec(sc, PROTO_MODE_CODE, NULL, "1", 1, &r) == 0 &&
		    r.sr_status == PROTO_S_OK) {
			good++;
			sess_reply_clear(&r);
		}
	}
	is_int(good, 6, "daemon answering: health and exec in turn, all answered on one "
	    "connection");
	sess_client_free(sc);
	(void)waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "  the responder saw the end of it");
	close(lfd);
}

int
main(void)
{
	log_init("test_sess_client");
	signal(SIGPIPE, SIG_IGN);
	alarm(60);	/* a client that waits forever fails the test, not hangs it */
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/sock", dir);
	test_answers();
	test_reply_stalled();
	test_connect_stalled();
	test_send_stalled();
	test_health_stalled();
	(void)unlink(path);
	(void)rmdir(dir);
	return done();
}
