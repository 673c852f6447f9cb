/*
 * pyexec's configuration: one key = value file read by both programs, each key
 * overridable on the command line as --key=value.  Every limit lives here with
 * its default; deploy/pyexec.conf documents each key.
 */
#ifndef PYEXEC_CFG_H
#define PYEXEC_CFG_H

#include <stddef.h>

#define CFG_DEFAULT_FILE	"/etc/pyexec/pyexec.conf"

struct cfg {
	/* where things live */
	char	socket[108];		/* the daemon's Unix socket */
	char	state_dir[256];		/* the daemon's private directory */
	char	socket_group[64];	/* group allowed to connect (FastCGI workers) */
	char	cgroup[64];		/* name of this daemon's cgroup subtree */
	/* limits */
	unsigned time_limit_ms;		/* wall clock per execution */
	unsigned grace_ms;		/* after the interrupt, before the kill */
	unsigned memory_limit_mb;	/* per session (cgroup) */
	unsigned max_sessions;
	unsigned queue_max;		/* executions waiting per session */
	unsigned output_limit;		/* bytes kept per stream per execution */
	unsigned max_body;		/* request body bytes */
	unsigned idle_timeout_s;	/* a session unused this long ends */
	unsigned pids_max;		/* tasks per session (cgroup pids) */
	unsigned nofile;		/* RLIMIT_NOFILE in a session */
	unsigned tmp_mb;		/* 0: no /tmp in sessions */
	/* sessions */
	unsigned pool_size;		/* sandboxed children kept ready */
	char	preload[256];		/* modules the zygote imports */
	unsigned uid_base;		/* first uid/gid given to sessions */
	unsigned uid_count;		/* size of that range */
	/* fastcgi side */
	unsigned fcgi_threads;		/* requests one pyexec-fcgi process holds; 0: auto */
	unsigned fcgi_processes;	/* > 1: pyexec-fcgi supervises that many */
	unsigned retry_after_s;		/* Retry-After of 503 max sessions */
	/* switches */
	int	allow_degraded;		/* run without cgroups (RLIMIT_AS) */
	int	landlock;
	int	seccomp;
	int	log_debug;
};

/* Fills c with the defaults. */
void	cfg_defaults(struct cfg *c);

/*
 * Reads the file at path into c (over whatever c holds).  With must_exist 0 a
 * missing file is not an error.  Returns 0, or -1 with a message in err.
 */
int	cfg_load(struct cfg *c, const char *path, int must_exist, char *err,
	    size_t errlen);

/* Applies one "key=value" (the command line's --key=value without the dashes).
 * Returns 0, or -1 with a message in err. */
int	cfg_set(struct cfg *c, const char *kv, char *err, size_t errlen);

/* Checks relations between keys.  Returns 0, or -1 with a message in err. */
int	cfg_check(const struct cfg *c, char *err, size_t errlen);

/*
 * The usual start-up of both programs: defaults, then the file (-c FILE or the
 * default path), then every --key=value.  Other arguments are moved to the
 * front of argv (after argv[0]): returns their count, argv[0] included.
 * Exits with a message on a bad key or value.
 */
int	cfg_from_args(struct cfg *c, int argc, char **argv);

/* The reply wait bound of a FastCGI worker: long enough for a full queue. */
unsigned cfg_reply_bound_ms(const struct cfg *c);

/*
 * fcgi_threads when set to 0 (the default): enough threads in the
 * fcgi_processes processes for every session's running and queued executions,
 * plus 32; at most 4096 a process.  cfg_from_args puts it in place of the 0.
 */
unsigned cfg_fcgi_threads_auto(const struct cfg *c);

#endif
