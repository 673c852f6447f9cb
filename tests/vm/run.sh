#!/bin/bash
# tests/vm/run.sh: runs one command inside a throwaway QEMU guest whose
# cgroups are v2 only, and returns its output and exit status.
#
#   tests/vm/run.sh [-m MB] [-t TIMEOUT_S] [-o OUTDIR] -- COMMAND [ARGS...]
#
#   -m MB        guest memory (default 2048)
#   -t SECONDS   the whole run, boot included, is killed past this (default 900)
#   -o OUTDIR    files the command leaves in $PYEXEC_VM_OUT are copied here
#   PYEXEC_VM_CACHE     where the kernel and initramfs are kept
#                       (default /var/cache/pyexec-vm, about 400 MB)
#   PYEXEC_VM_9P_CACHE  9p cache mode of the host root (default loose)
#
# Exit status: the command's; 125 when the guest never reported one (boot
# failure, timeout, harness error). Console output (the command's stdout and
# stderr) goes to stdout as it comes; the harness's own lines, starting with
# "pyexec-vm:", go to stderr, kernel errors logged during the run included.
#
# Why: the development machine's cgroups are v1, production's mostly v2; this
# is how the cgroup v2 code path gets to run for real (tests/vm/cgroup-v2.sh).
#
# What it needs: root, and Debian 12's packages (it installs what is missing
# with apt-get: qemu-system-x86, busybox-static). No /dev/kvm: the guest runs
# on TCG. Debian's own kernel (the package behind linux-image-amd64) is
# downloaded with `apt-get download` and unpacked into the cache, never
# installed on the host; an initramfs (busybox plus the modules for virtio-9p
# and overlayfs, found through modules.dep) is built next to it and rebuilt
# when its inputs change. Nothing outside the cache and a temporary directory
# in /tmp is written on the host.
#
# What the guest has:
#   - Debian's 6.1 kernel booted with cgroup_no_v1=all: /sys/fs/cgroup is
#     cgroup2 (nsdelegate,memory_recursiveprot, as systemd mounts it) and
#     nothing else; the root's cgroup.controllers is "cpuset cpu io memory
#     hugetlb pids rdma misc", none enabled in its cgroup.subtree_control.
#     There is no systemd and no other service: the command runs as root in
#     the root cgroup, a child of a busybox sh that is PID 1.
#   - the host's root filesystem, read-only over virtio-9p, as the lower layer
#     of an overlayfs whose upper layer is a tmpfs: the guest can write
#     anywhere, and nothing reaches the host. /tmp is the host's too, so a
#     repository checked out there is seen; /run and /dev/shm are tmpfs of
#     their own; proc, sysfs, devtmpfs, devpts,
#     mqueue are mounted. Paths are the host's, so the repository is at the
#     same place; the command starts in its top directory with
#     PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
#     HOME=/root, stdin /dev/null, stdout and stderr on the serial console.
#   - 2 CPUs, loopback only (lo is up), no other network device.
#   - the kernel's modules at /lib/modules/VERSION: the host has no kmod, so
#     load them with /run/pyexec-vm/bin/busybox modprobe NAME.
#   - $PYEXEC_VM_OUT: a directory on the host (writable 9p share) for files
#     to bring back with -o.
#
# Timings on the development VM (2 shared cores, no KVM, cache warm):
#   boot, qemu start to the command starting:  6-8 s (kernel 3 s of it)
#   whole run of `true`:                        7-10 s
#   first run (download, unpack the kernel):    +10 s
#   python3.11 -c 'import numpy, pandas':       10-14 s, then 6-7 s (cache=loose)
# Slower when the host is busy: twice that under another test suite's load.
#
# Limits: the lower layer is 9p: stat and open cost about 0.5 ms each, and
# files the host changes during the run may or may not be seen (cache=loose).
# The tmpfs of the 6.1 kernel has no user.* xattrs, so neither has anything
# written in the guest (trusted.* and security.* work). Unix sockets, fifos
# and hard links work in the overlay and in /run.
set -euo pipefail

usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-125}"
}

mem=2048
limit=900
outdir=""
while getopts "m:t:o:h" opt; do
	case $opt in
	m) mem=$OPTARG ;;
	t) limit=$OPTARG ;;
	o) outdir=$OPTARG ;;
	h) usage 0 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
[[ $mem =~ ^[0-9]+$ && $limit =~ ^[0-9]+$ ]] || usage

say() { echo "pyexec-vm: $*" >&2; }
die() { say "$*"; exit 125; }

top=$(cd "$(dirname "$0")/../.." && pwd -P)
cache=${PYEXEC_VM_CACHE:-/var/cache/pyexec-vm}
tmp=""
qpid=""
result=""

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	trap - EXIT INT TERM HUP
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	[ -n "$tmp" ] && rm -rf "$tmp"
	# Only a status the guest reported is passed on; anything else is ours.
	if [ -n "$result" ]; then exit "$result"; fi
	exit 125
}
trap cleanup EXIT
trap 'say "failed at line $LINENO"' ERR
trap 'say "interrupted"; exit 125' INT TERM HUP

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, 9p passthrough)"

# --- 1. host packages ---------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}\n' busybox-static 2>/dev/null | grep -q ' installed$' ||
	need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; } ||
		die "could not install ${need[*]}"
fi
busybox=/bin/busybox
[ -x "$busybox" ] || die "no $busybox"

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9 # one preparation at a time; released before the boot

# --- 2. Debian's kernel, unpacked into the cache --------------------------------
kpkg_name() { apt-cache depends linux-image-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
kpkg=$(kpkg_name || true)
if [ -z "$kpkg" ]; then
	apt-get update >&2 || true
	kpkg=$(kpkg_name || true)
fi
kdir=""
if [ -n "$kpkg" ]; then
	kver_pkg=$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2 }')
	kdir=$cache/kernel/${kpkg}_${kver_pkg}
	if [ ! -e "$kdir/.complete" ]; then
		say "fetching $kpkg $kver_pkg"
		rm -rf "$kdir" "$cache/dl"
		mkdir -p "$cache/dl"
		(cd "$cache/dl" && apt-get download -o APT::Sandbox::User=root "$kpkg=$kver_pkg" >&2) ||
			die "apt-get download $kpkg failed"
		mkdir -p "$kdir.tmp"
		dpkg-deb -x "$cache"/dl/"$kpkg"_*.deb "$kdir.tmp"
		rm -rf "$cache/dl"
		mv "$kdir.tmp" "$kdir"
		touch "$kdir/.complete"
		# Older kernels are stale now.
		for d in "$cache"/kernel/*; do [ "$d" = "$kdir" ] || rm -rf "$d"; done
	fi
else
	# No package lists (offline): the newest kernel already in the cache.
	for d in "$cache"/kernel/*/.complete; do
		[ -e "$d" ] && kdir=${d%/.complete}
	done
	[ -n "$kdir" ] || die "cannot find the package behind linux-image-amd64"
fi

moddir=""
for d in "$kdir"/lib/modules/* "$kdir"/usr/lib/modules/*; do
	[ -d "$d/kernel" ] && { moddir=$d; break; }
done
[ -n "$moddir" ] || die "no modules in $kdir"
kver=${moddir##*/}
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no $vmlinuz"
if [ ! -s "$moddir/modules.dep" ]; then
	# Debian's postinst runs depmod; we unpacked without it.
	"$busybox" depmod -b "${moddir%/lib/modules/"$kver"}" "$kver" ||
		die "depmod failed for $kver"
fi

