#!/bin/sh
# Installs the Debian packages pyexec needs, and nothing when they are all there.
#   deploy/install-deps.sh            what `make run` needs (build + serve)
#   deploy/install-deps.sh test       plus what `make test` needs
# Debian 12 (bookworm); run as root.
set -eu

pkgs="gcc make pkg-config libc6-dev libfcgi-dev libjson-c-dev libcap-dev libseccomp-dev
libpython3-dev python3-numpy python3-pandas nginx-light spawn-fcgi curl"
if [ "${1:-}" = test ]; then
	pkgs="$pkgs jq"
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
# A fresh machine has no package lists yet; a stale one may name old versions.
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
