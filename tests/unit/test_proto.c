/*
 * Unit test of sessions/proto.c: frames over a real SOCK_SEQPACKET
 * socketpair.  Malformed frames are forged with sendmsg(2), since proto_send
 * cannot make them.  Prints TAP; exit status 0 only if everything passed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "tap.h"

static struct proto_msg rx;	/* 64 KiB: not on the stack */

static void
pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		perror("socketpair");
		exit(2);
	}
}

static void
unpair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* Open descriptors of this process (the directory's own fd included, the
 * same every time). */
static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Sends one raw datagram, with nfds descriptors by SCM_RIGHTS. */
static ssize_t
raw_send(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr msg;
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) * 16)];
	} cm;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

/* A forged frame: header fields as given, then plen payload bytes. */
static ssize_t
forge(int fd, uint8_t version, uint8_t type, uint32_t ph_len, size_t plen,
    const int *fds, int nfds)
{
	struct proto_hdr h;
	uint8_t *buf;
	ssize_t n;

	if ((buf = calloc(1, sizeof(h) + plen)) == NULL)
		exit(2);
	memset(&h, 0, sizeof(h));
	h.ph_version = version;
	h.ph_type = type;
	h.ph_reqid = 7;
	h.ph_len = ph_len;
	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), 'x', plen);
	n = raw_send(fd, buf, sizeof(h) + plen, fds, nfds);
	free(buf);
	return n;
}

/* Receives one frame that must be refused with EPROTO. */
static void
expect_eproto(int fd, const char *what)
{
	int r;

	errno = 0;
	r = proto_recv(fd, &rx);
	if (!is_int(r, -1, "%s: refused", what))
		return;
	is_int(errno, EPROTO, "%s: errno EPROTO", what);
}

static void
test_round_trip(void)
{
	static uint8_t big[PROTO_MAX_PAYLOAD];
	size_t sizes[] = { 0, 1, 5, PROTO_MAX_PAYLOAD };
	int sv[2], r;
	size_t i, k;

	pair(sv);
	for (k = 0; k < sizeof(big); k++)
		big[k] = (uint8_t)(k * 7 + (k >> 8));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		r = proto_send(sv[0], PROTO_RESULT, 0xa5c3, 0xdeadbeef, big, n, NULL, 0);
		is_int(r, 0, "send %zu-byte payload", n);
		memset(&rx.pm_hdr, 0xee, sizeof(rx.pm_hdr));
		r = proto_recv(sv[1], &rx);
		is_int(r, 1, "recv %zu-byte payload: one frame", n);
		is_int(rx.pm_hdr.ph_version, PROTO_VERSION, "  version");
		is_int(rx.pm_hdr.ph_type, PROTO_RESULT, "  type");
		is_int(rx.pm_hdr.ph_flags, 0xa5c3, "  flags");
		is_int(rx.pm_hdr.ph_reqid, 0xdeadbeef, "  reqid");
		is_int(rx.pm_hdr.ph_len, (long long)n, "  ph_len");
		ok(memcmp(rx.pm_payload, big, n) == 0, "  payload bytes");
		is_int(rx.pm_nfds, 0, "  no descriptors");
		ok(proto_payload_is(&rx, n) && !proto_payload_is(&rx, n + 1),
		    "  proto_payload_is(%zu)", n);
	}
	/* Every type from 1 to PROTO_TYPE_MAX - 1 goes through. */
	for (k = 1; k < PROTO_TYPE_MAX; k++) {
		if (proto_send(sv[0], (uint8_t)k, 0, (uint32_t)k, NULL, 0, NULL, 0) == -1 ||
		    proto_recv(sv[1], &rx) != 1 || rx.pm_hdr.ph_type != k)
			break;
	}
	is_int((long long)k, PROTO_TYPE_MAX, "every known type is accepted");
	unpair(sv);
}

