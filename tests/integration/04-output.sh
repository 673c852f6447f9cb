#!/bin/bash
# servers: one  (daemon behaviour: the same behind every web server)
# Output of code mode (api.md): stdout/stderr capture at the descriptor level,
# SystemExit, invalid UTF-8, JSON escaping, the per-stream cap, syntax errors.
. "$(dirname "$0")/../lib.sh"

DEFAULT_URL=$PYEXEC_URL

# json_of FILE: the content of FILE as one JSON string.
json_of() { jq -Rs . < "$1"; }

# --- the cap (stack of its own, output_limit=1024) ---------------------------------------------
if t_stack_start 18712 output_limit=1024; then
	PYEXEC_URL=http://127.0.0.1:18712
	x1024=$(printf 'x%.0s' $(seq 1024))
	line=$(printf 'x%.0s' $(seq 31))
	lines32=""
	for i in $(seq 32); do lines32="$lines32$line"$'\n'; done
	run 'print("x" * 4999)'
	assert_eq "stdout of 5000 bytes, cap 1024: first 1024, newline added, exact count" \
	    "$(jget .stdout)" "$x1024"$'\n[output truncated: 3976 bytes dropped]'
	assert_eq "stdout cap: the JSON string ends with the line and its newline" \
	    "$(printf '%s' "$BODY" | jq -c '.stdout[1024:]')" '"\n[output truncated: 3976 bytes dropped]\n"'
	assert_eq "stdout cap: no stderr, no error" "$(jget 'keys | @json')" '["id","stdout"]'
	cap=$id
	run 'print("after")' "$cap"
	assert_eq "stdout cap: the session works after" "$BODY" "{\"id\": \"$cap\", \"stdout\": \"after\\n\"}"
	run 'import sys; sys.stdout.write(("x" * 31 + "\n") * 100)'
	assert_eq "stdout cap on a line end: no extra newline" \
	    "$(printf '%s' "$BODY" | jq -c '.stdout')" "$(printf '%s[output truncated: 2176 bytes dropped]\n' "$lines32" | jq -Rs .)"
	run 'import sys; sys.stderr.write("e" * 5000)'
	assert_eq "stderr of 5000 bytes, cap 1024" \
	    "$(printf '%s' "$BODY" | jq -c '[(.stderr[0:1024] | test("^e{1024}$")), .stderr[1024:], has("stdout")]')" \
	    '[true,"\n[output truncated: 3976 bytes dropped]\n",false]'
	run 'import sys; print("o" * 2000); sys.stderr.write(("x" * 31 + "\n") * 100)'
	assert_eq "both streams capped at once, each its own count" \
	    "$(printf '%s' "$BODY" | jq -c '[.stdout[1024:], .stderr]')" \
	    "[\"\\n[output truncated: 977 bytes dropped]\\n\",$(printf '%s[output truncated: 2176 bytes dropped]\n' "$lines32" | jq -Rs .)]"
	run 'import os; os.write(1, b"q" * 1024)'
	assert_eq "exactly 1024 bytes: not truncated" "$(jget '.stdout | [length, test("^q*$")] | @json')" '[1024,true]'
	run 'import os; os.write(1, b"q" * 1025)'
	assert_eq "1025 bytes: 1 byte dropped" "$(jget '.stdout[1024:]')" $'\n[output truncated: 1 bytes dropped]'
	run $'import sys\nprint("k" * 3000)\n1 / 0'
	assert_eq "capped stdout then an exception: traceback in stderr" \
	    "$(printf '%s' "$BODY" | jq -c '[.stdout[1024:], .stderr]')" \
	    "[\"\\n[output truncated: 1977 bytes dropped]\\n\",\"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 3, in <module>\\nZeroDivisionError: division by zero\\n\"]"
	PYEXEC_URL=$DEFAULT_URL
	bg_stop 18712
