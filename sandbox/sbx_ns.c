/*
 * Namespaces of the session child. The PID namespace is not made here: the
 * zygote unshares CLONE_NEWPID before fork so that the child is pid 1 of its
 * own namespace (a process cannot move itself into a new PID namespace).
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "sbx_int.h"

/* The host name is the only UTS datum user code can read; hide the host's. */
#define SBX_HOSTNAME	"pyexec"

int
sbx_ns_child(char *err, size_t errlen)
{
	/*
	 * NEWNET: a fresh network namespace has only a loopback interface,
	 * left down, so there is no route anywhere, and its abstract Unix
	 * socket names are private to the session (lessons.md: abstract
	 * sockets belong to the network namespace).
	 * NEWNS: the template root is entered in a copy of the zygote's
	 * mount namespace, so the zygote keeps the host's view.
	 * NEWIPC: no System V or POSIX message-queue object shared with the
	 * host or with another session.
	 * NEWUTS: the host name below.
	 */
	if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) == -1) {
		sbx_errf(err, errlen, errno, "sbx_ns_child: unshare");
		return -1;
	}
	if (sethostname(SBX_HOSTNAME, strlen(SBX_HOSTNAME)) == -1) {
		sbx_errf(err, errlen, errno, "sbx_ns_child: sethostname");
		return -1;
	}
	return 0;
}
