/*
 * The session daemon's wire format: one frame per AF_UNIX SOCK_SEQPACKET
 * datagram, a fixed header then at most PROTO_MAX_PAYLOAD bytes of payload.
 * Spoken on three kinds of link: FastCGI worker <-> daemon, daemon <-> zygote,
 * daemon <-> session child.  Payloads are fixed structs in host byte order (both
 * ends are on one machine) or raw bytes (code, output).  Code or output that
 * fits travels in the frame of the struct that announces its length; larger
 * ones as PROTO_DATA frames after it, the way FastCGI records do.  This
 * module is the only code that casts buffers.
 */
#ifndef PYEXEC_PROTO_H
#define PYEXEC_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_VERSION		1
#define PROTO_MAX_PAYLOAD	65536
#define PROTO_MAX_FDS		8
#define PROTO_ID_LEN		16	/* a session id: UUID v4, binary */
#define PROTO_ID_STRLEN		36	/* its text form, without the NUL */

struct proto_hdr {
	uint8_t		ph_version;
	uint8_t		ph_type;
	uint16_t	ph_flags;
	uint32_t	ph_reqid;	/* echoed in the reply */
	uint32_t	ph_len;		/* payload bytes after the header */
};

enum proto_type {
	/* FastCGI worker -> daemon */
	PROTO_EXEC = 1,		/* struct proto_exec + code (a message) */
	PROTO_DELETE,		/* struct proto_sid */
	PROTO_HEALTH,		/* empty */
	PROTO_METRICS,		/* empty */
	/* daemon -> FastCGI worker */
	PROTO_RESULT,		/* struct proto_result + out, err, result (a message) */
	PROTO_STATUS,		/* struct proto_stat */
	PROTO_METRICS_REPLY,	/* struct proto_metrics */
	/* daemon <-> zygote */
	PROTO_FORK,		/* struct proto_fork; fds: ctl, out, err, cgroup procs... */
	PROTO_FORKED,		/* struct proto_forked; fd: pidfd (when ok) */
	PROTO_ZYGOTE_HELLO,	/* struct cfg: the daemon's configuration */
	PROTO_ZYGOTE_READY,	/* text: the sandbox layers in force */
	/* daemon <-> session child */
	PROTO_RUN,		/* struct proto_run + code (a message) */
	PROTO_CHILD_READY,	/* empty */
	PROTO_CHILD_FAIL,	/* text: why set-up failed (logged, never to clients) */
	PROTO_DONE,		/* struct proto_done + script result (a message) */
	/* any direction */
	PROTO_DATA,		/* raw bytes; ph_flags: stream, END */
	PROTO_TYPE_MAX
};

/* ph_flags */
#define PROTO_F_END		0x0001	/* last frame of a message */
#define PROTO_F_STREAM_MASK	0x0f00
#define PROTO_STREAM_CODE	0x0100
#define PROTO_STREAM_OUT	0x0200
#define PROTO_STREAM_ERR	0x0300
#define PROTO_STREAM_RESULT	0x0400

enum proto_mode {
	PROTO_MODE_CODE = 1,	/* run in the session's namespace */
	PROTO_MODE_SCRIPT	/* one-shot: run, call main(), return its JSON */
};

struct proto_exec {
	uint8_t		pe_mode;	/* enum proto_mode */
	uint8_t		pe_has_id;
	uint8_t		pe_pad[2];
	uint32_t	pe_code_len;
	uint8_t		pe_id[PROTO_ID_LEN];
};

struct proto_sid {
	uint8_t		ps_id[PROTO_ID_LEN];
};

/* Outcome of a request, as the daemon reports it. */
enum proto_status {
	PROTO_S_OK = 1,		/* ran; streams follow */
	PROTO_S_TIMEOUT,
	PROTO_S_MEMORY,
	PROTO_S_TERMINATED,
	PROTO_S_NOT_FOUND,
	PROTO_S_BUSY,
	PROTO_S_FULL,		/* max sessions reached */
	PROTO_S_NO_MAIN,	/* script mode: no main() */
	PROTO_S_NOT_JSON,	/* script mode: result not serializable */
	PROTO_S_INTERNAL,
	PROTO_S_UNHEALTHY,
	PROTO_S_MAX
};

struct proto_result {
	uint8_t		pr_status;	/* enum proto_status */
	uint8_t		pr_has_result;	/* script mode: main() returned */
	uint8_t		pr_pad[2];
	uint8_t		pr_id[PROTO_ID_LEN];	/* zero in script mode */
	uint32_t	pr_out_len;	/* bytes of each stream that follow */
	uint32_t	pr_err_len;
	uint32_t	pr_res_len;
	uint32_t	pr_out_dropped;	/* bytes over the output limit */
	uint32_t	pr_err_dropped;
};

struct proto_stat {
	uint8_t		pst_status;
	uint8_t		pst_pad[3];
};