static void
test_send_refuses(void)
{
	static uint8_t big[PROTO_MAX_PAYLOAD + 1];
	int sv[2], fds[PROTO_MAX_FDS + 1], i, r;

	pair(sv);
	errno = 0;
	r = proto_send(sv[0], PROTO_DATA, 0, 1, big, sizeof(big), NULL, 0);
	is_int(r, -1, "send of PROTO_MAX_PAYLOAD + 1 bytes refused");
	is_int(errno, EMSGSIZE, "  errno EMSGSIZE");
	for (i = 0; i < PROTO_MAX_FDS + 1; i++)
		fds[i] = 0;
	errno = 0;
	r = proto_send(sv[0], PROTO_DATA, 0, 1, NULL, 0, fds, PROTO_MAX_FDS + 1);
	ok(r == -1 && errno == EMSGSIZE, "send of PROTO_MAX_FDS + 1 fds refused (EMSGSIZE)");
	errno = 0;
	r = proto_send(sv[0], PROTO_DATA, 0, 1, NULL, 0, fds, -1);
	ok(r == -1 && errno == EMSGSIZE, "send with nfds -1 refused (EMSGSIZE)");
	/* Nothing was sent by the refused calls. */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	errno = 0;
	r = proto_recv(sv[1], &rx);
	ok(r == -1 && errno == EAGAIN, "refused sends sent nothing (recv: EAGAIN)");
	unpair(sv);
}

static void
test_recv_refuses(void)
{
	static const uint8_t junk[PROTO_MAX_PAYLOAD + 64];
	struct proto_hdr h;
	int sv[2], r;

	pair(sv);

	ok(raw_send(sv[0], junk, 1, NULL, 0) == 1, "forge a 1-byte datagram");
	expect_eproto(sv[1], "1-byte datagram");
	ok(raw_send(sv[0], junk, sizeof(h) - 1, NULL, 0) == (ssize_t)sizeof(h) - 1,
	    "forge a datagram one byte shorter than the header");
	expect_eproto(sv[1], "header - 1 bytes");

	forge(sv[0], PROTO_VERSION, PROTO_DATA, 10, 5, NULL, 0);
	expect_eproto(sv[1], "ph_len 10, 5 bytes follow");
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 5, 10, NULL, 0);
	expect_eproto(sv[1], "ph_len 5, 10 bytes follow");
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 0, 1, NULL, 0);
	expect_eproto(sv[1], "ph_len 0, 1 byte follows");
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 1, 0, NULL, 0);
	expect_eproto(sv[1], "ph_len 1, header only");

	forge(sv[0], 0, PROTO_DATA, 0, 0, NULL, 0);
	expect_eproto(sv[1], "version 0");
	forge(sv[0], PROTO_VERSION + 1, PROTO_DATA, 0, 0, NULL, 0);
	expect_eproto(sv[1], "version PROTO_VERSION + 1");
	forge(sv[0], 0xff, PROTO_DATA, 0, 0, NULL, 0);
	expect_eproto(sv[1], "version 255");

	forge(sv[0], PROTO_VERSION, 0, 0, 0, NULL, 0);
	expect_eproto(sv[1], "type 0");
	forge(sv[0], PROTO_VERSION, PROTO_TYPE_MAX, 0, 0, NULL, 0);
	expect_eproto(sv[1], "type PROTO_TYPE_MAX");
	forge(sv[0], PROTO_VERSION, 0xff, 0, 0, NULL, 0);
	expect_eproto(sv[1], "type 255");

	r = (int)forge(sv[0], PROTO_VERSION, PROTO_DATA, PROTO_MAX_PAYLOAD + 1,
	    PROTO_MAX_PAYLOAD + 1, NULL, 0);
	is_int(r, (long long)(sizeof(h) + PROTO_MAX_PAYLOAD + 1),
	    "forge an oversized frame (ph_len = PROTO_MAX_PAYLOAD + 1, consistent)");
	expect_eproto(sv[1], "oversized frame");
	forge(sv[0], PROTO_VERSION, PROTO_DATA, PROTO_MAX_PAYLOAD,
	    PROTO_MAX_PAYLOAD + 40, NULL, 0);
	expect_eproto(sv[1], "ph_len PROTO_MAX_PAYLOAD, 40 more bytes (truncated datagram)");
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 0xffffffffu, 8, NULL, 0);
	expect_eproto(sv[1], "ph_len 0xffffffff");

	/* The link still works after refused frames. */
	proto_send(sv[0], PROTO_HEALTH, 0, 42, NULL, 0, NULL, 0);
	r = proto_recv(sv[1], &rx);
	ok(r == 1 && rx.pm_hdr.ph_type == PROTO_HEALTH && rx.pm_hdr.ph_reqid == 42,
	    "a good frame after refused ones is received");

	/* A forged good frame is accepted: the forgery itself is right. */
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 3, 3, NULL, 0);
	r = proto_recv(sv[1], &rx);
	ok(r == 1 && rx.pm_hdr.ph_len == 3 && !memcmp(rx.pm_payload, "xxx", 3),
	    "a consistent forged frame is accepted");

	/* A zero-length datagram cannot be told from end of stream by
	 * recvmsg; it must at least not be taken as a frame. */
	ok(raw_send(sv[0], junk, 0, NULL, 0) == 0, "forge a 0-byte datagram");
	errno = 0;
	r = proto_recv(sv[1], &rx);
	ok(r != 1, "0-byte datagram is not a frame (got %d, errno %d)", r, errno);

	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	errno = 0;
	r = proto_recv(sv[1], &rx);
	ok(r == -1 && errno == EAGAIN, "empty non-blocking socket: -1 EAGAIN");

	close(sv[0]);
	r = proto_recv(sv[1], &rx);
	is_int(r, 0, "peer closed: end of stream returns 0");
	close(sv[1]);
}

