#!/bin/bash
# Issue 6, point 3: `make install` honours PREFIX and DESTDIR and installs the
# programs, the configuration (never over an existing one), the systemd units
# (checked with systemd-analyze verify) and the manual pages (checked with
# groff and man).
# servers: one
. "$(dirname "$0")/../lib.sh"

d=$T_TMP/dest
build=${PYEXEC_BUILD:-$PYEXEC_TOP/build}
bname=$(basename "$build")
if make -s -C "$PYEXEC_TOP" install DESTDIR="$d" PREFIX=/usr BUILD="$bname" >"$T_TMP/install.log" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr"
else
	not_ok "make install DESTDIR=... PREFIX=/usr"; sed 's/^/# /' "$T_TMP/install.log"
fi
for f in usr/sbin/pyexec-sessiond usr/sbin/pyexec-fcgi etc/pyexec/pyexec.conf \
    usr/share/man/man8/pyexec-sessiond.8 usr/share/man/man8/pyexec-fcgi.8 usr/share/man/man5/pyexec.conf.5 \
    usr/lib/systemd/system/pyexec-sessiond.service usr/lib/systemd/system/pyexec-fcgi.socket \
    usr/lib/systemd/system/pyexec-fcgi.service; do
	check "installed: /$f" [ -s "$d/$f" ]
done
check "the programs are executable" [ -x "$d/usr/sbin/pyexec-sessiond" -a -x "$d/usr/sbin/pyexec-fcgi" ]
assert_eq "the units name the programs under PREFIX" \
    "$(grep -h '^ExecStart=' "$d"/usr/lib/systemd/system/*.service | cut -d' ' -f1 | sort | tr '\n' ' ')" \
    "ExecStart=/usr/sbin/pyexec-fcgi ExecStart=/usr/sbin/pyexec-sessiond "
echo "# changed" >> "$d/etc/pyexec/pyexec.conf"
make -s -C "$PYEXEC_TOP" install DESTDIR="$d" PREFIX=/usr BUILD="$bname" >"$T_TMP/install2.log" 2>&1
check "a second install keeps an existing pyexec.conf" grep -q '^# changed' "$d/etc/pyexec/pyexec.conf"
check "... and puts the new default beside it (pyexec.conf.dist)" cmp -s "$d/etc/pyexec/pyexec.conf.dist" "$PYEXEC_TOP/deploy/pyexec.conf"

# Every key of the program's configuration is in the installed file, with its default.
for k in socket state_dir socket_group cgroup time_limit_ms grace_ms memory_limit_mb max_sessions \
    queue_max output_limit max_body idle_timeout_s pids_max nofile tmp_mb pool_size preload \
    uid_base uid_count fcgi_threads fcgi_processes retry_after_s allow_degraded landlock seccomp log_debug; do
	grep -q "^$k = " "$d/etc/pyexec/pyexec.conf.dist" || { not_ok "pyexec.conf lists $k"; continue; }
done
ok "the configuration file lists every key"

if need_cmd systemd-analyze; then
	# verify needs the programs where the units say: point them into DESTDIR.
	u=$T_TMP/units
	mkdir -p "$u"
	for f in "$d"/usr/lib/systemd/system/pyexec*; do
		sed "s|/usr/sbin/|$d/usr/sbin/|; s|/etc/pyexec/|$d/etc/pyexec/|" "$f" > "$u/$(basename "$f")"
	done
	if systemd-analyze verify --man=no "$u"/pyexec-sessiond.service "$u"/pyexec-fcgi.socket \
	    "$u"/pyexec-fcgi.service >"$T_TMP/verify.log" 2>&1 && ! [ -s "$T_TMP/verify.log" ]; then
		ok "systemd-analyze verify: the three units"
	else
		not_ok "systemd-analyze verify: the three units"; sed 's/^/# /' "$T_TMP/verify.log"
	fi
	assert_eq "the daemon unit delegates its cgroup subtree" "$(grep -c '^Delegate=yes' "$u/pyexec-sessiond.service")" 1
	assert_eq "the workers get the socket on descriptor 0" "$(grep -c '^StandardInput=socket' "$u/pyexec-fcgi.service")" 1
	assert_eq "the workers run as www-data" "$(grep -c '^User=www-data' "$u/pyexec-fcgi.service")" 1
	for bad in PrivateUsers=yes ProtectControlGroups=yes RestrictNamespaces=yes ProtectKernelTunables=yes \
	    MemoryDenyWriteExecute=yes; do
		grep -q "^$bad" "$u/pyexec-sessiond.service" && not_ok "the daemon unit must not set $bad"
	done
	ok "the daemon unit sets no directive that breaks sandboxing"
else
	skip "systemd-analyze missing (apt-get install systemd): units not verified"
fi

if need_cmd groff; then
	for m in "$d"/usr/share/man/man*/pyexec*; do
		w=$(groff -man -ww -z "$m" 2>&1)
		assert_eq "groff -man -ww: no warnings in $(basename "$m")" "$w" ""
	done
else
	skip "groff missing: manual pages not checked"
fi
if need_cmd man; then
	for m in "$d"/usr/share/man/man*/pyexec*; do
		check "man -l $(basename "$m") renders" sh -c "man -l '$m' 2>/dev/null | grep -q NAME"
	done
else
	skip "man missing: manual pages not rendered"
fi
t_done