else
	not_ok "stack with output_limit=1024 did not start"
	sed 's/^/# /' "$T_TMP/stack-18712.log"
fi

# --- both streams, descriptor level ---------------------------------------------------
run $'import sys\nprint("out")\nprint("err", file=sys.stderr)'
assert_eq "stdout and stderr in one reply" "$BODY" "{\"id\": \"$id\", \"stdout\": \"out\\n\", \"stderr\": \"err\\n\"}"
run 'import os; os.write(1, b"x"); os.write(2, b"y")'
assert_eq "os.write(1/2) captured" "$BODY" "{\"id\": \"$id\", \"stdout\": \"x\", \"stderr\": \"y\"}"
run 'import os; os.write(2, b"only err\n")'
assert_eq "only stderr: no stdout key" "$BODY" "{\"id\": \"$id\", \"stderr\": \"only err\\n\"}"
run 'import ctypes; ctypes.CDLL(None).write(1, b"from C\n", 7)'
assert_eq "write(2) from C code (ctypes) captured" "$BODY" "{\"id\": \"$id\", \"stdout\": \"from C\\n\"}"
run $'print("before")\n1 / 0'
assert_eq "output before an exception is kept, with the traceback" "$BODY" \
    "{\"id\": \"$id\", \"stdout\": \"before\\n\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 2, in <module>\\nZeroDivisionError: division by zero\\n\"}"
run $'import sys\nsys.stderr.write("warn\\n")\nraise RuntimeError("x")'
assert_eq "stderr before an exception is kept, traceback after it" "$BODY" \
    "{\"id\": \"$id\", \"stderr\": \"warn\\nTraceback (most recent call last):\\n  File \\\"<stdin>\\\", line 3, in <module>\\nRuntimeError: x\\n\"}"
run 'print("a", end="")'
assert_eq "print without a final newline" "$BODY" "{\"id\": \"$id\", \"stdout\": \"a\"}"
run 'import sys; sys.stdout.write("partial")'
assert_eq "sys.stdout.write without a newline" "$BODY" "{\"id\": \"$id\", \"stdout\": \"partial\"}"
run 'print("one", end=""); print("two", end="")'
run 'print("three")' "$id"
assert_eq "no output left over from the previous execution" "$BODY" "{\"id\": \"$id\", \"stdout\": \"three\\n\"}"

# --- SystemExit -------------------------------------------------------------------------
run 'n = 0'
sx=$id
for c in 'sys.exit()' 'sys.exit(0)' 'sys.exit(3)' 'exit()' 'raise SystemExit' 'sys.exit(None)'; do
	run $'import sys\nn += 1\n'"$c"$'\nn += 100\nprint("not reached")' "$sx"
	assert_eq "$c: ends the execution, nothing printed" "$STATUS $BODY" "200 {\"id\": \"$sx\"}"
done
run 'print(n)' "$sx"
assert_eq "after 6 exits: same session, state kept, code after exit never ran" "$BODY" "{\"id\": \"$sx\", \"stdout\": \"6\\n\"}"
run 'import sys; sys.exit("bye")' "$sx"
assert_eq "sys.exit(\"bye\"): bye on stderr" "$BODY" "{\"id\": \"$sx\", \"stderr\": \"bye\\n\"}"
run $'print("o")\nimport sys\nsys.exit(2)' "$sx"
assert_eq "output before sys.exit(2) is kept" "$BODY" "{\"id\": \"$sx\", \"stdout\": \"o\\n\"}"
run 'print("alive")' "$sx"
assert_eq "session alive after the exits" "$BODY" "{\"id\": \"$sx\", \"stdout\": \"alive\\n\"}"