static void
test_fds(void)
{
	int sv[2], p[2], fds[PROTO_MAX_FDS + 2], before, r, i, all;
	char c = 0;

	pair(sv);
	if (pipe(p) == -1)
		exit(2);

	/* A good frame: descriptors arrive, close-on-exec, working. */
	before = count_fds();
	r = proto_send(sv[0], PROTO_FORKED, 0, 9, "ab", 2, &p[1], 1);
	is_int(r, 0, "send a frame with one descriptor");
	r = proto_recv(sv[1], &rx);
	is_int(r, 1, "  received");
	if (!is_int(rx.pm_nfds, 1, "  one descriptor arrived"))
		rx.pm_nfds = 0;
	if (rx.pm_nfds == 1) {
		ok(rx.pm_fds[0] != p[1] && fd_is_open(rx.pm_fds[0]),
		    "  it is a new open descriptor");
		ok(fcntl(rx.pm_fds[0], F_GETFD) & FD_CLOEXEC, "  with FD_CLOEXEC");
		ok(write(rx.pm_fds[0], "z", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'z',
		    "  it is the pipe's write end");
		i = rx.pm_fds[0];
		proto_msg_close_fds(&rx);
		ok(!fd_is_open(i) && rx.pm_nfds == 0,
		    "  proto_msg_close_fds closes it and clears pm_nfds");
	}
	is_int(count_fds(), before, "  no descriptor leaked");

	/* PROTO_MAX_FDS descriptors in one frame. */
	for (i = 0; i < PROTO_MAX_FDS; i++)
		fds[i] = p[i & 1];
	r = proto_send(sv[0], PROTO_FORK, 0, 1, NULL, 0, fds, PROTO_MAX_FDS);
	r = r == 0 ? proto_recv(sv[1], &rx) : r;
	is_int(r, 1, "a frame with PROTO_MAX_FDS descriptors is accepted");
	is_int(rx.pm_nfds, PROTO_MAX_FDS, "  all of them arrived");
	proto_msg_close_fds(&rx);
	is_int(count_fds(), before, "  closed: no descriptor leaked");

	/* Refused frames close what came with them. */
	{
		static const struct { uint8_t v, t; uint32_t len; size_t plen;
		    const char *what; } bad[] = {
			{ PROTO_VERSION + 1, PROTO_DATA, 0, 0, "wrong version" },
			{ PROTO_VERSION, 0, 0, 0, "type 0" },
			{ PROTO_VERSION, PROTO_TYPE_MAX, 0, 0, "type PROTO_TYPE_MAX" },
			{ PROTO_VERSION, PROTO_DATA, 4, 2, "ph_len mismatch" },
			{ PROTO_VERSION, PROTO_DATA, PROTO_MAX_PAYLOAD + 1,
			  PROTO_MAX_PAYLOAD + 1, "oversized" },
		};
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			fds[0] = p[0];
			fds[1] = p[1];
			fds[2] = sv[0];
			forge(sv[0], bad[k].v, bad[k].t, bad[k].len, bad[k].plen, fds, 3);
			memset(rx.pm_fds, 0xff, sizeof(rx.pm_fds));
			errno = 0;
			r = proto_recv(sv[1], &rx);
			ok(r == -1 && errno == EPROTO, "%s with 3 fds: EPROTO", bad[k].what);
			is_int(rx.pm_nfds, 0, "  pm_nfds is 0");
			/* pm_fds still holds the numbers the frame brought. */
			for (all = 1, i = 0; i < 3; i++)
				if (rx.pm_fds[i] < 0 || fd_is_open(rx.pm_fds[i]))
					all = 0;
			ok(all, "  the 3 received descriptors are closed (F_GETFD fails)");
			is_int(count_fds(), before, "  no descriptor leaked");
		}
	}

	/* A datagram shorter than the header, with a descriptor. */
	raw_send(sv[0], "abc", 3, &p[1], 1);
	errno = 0;
	r = proto_recv(sv[1], &rx);
	ok(r == -1 && errno == EPROTO, "3-byte datagram with 1 fd: EPROTO");
	is_int(count_fds(), before, "  no descriptor leaked");

	/* More descriptors than PROTO_MAX_FDS: the control data is truncated. */
	for (i = 0; i < PROTO_MAX_FDS + 2; i++)
		fds[i] = p[i & 1];
	forge(sv[0], PROTO_VERSION, PROTO_DATA, 0, 0, fds, PROTO_MAX_FDS + 2);
	errno = 0;
	r = proto_recv(sv[1], &rx);
	ok(r == -1 && errno == EPROTO, "good header with PROTO_MAX_FDS + 2 fds: EPROTO");
	is_int(count_fds(), before, "  no descriptor leaked");

	close(p[0]);
	close(p[1]);
	unpair(sv);
}

