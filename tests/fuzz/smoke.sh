#!/bin/bash
# The fuzz targets in `make test`: build them (tests/fuzz/fuzz.mk), replay
# every seed (tests/fuzz/corpus/<target>/) and every kept crasher
# (tests/fuzz/regressions/<target>/), then fuzz each target for
# FUZZ_SMOKE_SECONDS (default 10), one after the other.  Prints TAP, one line
# per target; "# SKIP" when clang or its libFuzzer runtime is missing.
#
#   tests/fuzz/smoke.sh            from anywhere; builds into $FUZZ_BUILD
#                                  (default build-fuzz under the top directory)
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
cc=${FUZZ_CC:-clang}
build=${FUZZ_BUILD:-build-fuzz}
secs=${FUZZ_SMOKE_SECONDS:-10}
targets="fuzz_request fuzz_daemon_conn fuzz_daemon_child"
declare -A maxlen=([fuzz_request]=4096 [fuzz_daemon_conn]=8192 [fuzz_daemon_child]=8192)
declare -A extra=([fuzz_request]="-dict=tests/fuzz/json.dict")
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
n=0

echo "1..3"
probe=$(mktemp -d /tmp/pyexec-fuzz.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    > "$probe/p.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
    ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
	for t in $targets; do
		n=$((n + 1))
		echo "ok $n # SKIP clang/libFuzzer not installed ($t)"
	done
	exit 0
fi

if ! make --no-print-directory -f tests/fuzz/fuzz.mk FUZZ_CC="$cc" FUZZ_BUILD="$build" \
    fuzz-build > "$probe/build.log" 2>&1; then
	for t in $targets; do
		n=$((n + 1))
		echo "not ok $n - $t: build failed"
	done
	sed 's/^/# /' "$probe/build.log" | tail -n 30
	exit 1
fi

fail=0
for t in $targets; do
	n=$((n + 1))
	bin=$build/$t
	files=()
	for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do
			[ -f "$f" ] && files+=("$f")
		done
	done
	# Each input once: a crash, a leak or a failed invariant exits non-zero.
	if [ ${#files[@]} -gt 0 ] && ! "$bin" -runs=1 "${files[@]}" > "$probe/$t.replay" 2>&1; then
		echo "not ok $n - $t: replaying ${#files[@]} inputs crashed"
		grep -E 'Running: |ERROR|runtime error|invariant|SUMMARY|^    #[0-9]' "$probe/$t.replay" |
		    tail -n 30 | sed 's/^/# /'
		fail=1
		continue
	fi
	work=$probe/corpus-$t
	mkdir -p "$work" "$probe/art-$t"
	start=$(date +%s)
	"$bin" -max_len="${maxlen[$t]}" -max_total_time="$secs" -timeout=20 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$probe/art-$t/" \
	    ${extra[$t]:-} "$work" tests/fuzz/corpus/$t > "$probe/$t.log" 2>&1
	rc=$?
	ran=$(( $(date +%s) - start ))
	cov=$(grep -oE 'cov: [0-9]+' "$probe/$t.log" | tail -n 1)
	if [ $rc != 0 ]; then
		echo "not ok $n - $t: replayed ${#files[@]} inputs, crashed after $ran s"
		grep -E 'ERROR|runtime error|invariant|SUMMARY|^    #[0-9]|Test unit written' \
		    "$probe/$t.log" | tail -n 30 | sed 's/^/# /'
		# Keep the crasher where a developer finds it.
		mkdir -p "$build/artifacts/$t"
		cp "$probe/art-$t"/* "$build/artifacts/$t/" 2>/dev/null &&
		    echo "# crasher kept in $build/artifacts/$t/"
		fail=1
		continue
	fi
	echo "ok $n - $t: replayed ${#files[@]} inputs, ran $ran s, no crash"
	echo "# $t: ${cov:-cov: ?}"
done
exit $fail
