#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"

enum cfg_type { CFG_STR, CFG_UINT, CFG_BOOL };

struct cfg_key {
	const char	*ck_name;
	enum cfg_type	 ck_type;
	size_t		 ck_off;
	size_t		 ck_size;	/* CFG_STR: buffer size */
	unsigned	 ck_min, ck_max;	/* CFG_UINT */
	const char	*ck_default;
};

#define S(name, def)	{ #name, CFG_STR, offsetof(struct cfg, name), \
			  sizeof(((struct cfg *)0)->name), 0, 0, def }
#define U(name, def, lo, hi) { #name, CFG_UINT, offsetof(struct cfg, name), \
			  0, lo, hi, def }
#define B(name, def)	{ #name, CFG_BOOL, offsetof(struct cfg, name), 0, 0, 0, def }

/* The one list of keys.  deploy/pyexec.conf must list the same, with these defaults. */
static const struct cfg_key cfg_keys[] = {
	S(socket,		"/run/pyexec/sessiond.sock"),
	S(state_dir,		"/run/pyexec"),
	S(socket_group,		"www-data"),
	S(cgroup,		"pyexec"),
	U(time_limit_ms,	"2000",		10, 3600000),
	U(grace_ms,		"200",		10, 60000),
	U(memory_limit_mb,	"100",		16, 1048576),
	U(max_sessions,		"40",		1, 100000),
	U(queue_max,		"8",		1, 10000),
	U(output_limit,		"1048576",	1024, 64 << 20),
	U(max_body,		"1048576",	1024, 64 << 20),
	U(idle_timeout_s,	"300",		1, 30 * 86400),
	U(pids_max,		"64",		8, 100000),
	U(nofile,		"256",		32, 65536),
	U(tmp_mb,		"0",		0, 65536),
	U(pool_size,		"2",		0, 1000),
	S(preload,		"numpy pandas"),
	U(uid_base,		"900000",	1000, 2000000000),
	U(uid_count,		"4096",		2, 1000000),
	U(fcgi_threads,		"0",		0, 4096),
	U(fcgi_processes,	"1",		1, 64),
	U(retry_after_s,	"1",		0, 3600),
	B(allow_degraded,	"no"),
	B(landlock,		"yes"),
	B(seccomp,		"yes"),
	B(log_debug,		"no"),
};

static const struct cfg_key *
cfg_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		if (strlen(cfg_keys[i].ck_name) == len &&
		    memcmp(cfg_keys[i].ck_name, name, len) == 0)
			return &cfg_keys[i];
	return NULL;
}

static int
cfg_store(struct cfg *c, const struct cfg_key *k, const char *v, char *err,
    size_t errlen)
{
	char *p = (char *)c + k->ck_off;
	unsigned long n;
	char *end;

	switch (k->ck_type) {
	case CFG_STR:
		if (strlen(v) >= k->ck_size) {
			snprintf(err, errlen, "%s: value too long", k->ck_name);
			return -1;
		}
		strcpy(p, v);	/* length checked above */
		return 0;
	case CFG_UINT:
		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || end == v || *end != '\0' || !isdigit((unsigned char)*v) ||
		    n < k->ck_min || n > k->ck_max) {
			snprintf(err, errlen, "%s: expected a whole number from %u to %u, got \"%s\"",
			    k->ck_name, k->ck_min, k->ck_max, v);
			return -1;
		}
		*(unsigned *)(void *)p = (unsigned)n;
		return 0;
	case CFG_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") ||
		    !strcmp(v, "on"))
			*(int *)(void *)p = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "false") ||
		    !strcmp(v, "0") || !strcmp(v, "off"))
			*(int *)(void *)p = 0;
		else {
			snprintf(err, errlen, "%s: expected yes or no, got \"%s\"",
			    k->ck_name, v);
			return -1;
		}
		return 0;
	default:
		snprintf(err, errlen, "%s: bad key type", k->ck_name);
		return -1;
	}
}

void
cfg_defaults(struct cfg *c)
{
	char err[128];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++)
		if (cfg_store(c, &cfg_keys[i], cfg_keys[i].ck_default, err,
		    sizeof(err)) == -1)
			fatalx("bad built-in default: %s", err);
}