/* Receives DATA frames until END (or max frames); returns the frame count. */
static int
recv_stream(int fd, uint16_t stream, uint32_t reqid, uint8_t *out, size_t cap,
    size_t *got, size_t *sizes, uint16_t *flags, int max)
{
	int n = 0;

	*got = 0;
	while (n < max) {
		if (proto_recv(fd, &rx) != 1 || rx.pm_hdr.ph_type != PROTO_DATA ||
		    rx.pm_hdr.ph_reqid != reqid ||
		    (rx.pm_hdr.ph_flags & PROTO_F_STREAM_MASK) != stream ||
		    *got + rx.pm_hdr.ph_len > cap)
			return -1;
		memcpy(out + *got, rx.pm_payload, rx.pm_hdr.ph_len);
		*got += rx.pm_hdr.ph_len;
		sizes[n] = rx.pm_hdr.ph_len;
		flags[n] = rx.pm_hdr.ph_flags;
		n++;
		if (rx.pm_hdr.ph_flags & PROTO_F_END)
			break;
	}
	return n;
}

/* proto_send_data from a child process, so that the socket buffer (smaller
 * than a few full frames) cannot block the test. */
static pid_t
send_data_child(int fd, uint16_t stream, const uint8_t *buf, size_t len, int end)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(proto_send_data(fd, stream, 77, buf, len, end) == 0 ? 0 : 1);
	return pid;
}

static int
child_ok(pid_t pid)
{
	int st;

	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0;
}

