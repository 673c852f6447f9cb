#!/bin/bash
# The challenge statement's examples, byte for byte (api.md, code mode).
. "$(dirname "$0")/../lib.sh"

exec_json '{"code": "print('"'"'Hello, World!'"'"')"}'
assert_eq "hello: status" "$STATUS" 200
id=$(jget .id)
assert_match "hello: id is a lowercase UUID v4" "$id" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
assert_eq "hello: body byte for byte" "$BODY" "{\"id\": \"$id\", \"stdout\": \"Hello, World!\\n\"}"
assert_eq "hello: Pyexec-Session header" "$(header pyexec-session)" "$id"
assert_eq "hello: content type" "$(header content-type)" "application/json"

exec_json '{"code": "1 / 0"}'
id=$(jget .id)
assert_eq "1/0: body byte for byte" "$BODY" "{\"id\": \"$id\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\nZeroDivisionError: division by zero\\n\"}"

exec_json '{"code": "x = 5"}'
id=$(jget .id)
assert_eq "x = 5: only the id" "$BODY" "{\"id\": \"$id\"}"
exec_json "{\"id\": \"$id\", \"code\": \"print(x)\"}"
assert_eq "print(x) in the same session" "$BODY" "{\"id\": \"$id\", \"stdout\": \"5\\n\"}"

exec_json '{"code": "while True: pass"}'
id=$(jget .id)
assert_eq "while True: execution timeout" "$BODY" "{\"id\": \"$id\", \"error\": \"execution timeout\"}"

exec_json '{"code": "import os; os.remove('"'"'file.txt'"'"')"}'
id=$(jget .id)
assert_eq "os.remove: PermissionError from the kernel" "$BODY" "{\"id\": \"$id\", \"stderr\": \"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\nPermissionError: [Errno 13] Permission denied: 'file.txt'\\n\"}"

t_done