static char *
cfg_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One "key = value" or "key=value" line, already trimmed of comments. */
static int
cfg_apply(struct cfg *c, char *line, char *err, size_t errlen)
{
	const struct cfg_key *k;
	char *eq, *key, *val;

	if ((eq = strchr(line, '=')) == NULL) {
		snprintf(err, errlen, "expected key = value");
		return -1;
	}
	*eq = '\0';
	key = cfg_trim(line);
	val = cfg_trim(eq + 1);
	if ((k = cfg_find(key, strlen(key))) == NULL) {
		snprintf(err, errlen, "unknown key \"%.64s\"", key);
		return -1;
	}
	return cfg_store(c, k, val, err, errlen);
}

int
cfg_set(struct cfg *c, const char *kv, char *err, size_t errlen)
{
	char buf[512];

	if (strlen(kv) >= sizeof(buf)) {
		snprintf(err, errlen, "argument too long");
		return -1;
	}
	strcpy(buf, kv);	/* length checked above */
	return cfg_apply(c, buf, err, errlen);
}

int
cfg_load(struct cfg *c, const char *path, int must_exist, char *err,
    size_t errlen)
{
	char line[1024], msg[256];
	FILE *f;
	int lineno = 0;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash, *s;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		s = cfg_trim(line);
		if (*s == '\0')
			continue;
		if (cfg_apply(c, s, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	return 0;
fail:
	fclose(f);
	return -1;
}

int
cfg_check(const struct cfg *c, char *err, size_t errlen)
{
	if (c->uid_count < c->max_sessions + c->pool_size + 1) {
		snprintf(err, errlen, "uid_count (%u) must exceed max_sessions + pool_size",
		    c->uid_count);
		return -1;
	}
	if (c->socket[0] != '/' || c->state_dir[0] != '/') {
		snprintf(err, errlen, "socket and state_dir must be absolute paths");
		return -1;
	}
	if (strchr(c->cgroup, '/') || !strcmp(c->cgroup, "..") ||
	    !strcmp(c->cgroup, ".") || c->cgroup[0] == '\0') {
		snprintf(err, errlen, "cgroup must be a plain name");
		return -1;
	}
	return 0;
}

int
cfg_from_args(struct cfg *c, int argc, char **argv)
{
	const char *file = CFG_DEFAULT_FILE;
	char err[512];
	int i, must = 0, rest;

	cfg_defaults(c);
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			file = argv[++i];
			must = 1;
		}
	if (cfg_load(c, file, must, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	rest = 1;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c")) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--", 2) && strchr(argv[i], '=')) {
			if (cfg_set(c, argv[i] + 2, err, sizeof(err)) == -1)
				fatalx("command line: %s", err);
			continue;
		}
		argv[rest++] = argv[i];
	}
	if (cfg_check(c, err, sizeof(err)) == -1)
		fatalx("config: %s", err);
	if (c->fcgi_threads == 0)
		c->fcgi_threads = cfg_fcgi_threads_auto(c);
	log_debug_on = c->log_debug;
	return rest;
}

unsigned
cfg_fcgi_threads_auto(const struct cfg *c)
{
	/*
	 * Every execution waiting in a session's queue holds a worker thread
	 * until it is answered: with fewer threads than sessions times their
	 * queues, a client keeping queues full would leave none for anyone
	 * else (architecture rule 5).  32 more for what needs no session.
	 */
	unsigned long need = (unsigned long)c->max_sessions * (c->queue_max + 1) + 32;
	unsigned long per = (need + c->fcgi_processes - 1) / c->fcgi_processes;

	return per > 4096 ? 4096 : (unsigned)per;
}

unsigned
cfg_reply_bound_ms(const struct cfg *c)
{
	unsigned long b;

	b = (unsigned long)(c->queue_max + 1) * (c->time_limit_ms + c->grace_ms + 500) +
	    10000;
	return b > UINT_MAX ? UINT_MAX : (unsigned)b;
}