static void
test_send_data(void)
{
	enum { TOTAL = 200000 };
	static uint8_t src[TOTAL], dst[TOTAL];
	size_t sizes[16], got, k;
	uint16_t flags[16];
	int sv[2], n, i, ends;
	pid_t pid;

	for (k = 0; k < TOTAL; k++)
		src[k] = (uint8_t)(k ^ (k >> 9));
	pair(sv);

	pid = send_data_child(sv[0], PROTO_STREAM_OUT, src, TOTAL, 1);
	n = recv_stream(sv[1], PROTO_STREAM_OUT, 77, dst, sizeof(dst), &got, sizes,
	    flags, 16);
	ok(child_ok(pid), "proto_send_data(200000 bytes) returned 0");
	is_int(n, 4, "200000 bytes: 4 frames");
	for (i = 0, ends = 0; i < n; i++) {
		if (sizes[i] > PROTO_MAX_PAYLOAD)
			ends = 100;
		if (flags[i] & PROTO_F_END)
			ends += i == n - 1 ? 1 : 10;
	}
	ok(n > 0 && ends == 1, "  PROTO_F_END on the last frame only");
	ok(n == 4 && sizes[0] == 65536 && sizes[1] == 65536 && sizes[2] == 65536 &&
	    sizes[3] == TOTAL - 3 * 65536, "  frames of 65536, 65536, 65536, 3392 bytes");
	ok(got == TOTAL && memcmp(src, dst, TOTAL) == 0, "  the bytes arrive in order");
	ok(n > 0 && (flags[0] & ~PROTO_F_END) == PROTO_STREAM_OUT,
	    "  flags carry the stream and nothing else");

	pid = send_data_child(sv[0], PROTO_STREAM_ERR, src, 2 * PROTO_MAX_PAYLOAD, 1);
	n = recv_stream(sv[1], PROTO_STREAM_ERR, 77, dst, sizeof(dst), &got, sizes,
	    flags, 16);
	ok(child_ok(pid), "proto_send_data(2 * 65536 bytes) returned 0");
	ok(n == 2 && !(flags[0] & PROTO_F_END) && (flags[1] & PROTO_F_END) &&
	    sizes[1] == PROTO_MAX_PAYLOAD, "  exactly 2 full frames, END on the second");

	pid = send_data_child(sv[0], PROTO_STREAM_CODE, src, 0, 1);
	n = recv_stream(sv[1], PROTO_STREAM_CODE, 77, dst, sizeof(dst), &got, sizes,
	    flags, 16);
	ok(child_ok(pid), "proto_send_data(0 bytes, end) returned 0");
	ok(n == 1 && sizes[0] == 0 && flags[0] == (PROTO_STREAM_CODE | PROTO_F_END),
	    "  one empty END frame");

	/* Without end: no END flag anywhere. */
	pid = send_data_child(sv[0], PROTO_STREAM_RESULT, src, 70000, 0);
	n = recv_stream(sv[1], PROTO_STREAM_RESULT, 77, dst, sizeof(dst), &got, sizes,
	    flags, 2);
	ok(child_ok(pid), "proto_send_data(70000 bytes, no end) returned 0");
	ok(n == 2 && !(flags[0] & PROTO_F_END) && !(flags[1] & PROTO_F_END) &&
	    got == 70000, "  two frames, neither with END");

	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	errno = 0;
	ok(proto_recv(sv[1], &rx) == -1 && errno == EAGAIN, "  and no extra frame");
	unpair(sv);
}

static void
test_ids(void)
{
	static const uint8_t known[PROTO_ID_LEN] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff
	};
	uint8_t a[PROTO_ID_LEN], b[PROTO_ID_LEN], c[PROTO_ID_LEN];
	char s[PROTO_ID_STRLEN + 1], t[PROTO_ID_STRLEN + 1];
	int i, bad, same = 0, vers = 1;

	is_int(proto_id_new(a), 0, "proto_id_new");
	is_int(proto_id_new(b), 0, "proto_id_new again");
	is_int(a[6] >> 4, 4, "  version nibble is 4");
	is_int(a[8] & 0xc0, 0x80, "  variant bits are 10");
	ok(memcmp(a, b, PROTO_ID_LEN) != 0, "  two ids differ");
	for (i = 0; i < 200; i++) {
		proto_id_new(c);
		if ((c[6] >> 4) != 4 || (c[8] & 0xc0) != 0x80)
			vers = 0;
		if (!memcmp(c, a, PROTO_ID_LEN))
			same = 1;
	}
	ok(vers && !same, "  200 more: all v4 / RFC 4122, none repeats");

	proto_id_format(known, s);
	is_str(s, "00112233-4455-6677-8899-aabbccddeeff", "proto_id_format of a known id");
	proto_id_format(a, s);
	is_int((long long)strlen(s), PROTO_ID_STRLEN, "  36 characters");
	for (i = 0, bad = 0; i < PROTO_ID_STRLEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			bad = 1;
	}
	ok(!bad, "  lowercase hex, dashes at 8, 13, 18, 23");
	is_int(s[14], '4', "  version digit 4 in the text");

	memset(c, 0, sizeof(c));
	is_int(proto_id_parse(s, strlen(s), c), 0, "proto_id_parse of a formatted id");
	ok(memcmp(a, c, PROTO_ID_LEN) == 0, "  round trip gives the same bytes");
	is_int(proto_id_parse("00112233-4455-6677-8899-AABBCCDDEEFF", 36, c), 0,
	    "  uppercase accepted");
	ok(memcmp(c, known, PROTO_ID_LEN) == 0, "  uppercase parses to the same bytes");
	proto_id_format(c, t);
	is_str(t, "00112233-4455-6677-8899-aabbccddeeff", "  and formats back lowercase");
	is_int(proto_id_parse("00112233-4455-6677-8899-AaBbCcDdEeFf", 36, c), 0,
	    "  mixed case accepted");

	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccddeef", 35, c), -1,
	    "  35 characters refused");
	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccddeeff0", 37, c), -1,
	    "  37 characters refused");
	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccddeeff", 35, c), -1,
	    "  right text, len 35 refused");
	is_int(proto_id_parse("", 0, c), -1, "  empty refused");
	is_int(proto_id_parse("0011223344556677-8899aabbccddeeff----", 36, c), -1,
	    "  dashes at the end refused");
	is_int(proto_id_parse("0011223-34455-6677-8899-aabbccddeeff", 36, c), -1,
	    "  a dash one place early refused");
	is_int(proto_id_parse("001122334-455-6677-8899-aabbccddeeff", 36, c), -1,
	    "  a dash one place late refused");
	is_int(proto_id_parse("00112233-4455-6677-8899a-abbccddeeff", 36, c), -1,
	    "  last dash misplaced refused");
	is_int(proto_id_parse("00112233044550667708899aaabbccddeeff", 36, c), -1,
	    "  hex digits in place of the dashes refused");
	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccddeefg", 36, c), -1,
	    "  'g' refused");
	is_int(proto_id_parse("0011223 -4455-6677-8899-aabbccddeeff", 36, c), -1,
	    "  a space refused");
	is_int(proto_id_parse("+0112233-4455-6677-8899-aabbccddeeff", 36, c), -1,
	    "  a sign refused");
	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccdd\0eff", 36, c), -1,
	    "  an embedded NUL refused");
	is_int(proto_id_parse("00112233-4455-6677-8899-aabbccddeeff", 36, c), 0,
	    "  and the right text still parses");
}