# --- 3. the initramfs ---------------------------------------------------------
# The modules to reach the host root and build the overlay, with their
# dependencies, in an order insmod can follow.
declare -A depof=() done_=() byname=()
while IFS= read -r line; do
	p=${line%%:*}
	depof[$p]=${line#*:}
	b=${p##*/}
	b=${b%%.ko*}
	byname[${b//-/_}]=$p
done <"$moddir/modules.dep"
order=()
add_mod() {
	local p=$1 d
	[ -n "${done_[$p]:-}" ] && return
	done_[$p]=1
	for d in ${depof[$p]}; do add_mod "$d"; done
	order+=("$p")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do
	if [ -n "${byname[$m]:-}" ]; then
		add_mod "${byname[$m]}"
	elif ! grep -Eq "/$m\.ko" "$moddir/modules.builtin"; then
		die "module $m: neither in modules.dep nor built in"
	fi
done

init_script() {
	cat <<'EOF'
#!/bin/busybox sh
# pyexec-vm stage 1: the host root (9p, read-only) under a tmpfs overlay.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { # no status: the host says so
	echo "pyexec-vm init: $*" >/dev/console
	poweroff -f
	exit 1 # a panic, which -no-reboot turns into qemu's exit
}
while read -r m; do
	insmod "/modules/$m" || fail "insmod $m"
done </order
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=@CACHE@ hostroot /lower ||
	fail "cannot mount the host root"
mount -t tmpfs -o mode=755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay"
n=/newroot
mount -t proc -o nosuid,nodev,noexec proc $n/proc
mount -t sysfs -o nosuid,nodev,noexec sysfs $n/sys
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 $n/sys/fs/cgroup ||
	fail "cannot mount cgroup2"
mount -t devtmpfs -o nosuid devtmpfs $n/dev
mkdir -p $n/dev/pts $n/dev/shm $n/dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts $n/dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs $n/dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue $n/dev/mqueue
ln -sf /proc/self/fd $n/dev/fd
ln -sf /proc/self/fd/0 $n/dev/stdin
ln -sf /proc/self/fd/1 $n/dev/stdout
ln -sf /proc/self/fd/2 $n/dev/stderr
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs $n/run
mkdir -p $n/run/pyexec-vm/bin $n/run/pyexec-vm/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none results $n/run/pyexec-vm/share ||
	fail "cannot mount the results share"
cp /bin/busybox /stage2 $n/run/pyexec-vm/bin/
kmods=$(cat /kmods)
if [ -d "$n$kmods" ]; then
	mkdir -p $n/usr/lib/modules/@KVER@
	mount --bind "$n$kmods" $n/usr/lib/modules/@KVER@
fi
hostname pyexec-vm
ip link set lo up
umount /sys /proc
exec switch_root $n /run/pyexec-vm/bin/busybox sh /run/pyexec-vm/bin/stage2
EOF
}

stage2_script() {
	cat <<'EOF'
# pyexec-vm stage 2, PID 1 in the overlay root: runs the command, reports.
bb=/run/pyexec-vm/bin/busybox
s=/run/pyexec-vm/share
$bb stty -F /dev/console -onlcr 2>/dev/null
$bb mkdir -p $s/out
$bb cat /proc/uptime >$s/started
# Kernel messages would cut into the command's lines on the console: they
# are kept in the log, and the host shows the warnings among them after.
$bb dmesg -n 1
cd /
/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb \
	PYEXEC_VM=1 PYEXEC_VM_OUT=$s/out \
	/bin/bash $s/cmd.sh </dev/null >/dev/console 2>&1
echo $? >$s/status.tmp
$bb cat /proc/uptime >$s/ended
$bb dmesg -r >$s/dmesg
$bb mv $s/status.tmp $s/status
$bb sync
echo 0 >/proc/sys/kernel/printk # not even "reboot: Power down"
$bb poweroff -f
echo o >/proc/sysrq-trigger
EOF
}

ninecache=${PYEXEC_VM_9P_CACHE:-loose}
initsrc=$(init_script | sed -e "s/@CACHE@/$ninecache/" -e "s/@KVER@/$kver/")
key=$({
	echo "$kdir"
	printf '%s\n' "${order[@]}"
	echo "$initsrc"
	stage2_script
	sha256sum "$busybox"
} | sha256sum | cut -c1-16)
initrd=$cache/initrd-$kver-$key.cpio.gz
if [ ! -s "$initrd" ]; then
	say "building $initrd"
	work=$(mktemp -d "$cache/initrd.XXXXXX")
	mkdir -p "$work"/{bin,modules,proc,sys,dev,lower,rw,newroot}
	cp "$busybox" "$work/bin/busybox"
	echo "$initsrc" >"$work/init"
	stage2_script >"$work/stage2"
	chmod 755 "$work/init"
	realpath "$moddir" >"$work/kmods" # the same path in the guest
	for p in "${order[@]}"; do
		b=${p##*/}
		case $b in
		*.ko) cp "$moddir/$p" "$work/modules/$b" ;;
		*.ko.xz) xz -dc "$moddir/$p" >"$work/modules/${b%.xz}" ;;
		*.ko.zst) zstd -qdc "$moddir/$p" >"$work/modules/${b%.zst}" ;;
		*.ko.gz) gzip -dc "$moddir/$p" >"$work/modules/${b%.gz}" ;;
		*) die "unknown module format: $b" ;;
		esac
		echo "${b%.ko*}.ko" >>"$work/order"
	done
	(cd "$work" && find . | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
		gzip -1 >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$work"
	# Older initramfs images of this kernel are stale now.
	for f in "$cache"/initrd-*.cpio.gz; do [ "$f" = "$initrd" ] || rm -f "$f"; done
fi
exec 9>&-

# --- 4. the run ---------------------------------------------------------------
tmp=$(mktemp -d /tmp/pyexec-vm.XXXXXX)
{
	printf 'cd %q || exit 125\n' "$top"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$tmp/cmd.sh"

say "booting $kver (${mem} MB, timeout ${limit} s): $*"
t0=$(date +%s.%N)
timeout -k 10 "$limit" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
	-nographic -nodefaults -no-user-config -serial stdio -monitor none -no-reboot \
	-fw_cfg name=etc/sercon-port,string=0 \
	-kernel "$vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 8250.nr_uarts=1" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
	-virtfs local,path="$tmp",mount_tag=results,security_model=passthrough \
	</dev/null 2> >(grep -v 'should be prefixed with "opt/"' >&2) &
qpid=$!
qrc=0
wait "$qpid" || qrc=$?
qpid=""
t1=$(date +%s.%N)

if [ "$qrc" -eq 124 ]; then
	say "timed out after ${limit} s: guest killed"
elif [ "$qrc" -ne 0 ]; then
	say "qemu exited with status $qrc"
fi
if [ -f "$tmp/started" ] && [ -f "$tmp/ended" ]; then
	# The files' times are the host's clock: when the guest wrote them.
	ts=$(stat -c %.3Y "$tmp/started") te=$(stat -c %.3Y "$tmp/ended")
	read -r up _ <"$tmp/started"
	awk -v t0="$t0" -v t1="$t1" -v ts="$ts" -v te="$te" -v up="$up" 'BEGIN {
		printf "pyexec-vm: boot %.1f s (kernel %.1f s), command %.1f s, whole run %.1f s\n",
			ts - t0, up, te - ts, t1 - t0 }' >&2
fi
if [ -f "$tmp/dmesg" ]; then
	# Level error or worse, from the kernel (facility 0).
	sed -n 's/^<[0-3]>/pyexec-vm: kernel: /p' "$tmp/dmesg" >&2
fi
if [ -n "$outdir" ] && [ -d "$tmp/out" ]; then
	mkdir -p "$outdir"
	cp -a "$tmp/out/." "$outdir/"
fi
if [ -f "$tmp/status" ]; then
	result=$(cat "$tmp/status")
	[[ $result =~ ^[0-9]+$ ]] || result=""
fi
[ -n "$result" ] || say "the guest reported no exit status"
exit 0 # cleanup passes the status on