#define PROTO_HIST_BUCKETS	12
struct proto_metrics {
	uint64_t	pm_sessions_live;
	uint64_t	pm_sessions_created;
	uint64_t	pm_exec[PROTO_S_MAX];	/* by outcome */
	uint64_t	pm_exec_stderr;		/* OK executions that wrote stderr */
	uint64_t	pm_lat_bucket[PROTO_HIST_BUCKETS];	/* cumulative counts */
	uint64_t	pm_lat_count;
	uint64_t	pm_lat_sum_us;
	uint64_t	pm_queue_wait_count;
	uint64_t	pm_queue_wait_sum_us;
	uint64_t	pm_pool_ready;
	uint64_t	pm_zygote_restarts;
};

struct proto_fork {
	uint32_t	pf_serial;	/* echoed in PROTO_FORKED */
	uint32_t	pf_uid;		/* the child's uid and gid */
	uint32_t	pf_ncg;		/* cgroup.procs fds among the fds */
	uint32_t	pf_warm;	/* warm up before saying ready */
};

struct proto_forked {
	uint32_t	pfk_serial;
	int32_t		pfk_pid;	/* > 0 on success */
	int32_t		pfk_errno;
};

struct proto_run {
	uint8_t		prn_mode;	/* enum proto_mode */
	uint8_t		prn_pad[3];
	uint32_t	prn_code_len;
};

enum proto_done_status {
	PROTO_D_OK = 1,		/* ran to the end (exceptions included) */
	PROTO_D_MEMERR,		/* a MemoryError reached the top level */
	PROTO_D_NO_MAIN,
	PROTO_D_NOT_JSON,
	PROTO_D_RESULT		/* script mode: main() returned, JSON follows */
};

struct proto_done {
	uint8_t		pd_status;	/* enum proto_done_status */
	uint8_t		pd_pad[3];
	uint32_t	pd_res_len;
};

/* A received frame. */
struct proto_msg {
	struct proto_hdr pm_hdr;
	uint8_t		 pm_payload[PROTO_MAX_PAYLOAD];
	int		 pm_fds[PROTO_MAX_FDS];	/* owned by the receiver */
	int		 pm_nfds;
};

/*
 * Sends one frame (header + payload) and optional descriptors.  Retries EINTR.
 * Returns 0, or -1 with errno set (EAGAIN on a full non-blocking socket).
 */
int	proto_send(int fd, uint8_t type, uint16_t flags, uint32_t reqid,
	    const void *payload, size_t len, const int *fds, int nfds);

/*
 * A message: a struct announcing the lengths of its data, then the data, in
 * parts.  When struct and data fit in one frame they go as that one frame,
 * flagged END.  Otherwise the frame holds the struct alone and each
 * non-empty part follows as DATA frames of its stream, the last flagged END.
 * Returns 0 or -1 (errno).
 */
#define PROTO_MAX_PARTS		3
struct proto_part {
	uint16_t	 pp_stream;	/* PROTO_STREAM_* */
	const void	*pp_buf;
	size_t		 pp_len;
};
int	proto_send_msg(int fd, uint8_t type, uint32_t reqid, const void *st,
	    size_t stlen, const struct proto_part *parts, int nparts);

/*
 * For a received message whose struct (stlen bytes) announces datalen bytes
 * of data: 1 if the frame carries all of it (the data at
 * m->pm_payload + stlen), 0 if the data follows as DATA frames, -1 if the
 * frame is neither (a protocol violation).
 */
int	proto_msg_whole(const struct proto_msg *m, size_t stlen, size_t datalen);

/*
 * Sends len bytes of one stream as DATA frames; the last carries PROTO_F_END
 * when end is set (len 0 with end sends one empty END frame).  Returns 0 or -1.
 */
int	proto_send_data(int fd, uint16_t stream, uint32_t reqid, const void *buf,
	    size_t len, int end);

/*
 * Receives one frame into m and checks it: the datagram is exactly header +
 * ph_len, the version is ours, the type known, the payload at most
 * PROTO_MAX_PAYLOAD.  Received descriptors are in m->pm_fds (close them when
 * the frame is refused: proto_msg_close_fds).  Returns 1 on a frame, 0 on end
 * of stream, -1 on error (errno; EPROTO for a malformed frame, EAGAIN).
 */
int	proto_recv(int fd, struct proto_msg *m);

/* Checks that a frame's payload is exactly one struct of size n. */
int	proto_payload_is(const struct proto_msg *m, size_t n);

void	proto_msg_close_fds(struct proto_msg *m);

/* Session ids: a fresh UUID v4 from getrandom(2); text form (lowercase, 36
 * chars + NUL into out[37]); parse of the text form (either case).
 * proto_id_parse returns 0, or -1 if s is not a UUID. */
int	proto_id_new(uint8_t id[PROTO_ID_LEN]);
void	proto_id_format(const uint8_t id[PROTO_ID_LEN], char out[PROTO_ID_STRLEN + 1]);
int	proto_id_parse(const char *s, size_t len, uint8_t id[PROTO_ID_LEN]);

const char *proto_status_name(int status);

#endif
