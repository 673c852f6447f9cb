#!/bin/sh
# Installs the Debian packages pyexec needs, and nothing when they are all there.
#   deploy/install-deps.sh            what `make run` needs (build + serve behind nginx)
#   deploy/install-deps.sh test       plus what `make test` needs: every web server
#                                     the suite runs against (nginx, Apache with
#                                     mod_fcgid, lighttpd), the balancer test's HAProxy,
#                                     systemd-analyze and the manual page checkers,
#                                     Chromium for the page's tests, clang for the fuzzers
# Debian 12 (bookworm); run as root.  Installing apache2 or lighttpd never starts
# their system services (see policy-rc.d below): the stacks run private instances.
set -eu

pkgs="gcc make pkg-config libc6-dev libfcgi-dev libjson-c-dev libcap-dev libseccomp-dev
libpython3-dev python3-numpy python3-pandas nginx-light spawn-fcgi curl"
# node and npm fetch the /docs renderer from the npm registry (deploy/www/);
# a machine that already has them (from anywhere) keeps its own.
command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
if [ "${1:-}" = test ]; then
	pkgs="$pkgs jq apache2 libapache2-mod-fcgid lighttpd haproxy systemd man-db groff-base"
	# the browser tests, and the fuzzers (clang, libFuzzer, llvm-symbolizer)
	pkgs="$pkgs chromium clang libclang-rt-14-dev llvm-14"
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# apache2 and lighttpd would start their system services on port 80 (and the
# second would fail to bind, failing the install): where no policy says
# otherwise, forbid service starts for the time of the install.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# pyexec install-deps: no service starts during the install\nexit 101\n' > "$policy"
	chmod 0755 "$policy"
	made_policy=1
	trap 'rm -f "$policy"' EXIT INT TERM
fi
# A fresh machine has no package lists yet; a stale one may name old versions.
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -n "$made_policy" ] && rm -f "$policy"
trap - EXIT INT TERM
exit 0
