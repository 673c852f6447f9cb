/*
 * Identity and privileges of the session child: bounding set, securebits,
 * uid/gid/groups, capabilities, no_new_privs. A failure at any step is
 * fatal for the child (style-anchors.md, convention 5): sbx_enter returns
 * -1 and the caller _exits.
 *
 * With libcap, but without allocating in the child: in a freshly forked
 * child the first malloc (arena set-up, copy-on-write faults) cost more than
 * the rest of this file together (~0.2 ms), so the empty cap_t the child
 * installs is made once in the zygote, and the checks read the kernel's
 * state with capget(2) into the stack.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx_int.h"

/* In the zygote: how many capabilities the running kernel has, and the
 * empty set children install. */
int
sbx_caps_prepare(void **nocaps)
{
	int	cap;

	if ((*nocaps = cap_init()) == NULL)
		return -1;

	/*
	 * The kernel's count, not a compile-time one: PR_CAPBSET_READ says
	 * EINVAL past the last capability this kernel knows, so a newer
	 * kernel's capabilities are covered too.
	 */
	for (cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == -1 && errno == EINVAL)
			break;
	return cap;
}

int
sbx_caps_bounding_child(int ncaps, char *err, size_t errlen)
{
	int	cap;

	/*
	 * Nothing here execs (seccomp refuses it), but the bounding set is
	 * what caps a capability gain by any route we did not think of
	 * (file capabilities, a setuid binary reached somehow): empty it.
	 */
	for (cap = 0; cap < ncaps; cap++)
		if (cap_drop_bound((cap_value_t)cap) == -1) {
			sbx_errf(err, errlen, errno, "sbx_caps: drop bounding cap %d", cap);
			return -1;
		}
	return 0;
}

int
sbx_caps_ids_child(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	/*
	 * Securebits are set before the uid switch because locking them
	 * needs CAP_SETPCAP, which the switch takes away. The bits: uid 0
	 * never confers capabilities again (NOROOT); the switch below does
	 * clear permitted, effective and ambient sets (NO_SETUID_FIXUP stays
	 * off) and KEEP_CAPS stays off; ambient capabilities can never be
	 * raised; and all of it is locked, so it holds for every descendant.
	 */
	if (cap_set_secbits(
	    SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
	    SECBIT_NO_SETUID_FIXUP_LOCKED |
	    SECBIT_KEEP_CAPS_LOCKED |
	    SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: lock securebits");
		return -1;
	}
	if (cap_reset_ambient() == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: clear ambient set");
		return -1;
	}
	/* Groups and gid first: changing them needs CAP_SETGID, gone after setresuid. */
	if (setgroups(0, NULL) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: setgroups");
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: setresgid %u", (unsigned)gid);
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: setresuid %u", (unsigned)uid);
		return -1;
	}
	return 0;
}

int
sbx_caps_clear_child(void *nocaps, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct __user_cap_header_struct	h;
	struct __user_cap_data_struct	d[_LINUX_CAPABILITY_U32S_3];
	uid_t				ru, eu, su;
	gid_t				rg, eg, sg;
	int				i;

	/*
	 * The uid switch has already emptied the sets (fixup locked on);
	 * set them empty explicitly anyway, then check everything, so that a
	 * kernel or libc surprise fails here and not in production.
	 */
	if (cap_set_proc((cap_t)nocaps) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: cap_set_proc");
		return -1;
	}
	memset(&h, 0, sizeof(h));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	memset(d, 0xff, sizeof(d));
	if (syscall(SYS_capget, &h, d) == -1) {
		sbx_errf(err, errlen, errno, "sbx_caps: capget");
		return -1;
	}
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (d[i].effective != 0 || d[i].permitted != 0 || d[i].inheritable != 0) {
			sbx_errf(err, errlen, 0, "sbx_caps: capabilities still held");
			return -1;
		}
	/*
	 * No re-read of the bounding and ambient sets: each bounding drop
	 * returned 0 above, and the kernel keeps ambient a subset of
	 * permitted, just checked empty. (At ~2 us a system call here, the
	 * re-read cost a fifth of sbx_enter; the unit test checks both.)
	 */
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != uid || eu != uid || su != uid ||
	    rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0) {
		sbx_errf(err, errlen, 0, "sbx_caps: ids not switched");
		return -1;
	}
	/* The classic check: a dropped root must not be able to come back. */
	if (setuid(0) != -1 || setgid(0) != -1) {
		sbx_errf(err, errlen, 0, "sbx_caps: could regain root");
		return -1;
	}
	return 0;
}

int
sbx_caps_nnp_child(char *err, size_t errlen)
{
	/*
	 * no_new_privs: no execve can ever grant privileges again (setuid
	 * bits, file capabilities), and it is what lets an unprivileged
	 * process install Landlock and seccomp filters.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		sbx_errf(err, errlen, errno, "sbx_caps: no_new_privs");
		return -1;
	}
	return 0;
}
