#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "sess_cgroup.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif

#define CG_FS	"/sys/fs/cgroup"

enum cg_kind { CG_NONE, CG_V1, CG_V2 };

/* v1 controllers we use; [0] (memory) is required, the others are used when mounted. */
static const char *const cg_v1_ctl[CG_MAX_PROCS_FDS] = { "memory", "pids", "cpu", "freezer" };
#define CG_V1_FREEZER	3
/*
 * The order the v1 hierarchies are set up, and their stale cgroups cleaned:
 * the freezer first, since a frozen task killed from another hierarchy dies
 * only once thawed.
 */
static const int cg_v1_order[CG_MAX_PROCS_FDS] = { CG_V1_FREEZER, 0, 1, 2 };

static struct {
	enum cg_kind	kind;
	char		base[CG_MAX_PROCS_FDS][PATH_MAX];	/* subtree per hierarchy; "" if unused */
	int		nbase;
	unsigned long long mem_bytes;
	unsigned	pids_max;
} cg_g;

struct cg {
	char	g_dir[CG_MAX_PROCS_FDS][PATH_MAX];	/* "" when unused */
	int	g_procs[CG_MAX_PROCS_FDS];		/* cgroup.procs, until placed */
	int	g_events;				/* memory events, for OOM kills */
	int	g_pids;					/* pids.current, or -1 */
	int	g_freeze;				/* the freezer's control, or -1 */
};

/* dir/file into path (PATH_MAX bytes); -1 with ENAMETOOLONG if it does not fit. */
static int
cg_path(char *path, const char *dir, const char *file)
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, file);

	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
cg_write(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	int fd, n, saved;

	if (cg_path(path, dir, file) == -1)
		return -1;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	n = write(fd, val, strlen(val));
	saved = errno;
	close(fd);
	errno = saved;
	return n == (int)strlen(val) ? 0 : -1;
}

static int
cg_exists(const char *dir, const char *file)
{
	char path[PATH_MAX];

	return cg_path(path, dir, file) == 0 && access(path, F_OK) == 0;
}

