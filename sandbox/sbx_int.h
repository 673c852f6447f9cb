/*
 * Internal to sandbox/: what the mechanism files share with the orchestrator
 * (sbx.c). Nothing here is part of the public interface (sbx.h).
 *
 * Naming follows style-anchors.md convention 4: sbx_<m>_prepare() runs once
 * in the zygote, sbx_<m>_child() in each session child. Every function
 * returns 0 or -1 and, on -1, has filled err.
 */
#ifndef SBX_INT_H
#define SBX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sbx.h"

/* Python locations of Debian's python3.11; the Makefile passes them. */
#ifndef PYEXEC_PY_STDLIB
#define PYEXEC_PY_STDLIB	"/usr/lib/python3.11"
#endif
#ifndef PYEXEC_PY_SITE
#define PYEXEC_PY_SITE		"/usr/lib/python3/dist-packages"
#endif

#define SBX_SANDBOX_DIR		"/sandbox"	/* empty working directory of the child */
#define SBX_DESC_LEN		96

struct sbx_bpf;				/* compiled seccomp program, sbx_seccomp.c */

struct sbx {
	char		*sb_root;	/* template root (copy of sp_root_dir) */
	unsigned	 sb_tmp_mb;
	unsigned	 sb_nofile;
	unsigned	 sb_nproc;
	unsigned	 sb_fsize_mb;
	int		 sb_landlock_abi; /* 0: not used (configuration or kernel) */
	int		 sb_landlock_cfg; /* sp_landlock as configured */
	int		 sb_ncaps;	/* capabilities this kernel knows */
	void		*sb_nocaps;	/* libcap cap_t: the empty set, made in the zygote */
	struct sbx_bpf	*sb_bpf;	/* NULL: seccomp disabled by configuration */
	char		 sb_desc[SBX_DESC_LEN];
};

/* sbx.c */
void	sbx_errf(char *err, size_t errlen, int errnum, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/* sbx_ns.c */
int	sbx_ns_child(char *err, size_t errlen);

/* sbx_mount.c */
int	sbx_mount_prepare(const char *root, unsigned tmp_mb, char *err, size_t errlen);
int	sbx_mount_child(const struct sbx *s, uid_t uid, gid_t gid, char *err, size_t errlen);

/* sbx_elf.c */
typedef int (*sbx_elf_needed_cb)(const char *soname, void *arg);
int	sbx_elf_needed(const char *path, sbx_elf_needed_cb cb, void *arg,
	    char *err, size_t errlen);

/* sbx_rlimit.c */
int	sbx_rlimit_child(const struct sbx *s, char *err, size_t errlen);

/* sbx_fd.c */
int	sbx_fd_child(int max_keep_fd, char *err, size_t errlen);

/* sbx_caps.c */
int	sbx_caps_prepare(void **nocaps);	/* the kernel's capability count, or -1 */
int	sbx_caps_bounding_child(int ncaps, char *err, size_t errlen);
int	sbx_caps_ids_child(uid_t uid, gid_t gid, char *err, size_t errlen);
int	sbx_caps_clear_child(void *nocaps, uid_t uid, gid_t gid, char *err, size_t errlen);
int	sbx_caps_nnp_child(char *err, size_t errlen);

/* sbx_landlock.c */
int	sbx_landlock_prepare(int *abi, char *err, size_t errlen);
int	sbx_landlock_child(const struct sbx *s, char *err, size_t errlen);

/* sbx_seccomp.c */
struct sbx_bpf *sbx_seccomp_prepare(int tmp_on, char *err, size_t errlen);
int	sbx_seccomp_child(const struct sbx_bpf *b, char *err, size_t errlen);
void	sbx_seccomp_free(struct sbx_bpf *b);

#endif /* SBX_INT_H */