# --- invalid UTF-8 and JSON escaping --------------------------------------------------
run 'import os; os.write(1, b"\xff\xfeok")'
assert_eq "invalid UTF-8: replaced by U+FFFD (jq)" "$(jget .stdout)" $'\uFFFD\uFFFDok'
check "invalid UTF-8: the body is valid JSON" body_jq .
raw=$(od -An -tx1 -v "$T_TMP/body" | tr -d ' \n')
assert_match "invalid UTF-8: raw bytes of the stdout value" "$raw" '227374646f7574223a2022efbfbdefbfbd6f6b22'
run 'import os; os.write(1, "é€".encode()[:-1] + b"|" + b"\xc3")'
assert_eq "a cut multi-byte sequence in the middle and at the end" "$(jget .stdout)" $'é\uFFFD|\uFFFD'
run 'print("é\t\"\\\x01\x1f\u2028\U0001F600")'
assert_eq "escaping: decoded stdout" "$(printf '%s' "$BODY" | jq -j .stdout | od -An -c | tr -s ' ')" \
    "$(printf 'é\t"\\\x01\x1f\xe2\x80\xa8\xf0\x9f\x98\x80\n' | od -An -c | tr -s ' ')"
check "escaping: no raw control bytes in the body" bash -c '! LC_ALL=C grep -q "[[:cntrl:]]" "$1"' _ "$T_TMP/body"
check "escaping: body is valid JSON" body_jq .
run 'import sys; sys.stderr.write("\0nul\r\n")'
assert_eq "NUL and CR in output survive" "$(printf '%s' "$BODY" | jq -c .stderr)" '"\u0000nul\r\n"'

# --- syntax errors like python3 < file ---------------------------------------------------
i=0
for c in 'x = (' $'def f(:\n    pass' $'print(1)\n  print(2)' 'print "py2"'; do
	i=$((i + 1))
	run "$c"
	printf '%s' "$c" > "$T_TMP/src"
	(cd "$T_TMP" && python3 < src > out 2> err) || true
	assert_eq "syntax error $i: stderr as python3 gives it" "$(printf '%s' "$BODY" | jq -c .stderr)" "$(json_of "$T_TMP/err")"
	assert_eq "syntax error $i: keys id and stderr only" "$(printf '%s' "$BODY" | jq -c 'keys')" '["id","stderr"]'
done
run 'x = ('
assert_match "SyntaxError names <stdin>, line 1" "$(jget .stderr)" $'^  File "<stdin>", line 1\n'
assert_match "SyntaxError: line" "$(jget .stderr)" $'\nSyntaxError: '

# --- NUL in the code --------------------------------------------------------------------
exec_json '{"code": "print(1)\u0000print(2)"}'
track
nid=$(jget .id)
assert_eq "NUL in code: status 200" "$STATUS" 200
assert_eq "NUL in code: keys id and stderr" "$(printf '%s' "$BODY" | jq -c 'keys')" '["id","stderr"]'
assert_match "NUL in code: the error names null bytes" "$(jget .stderr)" 'null bytes'
run 'print("ok")' "$nid"
assert_eq "NUL in code: the session works afterwards" "$BODY" "{\"id\": \"$nid\", \"stdout\": \"ok\\n\"}"

# --- large output at the default limit --------------------------------------------------------
run 'import sys; sys.stdout.write("y" * 900000)'
assert_eq "900 000 bytes of stdout: all there" "$(jget '.stdout | [length, (test("^y*$"))] | @text')" '[900000,true]'
assert_eq "900 000 bytes of stdout: no stderr" "$(jget 'has("stderr")')" false
run 'import sys; sys.stdout.write("z" * (1048576 + 100))'
assert_eq "1 MiB + 100 bytes at the default cap: kept 1 MiB, 100 dropped" \
    "$(jget '.stdout | [length, (.[0:1048576] | test("^z*$")), .[1048576:]] | @json')" \
    '[1048615,true,"\n[output truncated: 100 bytes dropped]\n"]'
run 'print("z")' "$id"
assert_eq "after a capped output: the session works" "$BODY" "{\"id\": \"$id\", \"stdout\": \"z\\n\"}"

forget_all

wait
t_done