/* Reads "key N" from a flat-keyed cgroup file through an open descriptor. */
static uint64_t
cg_read_key(int fd, const char *key)
{
	char buf[1024], *p;
	size_t klen = strlen(key);
	ssize_t n;

	if (fd < 0 || (n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoull(p + klen + 1, NULL, 10);
	return 0;
}

/* Kills every task of the cgroup at dir by reading its cgroup.procs. */
static void
cg_kill_dir(const char *dir)
{
	char path[PATH_MAX];
	FILE *f;
	long pid;

	if (cg_g.kind == CG_V2 && cg_write(dir, "cgroup.kill", "1") == 0)
		return;
	if (cg_path(path, dir, "cgroup.procs") == -1 || (f = fopen(path, "re")) == NULL)
		return;
	while (fscanf(f, "%ld", &pid) == 1)
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
	fclose(f);
	/* A frozen task takes its SIGKILL only once thawed (v1; v2 without cgroup.kill). */
	(void)cg_write(dir, cg_g.kind == CG_V2 ? "cgroup.freeze" : "freezer.state",
	    cg_g.kind == CG_V2 ? "0" : "THAWED");
}

/* A daemon that died without cleaning up leaves s<N> cgroups: end them. */
static void
cg_clean_stale(const char *base)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int tries;

	if ((d = opendir(base)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != 's' || de->d_type != DT_DIR)
			continue;
		if (cg_path(path, base, de->d_name) == -1)
			continue;
		for (tries = 0; tries < 50 && rmdir(path) == -1 && errno == EBUSY;
		    tries++) {
			cg_kill_dir(path);
			usleep(20000);
		}
		log_warn("event=cgroup_stale path=%s removed=%s", path,
		    access(path, F_OK) == 0 ? "no" : "yes");
	}
	closedir(d);
}

static int
cg_mkbase(const char *hier, const char *name, char *out, char *err, size_t errlen)
{
	if (cg_path(out, hier, name) == -1) {
		snprintf(err, errlen, "cgroup path too long");
		out[0] = '\0';
		return -1;
	}
	if (mkdir(out, 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", out, strerror(errno));
		out[0] = '\0';
		return -1;
	}
	cg_clean_stale(out);
	log_info("event=cgroup_subtree path=%s", out);
	return 0;
}

/* Whether the space-separated list in dir/file holds word. */
static int
cg_has_word(const char *dir, const char *file, const char *word)
{
	char path[PATH_MAX], buf[512], *tok, *save;
	ssize_t n;
	int fd;

	if (cg_path(path, dir, file) == -1 || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, word))
			return 1;
	return 0;
}

/*
 * cgroup v2: the cgroup the daemon was started in, when it holds no other
 * process and offers the memory and pids controllers: a service manager's
 * unit with delegation (systemd's Delegate=yes, as in deploy/systemd), or
 * the root of a container's cgroup namespace with the daemon alone in it
 * (the host's root always holds kernel threads).  The sessions' subtree then
 * goes inside it, where the manager accounts for it and stops it with the
 * unit, and nothing above is touched.  A cgroup that gives controllers to
 * its children may hold no process itself, so the daemon moves into a leaf,
 * <name>.daemon (its zygote will start there).  Returns 1 with dir set to
 * the cgroup when it did, 0 to use /sys/fs/cgroup (a login shell's scope, a
 * crowded cgroup).
 */
static int
cg_v2_own(const char *name, char *dir)
{
	char line[PATH_MAX + 8], path[PATH_MAX], leaf[PATH_MAX];
	const char *rel = NULL;
	long pid;
	int n = 0, self = 0;
	size_t len;
	FILE *f;

	if ((f = fopen("/proc/self/cgroup", "re")) == NULL)
		return 0;
	while (rel == NULL && fgets(line, sizeof(line), f) != NULL)
		if (!strncmp(line, "0::", 3))
			rel = line + 3;
	fclose(f);
	if (rel == NULL || (len = strcspn(rel, "\n")) == 0 || rel[0] != '/')
		return 0;
	if (snprintf(dir, PATH_MAX, "%s%.*s", CG_FS, len > 1 ? (int)len : 0, rel) >= PATH_MAX)
		return 0;
	if (cg_path(path, dir, "cgroup.procs") == -1 || (f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%ld", &pid) == 1) {
		n++;
		self += pid == (long)getpid();
	}
	fclose(f);
	if (n != 1 || !self || !cg_has_word(dir, "cgroup.controllers", "memory") ||
	    !cg_has_word(dir, "cgroup.controllers", "pids"))
		return 0;
	if (snprintf(leaf, sizeof(leaf), "%s/%s.daemon", dir, name) >= (int)sizeof(leaf) ||
	    (mkdir(leaf, 0755) == -1 && errno != EEXIST))
		return 0;
	if (cg_write(leaf, "cgroup.procs", "0") == -1) {
		log_warn("event=cgroup_leaf_failed path=%s errno=\"%s\"", leaf, strerror(errno));
		(void)rmdir(leaf);
		return 0;
	}
	return 1;
}

int
cg_init(const struct cfg *c, char *err, size_t errlen)
{
	struct statfs sf;
	char hier[PATH_MAX], own[PATH_MAX];
	const char *top;
	int i;

	cg_g.mem_bytes = (unsigned long long)c->memory_limit_mb << 20;
	cg_g.pids_max = c->pids_max;
	if (statfs(CG_FS, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
		cg_g.kind = CG_V2;
		top = cg_v2_own(c->cgroup, own) ? own : CG_FS;
		/* Controllers must be enabled on every level above a session. */
		if (cg_write(top, "cgroup.subtree_control", "+memory") == -1 ||
		    cg_write(top, "cgroup.subtree_control", "+pids") == -1) {
			snprintf(err, errlen, "cannot enable memory and pids controllers in %s: %s%s",
			    top, strerror(errno), errno != EBUSY ? "" :
			    " (other processes are in it: start the daemon alone in a cgroup "
			    "of its own, such as a systemd unit with Delegate=yes)");
			cg_g.kind = CG_NONE;
			return errno == EACCES || errno == EROFS || errno == EPERM ? 0 : -1;
		}
		(void)cg_write(top, "cgroup.subtree_control", "+cpu");
		if (cg_mkbase(top, c->cgroup, cg_g.base[0], err, errlen) == -1) {
			cg_g.kind = CG_NONE;
			return 0;
		}
		if (cg_write(cg_g.base[0], "cgroup.subtree_control", "+memory +pids") == -1) {
			snprintf(err, errlen, "%s: cannot enable controllers: %s",
			    cg_g.base[0], strerror(errno));
			cg_g.kind = CG_NONE;
			return -1;
		}
		(void)cg_write(cg_g.base[0], "cgroup.subtree_control", "+cpu");
		cg_g.nbase = 1;
		return 1;
	}
	cg_g.kind = CG_V1;
	for (int k = 0; k < CG_MAX_PROCS_FDS; k++) {
		i = cg_v1_order[k];
		if (cg_path(hier, CG_FS, cg_v1_ctl[i]) == -1)
			continue;
		if (!cg_exists(hier, "cgroup.procs")) {
			if (i == 0) {
				snprintf(err, errlen, "no cgroup v2 at %s and no v1 memory hierarchy",
				    CG_FS);
				cg_g.kind = CG_NONE;
				return 0;
			}
			log_warn("event=cgroup_missing controller=%s", cg_v1_ctl[i]);
			continue;
		}
		if (cg_mkbase(hier, c->cgroup, cg_g.base[i], err, errlen) == -1) {
			if (i == 0) {
				cg_g.kind = CG_NONE;
				return errno == EACCES || errno == EROFS || errno == EPERM ? 0 : -1;
			}
			log_warn("event=cgroup_unusable controller=%s", cg_v1_ctl[i]);
		}
	}
	if (cg_g.base[0][0] != '\0')
		(void)cg_write(cg_g.base[0], "memory.use_hierarchy", "1");
	cg_g.nbase = CG_MAX_PROCS_FDS;
	return 1;
}

const char *
cg_mode(void)
{
	return cg_g.kind == CG_V2 ? "v2" : cg_g.kind == CG_V1 ? "v1" : "none";
}

static int
cg_limits_v2(const char *dir)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", cg_g.mem_bytes);
	if (cg_write(dir, "memory.max", v) == -1)
		return -1;
	if (cg_exists(dir, "memory.swap.max") && cg_write(dir, "memory.swap.max", "0") == -1)
		return -1;
	/* One OOM kill ends the whole session, not one of its processes. */
	(void)cg_write(dir, "memory.oom.group", "1");
	snprintf(v, sizeof(v), "%u", cg_g.pids_max);
	if (cg_write(dir, "pids.max", v) == -1)
		return -1;
	/* At most one CPU per session: a spinning thread cannot take the machine. */
	if (cg_exists(dir, "cpu.max"))
		(void)cg_write(dir, "cpu.max", "100000 100000");
	return 0;
}

static int
cg_limits_v1(int i, const char *dir)
{
	char v[32];

	switch (i) {
	case 0:
		snprintf(v, sizeof(v), "%llu", cg_g.mem_bytes);
		if (cg_write(dir, "memory.limit_in_bytes", v) == -1)
			return -1;
		/* memsw = memory + swap: equal to the memory limit means no swap. */
		if (cg_exists(dir, "memory.memsw.limit_in_bytes") &&
		    cg_write(dir, "memory.memsw.limit_in_bytes", v) == -1)
			return -1;
		(void)cg_write(dir, "memory.swappiness", "0");
		return 0;
	case 1:
		snprintf(v, sizeof(v), "%u", cg_g.pids_max);
		return cg_write(dir, "pids.max", v);
	case 2:
		(void)cg_write(dir, "cpu.cfs_period_us", "100000");
		(void)cg_write(dir, "cpu.cfs_quota_us", "100000");
		return 0;
	case CG_V1_FREEZER:	/* nothing to set: frozen only between runs */
	default:
		return 0;
	}
}

static int
cg_open(const char *dir, const char *file, int flags)
{
	char path[PATH_MAX];

	if (cg_path(path, dir, file) == -1)
		return -1;
	return open(path, flags | O_CLOEXEC);
}

struct cg *
cg_create(uint32_t serial)
{
	char name[16];
	struct cg *g;
	int i;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		log_err("func=%s calloc failed", __func__);
		return NULL;
	}
	for (i = 0; i < CG_MAX_PROCS_FDS; i++)
		g->g_procs[i] = -1;
	g->g_events = g->g_pids = g->g_freeze = -1;
	if (cg_g.kind == CG_NONE)
		return g;
	for (i = 0; i < cg_g.nbase; i++) {
		char *dir = g->g_dir[i];
		int r;

		if (cg_g.base[i][0] == '\0')
			continue;
		snprintf(name, sizeof(name), "s%u", serial);
		if (cg_path(dir, cg_g.base[i], name) == -1 || mkdir(dir, 0755) == -1) {
			log_err("func=%s mkdir=%s errno=\"%s\"", __func__, dir, strerror(errno));
			dir[0] = '\0';
			goto fail;
		}
		r = cg_g.kind == CG_V2 ? cg_limits_v2(dir) : cg_limits_v1(i, dir);
		if (r == -1 || (g->g_procs[i] = cg_open(dir, "cgroup.procs", O_WRONLY)) == -1) {
			log_err("func=%s dir=%s errno=\"%s\"", __func__, dir, strerror(errno));
			goto fail;
		}
	}
	if (cg_g.kind == CG_V2) {
		g->g_events = cg_open(g->g_dir[0], "memory.events", O_RDONLY);
		g->g_pids = cg_open(g->g_dir[0], "pids.current", O_RDONLY);
		g->g_freeze = cg_open(g->g_dir[0], "cgroup.freeze", O_WRONLY);
	} else {
		g->g_events = cg_open(g->g_dir[0], "memory.oom_control", O_RDONLY);
		if (g->g_dir[1][0] != '\0')
			g->g_pids = cg_open(g->g_dir[1], "pids.current", O_RDONLY);
		if (g->g_dir[CG_V1_FREEZER][0] != '\0')
			g->g_freeze = cg_open(g->g_dir[CG_V1_FREEZER], "freezer.state", O_WRONLY);
	}
	if (g->g_events == -1) {
		log_err("func=%s no OOM counter in %s", __func__, g->g_dir[0]);
		goto fail;
	}
	return g;
fail:
	cg_kill_all(g);
	if (cg_destroy(g) == -1)
		log_err("func=%s cgroup of serial %u left behind", __func__, serial);
	return NULL;
}

int
cg_procs_fds(const struct cg *g, int *fds)
{
	int i, n = 0;

	for (i = 0; i < CG_MAX_PROCS_FDS; i++)
		if (g->g_procs[i] >= 0)
			fds[n++] = g->g_procs[i];
	return n;
}

void
cg_procs_close(struct cg *g)
{
	int i;

	for (i = 0; i < CG_MAX_PROCS_FDS; i++)
		if (g->g_procs[i] >= 0) {
			close(g->g_procs[i]);
			g->g_procs[i] = -1;
		}
}

uint64_t
cg_oom_kills(struct cg *g)
{
	return cg_read_key(g->g_events, "oom_kill");
}

int
cg_tasks(struct cg *g)
{
	char buf[32];
	ssize_t n;

	if (g->g_pids < 0 || (n = pread(g->g_pids, buf, sizeof(buf) - 1, 0)) <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

int
cg_freeze(struct cg *g, int on)
{
	const char *v = cg_g.kind == CG_V2 ? (on ? "1" : "0") : (on ? "FROZEN" : "THAWED");

	if (g->g_freeze < 0)
		return -1;
	return pwrite(g->g_freeze, v, strlen(v), 0) == (ssize_t)strlen(v) ? 0 : -1;
}

void
cg_kill_all(struct cg *g)
{
	int i;

	for (i = 0; i < CG_MAX_PROCS_FDS; i++)
		if (g->g_dir[i][0] != '\0') {
			cg_kill_dir(g->g_dir[i]);
			if (cg_g.kind == CG_V2)
				break;
		}
}

int
cg_destroy(struct cg *g)
{
	int i;

	if (g == NULL)
		return 0;
	for (i = 0; i < CG_MAX_PROCS_FDS; i++) {
		if (g->g_dir[i][0] == '\0')
			continue;
		if (rmdir(g->g_dir[i]) == -1 && errno != ENOENT)
			return -1;
		g->g_dir[i][0] = '\0';
	}
	cg_procs_close(g);
	if (g->g_events >= 0)
		close(g->g_events);
	if (g->g_pids >= 0)
		close(g->g_pids);
	if (g->g_freeze >= 0)
		close(g->g_freeze);
	free(g);
	return 0;
}

void
cg_abandon(struct cg *g)
{
	int i;

	if (g == NULL)
		return;
	for (i = 0; i < CG_MAX_PROCS_FDS; i++)
		g->g_dir[i][0] = '\0';
	(void)cg_destroy(g);
}

void
cg_fini(void)
{
	int i;

	for (int k = 0; k < cg_g.nbase; k++) {
		i = cg_g.kind == CG_V1 ? cg_v1_order[k] : k;
		if (cg_g.base[i][0] != '\0') {
			cg_clean_stale(cg_g.base[i]);
			if (rmdir(cg_g.base[i]) == -1 && errno != ENOENT)
				log_warn("event=cgroup_left path=%s errno=\"%s\"",
				    cg_g.base[i], strerror(errno));
		}
	}
}