static void
test_status_names(void)
{
	is_str(proto_status_name(PROTO_S_OK), "ok", "proto_status_name(OK)");
	is_str(proto_status_name(PROTO_S_FULL), "full", "proto_status_name(FULL)");
	is_str(proto_status_name(0), "unknown", "proto_status_name(0)");
	is_str(proto_status_name(PROTO_S_MAX), "unknown", "proto_status_name(MAX)");
}

/* proto_send_msg from a child process (a split message outgrows the buffer). */
static pid_t
send_msg_child(int fd, const struct proto_result *pr, const struct proto_part *parts)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(proto_send_msg(fd, PROTO_RESULT, 9, pr, sizeof(*pr), parts, 3) == 0 ?
		    0 : 1);
	return pid;
}

static void
test_messages(void)
{
	static uint8_t a[70000], b[300], dst[80000];
	struct proto_result pr;
	struct proto_part parts[3];
	struct proto_msg *m = &rx;
	size_t sizes[16], got;
	uint16_t flags[16];
	int sv[2], n;
	pid_t pid;

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	pair(sv);

	/* Fits: one frame, END, struct then the parts in order (empty ones skipped). */
	memset(&pr, 0, sizeof(pr));
	pr.pr_out_len = 5;
	pr.pr_res_len = 300;
	parts[0] = (struct proto_part){ PROTO_STREAM_OUT, "hello", 5 };
	parts[1] = (struct proto_part){ PROTO_STREAM_ERR, NULL, 0 };
	parts[2] = (struct proto_part){ PROTO_STREAM_RESULT, b, 300 };
	ok(proto_send_msg(sv[0], PROTO_RESULT, 9, &pr, sizeof(pr), parts, 3) == 0,
	    "proto_send_msg: a message that fits is sent");
	ok(proto_recv(sv[1], m) == 1 && m->pm_hdr.ph_type == PROTO_RESULT &&
	    m->pm_hdr.ph_reqid == 9 && m->pm_hdr.ph_flags == PROTO_F_END &&
	    m->pm_hdr.ph_len == sizeof(pr) + 305, "  as one END frame of struct + 305 bytes");
	ok(memcmp(m->pm_payload + sizeof(pr), "hello", 5) == 0 &&
	    m->pm_payload[sizeof(pr) + 5] == 'b' &&
	    m->pm_payload[sizeof(pr) + 304] == 'b', "  the parts follow the struct in order");
	is_int(proto_msg_whole(m, sizeof(pr), 305), 1, "  proto_msg_whole: whole");
	is_int(proto_msg_whole(m, sizeof(pr), 304), -1, "  a length that disagrees is refused");

	/* All three parts at once (the frame then has 5 pieces: header, struct, 3). */
	pr.pr_out_len = 3;
	pr.pr_err_len = 4;
	pr.pr_res_len = 5;
	parts[0] = (struct proto_part){ PROTO_STREAM_OUT, "out", 3 };
	parts[1] = (struct proto_part){ PROTO_STREAM_ERR, "err!", 4 };
	parts[2] = (struct proto_part){ PROTO_STREAM_RESULT, "[1,2]", 5 };
	ok(proto_send_msg(sv[0], PROTO_RESULT, 9, &pr, sizeof(pr), parts, 3) == 0 &&
	    proto_recv(sv[1], m) == 1 && proto_msg_whole(m, sizeof(pr), 12) == 1 &&
	    memcmp(m->pm_payload + sizeof(pr), "outerr![1,2]", 12) == 0,
	    "three non-empty parts go whole, in order");
	memset(&pr, 0, sizeof(pr));
	parts[1] = (struct proto_part){ PROTO_STREAM_ERR, NULL, 0 };

	/* Exactly a full frame still fits. */
	pr.pr_out_len = PROTO_MAX_PAYLOAD - sizeof(pr);
	pr.pr_res_len = 0;
	parts[0] = (struct proto_part){ PROTO_STREAM_OUT, a, pr.pr_out_len };
	parts[2].pp_len = 0;
	pid = send_msg_child(sv[0], &pr, parts);
	ok(proto_recv(sv[1], m) == 1 && m->pm_hdr.ph_flags == PROTO_F_END &&
	    m->pm_hdr.ph_len == PROTO_MAX_PAYLOAD &&
	    proto_msg_whole(m, sizeof(pr), pr.pr_out_len) == 1,
	    "a message of exactly one full frame goes whole");
	ok(child_ok(pid), "  proto_send_msg returned 0");

	/* Too big: the struct alone, then each non-empty part as DATA, END last. */
	memset(&pr, 0, sizeof(pr));
	pr.pr_out_len = sizeof(a);
	pr.pr_res_len = sizeof(b);
	parts[0] = (struct proto_part){ PROTO_STREAM_OUT, a, sizeof(a) };
	parts[2] = (struct proto_part){ PROTO_STREAM_RESULT, b, sizeof(b) };
	pid = send_msg_child(sv[0], &pr, parts);
	ok(proto_recv(sv[1], m) == 1 && m->pm_hdr.ph_flags == 0 &&
	    m->pm_hdr.ph_len == sizeof(pr), "a message that does not fit: the struct alone");
	is_int(proto_msg_whole(m, sizeof(pr), sizeof(a) + sizeof(b)), 0,
	    "  proto_msg_whole: data follows");
	n = recv_stream(sv[1], PROTO_STREAM_OUT, 9, dst, sizeof(dst), &got, sizes, flags, 2);
	ok(n == 2 && got == sizeof(a) && !(flags[1] & PROTO_F_END) &&
	    memcmp(dst, a, sizeof(a)) == 0, "  out as DATA frames, no END");
	n = recv_stream(sv[1], PROTO_STREAM_RESULT, 9, dst, sizeof(dst), &got, sizes, flags, 16);
	ok(n == 1 && got == sizeof(b) && (flags[0] & PROTO_F_END),
	    "  then the result, with END (the empty err stream sends nothing)");
	ok(child_ok(pid), "  proto_send_msg returned 0");

	/* A split message that would have fitted is refused. */
	ok(proto_send(sv[0], PROTO_RESULT, 0, 9, &pr, sizeof(pr), NULL, 0) == 0 &&
	    proto_recv(sv[1], m) == 1 && proto_msg_whole(m, sizeof(pr), 10) == -1,
	    "a struct alone announcing data that fits beside it is refused");
	ok(proto_send(sv[0], PROTO_RESULT, PROTO_F_END, 9, &pr, sizeof(pr), NULL, 0) == 0 &&
	    proto_recv(sv[1], m) == 1 && proto_msg_whole(m, sizeof(pr), 0) == 1,
	    "a struct with END and nothing announced is whole");
	unpair(sv);
}

int
main(void)
{
	test_round_trip();
	test_send_refuses();
	test_recv_refuses();
	test_fds();
	test_send_data();
	test_messages();
	test_ids();
	test_status_names();
	return done();
}
