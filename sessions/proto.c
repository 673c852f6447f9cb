#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"

/* One frame of the nparts pieces (a struct and up to PROTO_MAX_PARTS data
 * parts), the header added in front. */
static int
proto_sendv(int fd, uint8_t type, uint16_t flags, uint32_t reqid,
    const struct iovec *parts, int nparts, const int *fds, int nfds)
{
	struct proto_hdr h;
	struct iovec iov[2 + PROTO_MAX_PARTS];	/* header, struct, parts */
	struct msghdr msg;
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cm;
	size_t len = 0;
	ssize_t n;
	int i, k = 1;

	for (i = 0; i < nparts && nparts <= 1 + PROTO_MAX_PARTS; i++)
		len += parts[i].iov_len;
	if (nparts > 1 + PROTO_MAX_PARTS || len > PROTO_MAX_PAYLOAD || nfds < 0 ||
	    nfds > PROTO_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	h.ph_version = PROTO_VERSION;
	h.ph_type = type;
	h.ph_flags = flags;
	h.ph_reqid = reqid;
	h.ph_len = (uint32_t)len;
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	for (i = 0; i < nparts; i++)
		if (parts[i].iov_len > 0)
			iov[k++] = parts[i];
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = k;
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
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if ((size_t)n != sizeof(h) + len) {
		errno = EMSGSIZE;	/* SEQPACKET sends whole records */
		return -1;
	}
	return 0;
}

int
proto_send(int fd, uint8_t type, uint16_t flags, uint32_t reqid,
    const void *payload, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { (void *)(uintptr_t)payload, len };

	return proto_sendv(fd, type, flags, reqid, &iov, len ? 1 : 0, fds, nfds);
}

int
proto_send_msg(int fd, uint8_t type, uint32_t reqid, const void *st,
    size_t stlen, const struct proto_part *parts, int nparts)
{
	struct iovec iov[1 + PROTO_MAX_PARTS];
	size_t total = stlen;
	int i, last = -1;

	if (nparts > PROTO_MAX_PARTS) {
		errno = EMSGSIZE;
		return -1;
	}
	iov[0].iov_base = (void *)(uintptr_t)st;
	iov[0].iov_len = stlen;
	for (i = 0; i < nparts; i++) {
		iov[1 + i].iov_base = (void *)(uintptr_t)parts[i].pp_buf;
		iov[1 + i].iov_len = parts[i].pp_len;
		total += parts[i].pp_len;
		if (parts[i].pp_len > 0)
			last = i;
	}
	if (total <= PROTO_MAX_PAYLOAD)
		return proto_sendv(fd, type, PROTO_F_END, reqid, iov, 1 + nparts, NULL, 0);
	if (proto_sendv(fd, type, 0, reqid, iov, 1, NULL, 0) == -1)
		return -1;
	for (i = 0; i <= last; i++)
		if (parts[i].pp_len > 0 && proto_send_data(fd, parts[i].pp_stream, reqid,
		    parts[i].pp_buf, parts[i].pp_len, i == last) == -1)
			return -1;
	return 0;
}

int
proto_msg_whole(const struct proto_msg *m, size_t stlen, size_t datalen)
{
	if (m->pm_hdr.ph_flags & PROTO_F_END)
		return m->pm_hdr.ph_len == stlen + datalen ? 1 : -1;
	/* The struct alone, announcing data that did not fit beside it. */
	return m->pm_hdr.ph_len == stlen && stlen + datalen > PROTO_MAX_PAYLOAD ? 0 : -1;
}

int
proto_send_data(int fd, uint16_t stream, uint32_t reqid, const void *buf,
    size_t len, int end)
{
	const uint8_t *p = buf;

	do {
		size_t n = len > PROTO_MAX_PAYLOAD ? PROTO_MAX_PAYLOAD : len;
		uint16_t fl = stream;

		if (end && n == len)
			fl |= PROTO_F_END;
		if (proto_send(fd, PROTO_DATA, fl, reqid, p, n, NULL, 0) == -1)
			return -1;
		len -= n;
		if (len > 0)
			p += n;		/* never offset a NULL buffer of length 0 */
	} while (len > 0);
	return 0;
}

void
proto_msg_close_fds(struct proto_msg *m)
{
	int i;

	for (i = 0; i < m->pm_nfds; i++)
		if (m->pm_fds[i] >= 0)
			close(m->pm_fds[i]);
	m->pm_nfds = 0;
}

int
proto_recv(int fd, struct proto_msg *m)
{
	struct iovec iov[2];
	struct msghdr msg;
	struct cmsghdr *c;
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cm;
	ssize_t n;

	m->pm_nfds = 0;
	iov[0].iov_base = &m->pm_hdr;
	iov[0].iov_len = sizeof(m->pm_hdr);
	iov[1].iov_base = m->pm_payload;
	iov[1].iov_len = sizeof(m->pm_payload);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	/* Take every descriptor first, so that a refused frame leaks none. */
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t k, cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			int rfd;

			memcpy(&rfd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (m->pm_nfds < PROTO_MAX_FDS)
				m->pm_fds[m->pm_nfds++] = rfd;
			else
				close(rfd);
		}
	}
	if (n == 0)
		return 0;
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < sizeof(m->pm_hdr) ||
	    m->pm_hdr.ph_version != PROTO_VERSION ||
	    m->pm_hdr.ph_type == 0 || m->pm_hdr.ph_type >= PROTO_TYPE_MAX ||
	    m->pm_hdr.ph_len > PROTO_MAX_PAYLOAD ||
	    (size_t)n != sizeof(m->pm_hdr) + m->pm_hdr.ph_len) {
		proto_msg_close_fds(m);
		errno = EPROTO;
		return -1;
	}
	return 1;
}

int
proto_payload_is(const struct proto_msg *m, size_t n)
{
	return m->pm_hdr.ph_len == n;
}

int
proto_id_new(uint8_t id[PROTO_ID_LEN])
{
	size_t got = 0;

	while (got < PROTO_ID_LEN) {
		ssize_t n = getrandom(id + got, PROTO_ID_LEN - got, 0);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += n;
	}
	id[6] = (id[6] & 0x0f) | 0x40;	/* version 4 */
	id[8] = (id[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return 0;
}

void
proto_id_format(const uint8_t id[PROTO_ID_LEN], char out[PROTO_ID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i, o = 0;

	for (i = 0; i < PROTO_ID_LEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

static int
proto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
proto_id_parse(const char *s, size_t len, uint8_t id[PROTO_ID_LEN])
{
	size_t i;
	int o = 0;

	if (len != PROTO_ID_STRLEN)
		return -1;
	for (i = 0; i < len; ) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -1;
			continue;
		}
		if ((hi = proto_hexval(s[i])) < 0 || (lo = proto_hexval(s[i + 1])) < 0)
			return -1;
		id[o++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

const char *
proto_status_name(int status)
{
	switch (status) {
	case PROTO_S_OK:		return "ok";
	case PROTO_S_TIMEOUT:		return "timeout";
	case PROTO_S_MEMORY:		return "memory";
	case PROTO_S_TERMINATED:	return "terminated";
	case PROTO_S_NOT_FOUND:		return "not_found";
	case PROTO_S_BUSY:		return "busy";
	case PROTO_S_FULL:		return "full";
	case PROTO_S_NO_MAIN:		return "no_main";
	case PROTO_S_NOT_JSON:		return "not_json";
	case PROTO_S_INTERNAL:		return "internal";
	case PROTO_S_UNHEALTHY:		return "unhealthy";
	default:			return "unknown";
	}
}
