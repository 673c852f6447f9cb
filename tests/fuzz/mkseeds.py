#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

The inputs are binary; this script says what each one means, in the input
formats described at the top of each target.  Run it again after changing a
format: `python3 tests/fuzz/mkseeds.py`.
"""
import os
import struct

top = os.path.dirname(os.path.abspath(__file__))
UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
UUID_BIN = bytes.fromhex(UUID.replace("-", ""))

# proto.h
EXEC, DELETE, HEALTH, METRICS = 1, 2, 3, 4
CHILD_READY, CHILD_FAIL, DONE, DATA = 13, 14, 15, 16
F_END, S_CODE, S_RESULT = 0x0001, 0x0100, 0x0400


def u16(v):
    return struct.pack(">H", v)


def write(target, name, data):
    d = os.path.join(top, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_request ----------------------------------------------------------
def req_parse(body, sid=None):
    if sid is None:
        return b"\x00\x00" + body
    return b"\x00\x01" + bytes([len(sid)]) + sid + body


def req_reply(status, flags, out=b"", err=b"", res=b"", drops=()):
    b = bytes([2, status, flags]) + UUID_BIN
    for d in drops:
        b += struct.pack(">I", d)
    return b + u16(len(out)) + out + u16(len(err)) + err + res


R = "fuzz_request"
write(R, "parse_code", req_parse(b'{"code": "print(\'Hello, World!\')"}'))
write(R, "parse_code_id", req_parse(('{"code": "x", "id": "%s"}' % UUID).encode()))
write(R, "parse_header_sid", req_parse(b'{"code": "", "id": null}', UUID.upper().encode()))
write(R, "parse_script", req_parse(b'{"script": "def main():\\n    return {\\"sum\\": 30}"}'))
write(R, "parse_bad", req_parse(b'{"code": 5, "script": "\\ud800"} x'))
write(R, "parse_id_case", req_parse(('{"code": "x", "id": "%s"}' % UUID).encode(), UUID.upper().encode()))
write(R, "parse_keys", req_parse(b'{"code": 1, "\\u0063ode": "x", "id": null, "id": 5, "a": [{"code": 2}], "code\\u0000x": 3}'))
write(R, "route_session", b"\x01/sessions/" + UUID.encode() + b"?a=b\x00DELETE\x00application/json; charset=utf-8")
write(R, "route_execute", b"\x01/execute\x00POST\x00 Application/JSON ;x")
write(R, "reply_ok", req_reply(1, 0x01, b"Hello, World!\n", b"\xff\xfe bad utf-8\n"))
write(R, "reply_dropped", req_reply(1, 0x0d, b"abc", b"", b"", (12, 0xffffffff)))
write(R, "reply_result", req_reply(1, 0x02, b"", b"", b'{"sum": 30, "l": [1, 2.0, -0, 1e400, "\\u00e9\\u0000"], "n": null}'))
write(R, "reply_result_bad", req_reply(1, 0x02, b"x", b"", b"NaN"))
write(R, "reply_timeout", req_reply(2, 0x01, b"lost", b"lost"))
write(R, "reply_busy", req_reply(6, 0x01))

# ---- the daemon targets ----------------------------------------------------
# fuzz_daemon_conn: cf0 cf1, then steps; indices into conn_ops[].
W_RAW, W_FRAME, W_BIG, W_READ, W_EXEC, W_CLOSE, Z_ANSWER = 0, 1, 4, 5, 6, 8, 9
C_READY, C_DONE, C_EXIT, TIMERS, C_OUT = 11, 12, 13, 14, 15


def frame(worker_or_child, typ, flags, reqid, payload):
    return bytes([worker_or_child, typ]) + u16(flags) + bytes([reqid]) + u16(len(payload)) + payload


def w_exec(w, fl, idx, reqid, length):
    return bytes([W_EXEC, w, fl, idx, reqid]) + u16(length)


C = "fuzz_daemon_conn"
write(C, "health", b"\x01\x00" + bytes([W_FRAME]) + frame(0, HEALTH, F_END, 1, b""))
write(C, "metrics", b"\x00\x00" + bytes([W_FRAME]) + frame(1, METRICS, F_END, 2, b""))
write(C, "delete_unknown", b"\x00\x00" + bytes([W_FRAME]) + frame(0, DELETE, F_END, 1, UUID_BIN))
write(C, "raw_short", b"\x00\x00" + bytes([W_RAW, 0]) + u16(5) + b"\x01\x01\x00\x00\x07")
pe = struct.pack("<BBxxI16s", 1, 0, 4, b"")
write(C, "exec_frames", b"\x02\x00" + bytes([W_FRAME]) + frame(0, EXEC, 0, 1, pe)
      + bytes([W_FRAME]) + frame(0, DATA, S_CODE | F_END, 1, b"x=1\n") + bytes([W_READ, 0]))
# A new session runs, answers, then a second request in it, then DELETE.
write(C, "session_flow", b"\x03\x00"
      + w_exec(0, 0, 0, 1, 10) + bytes([Z_ANSWER, 0, C_READY, 0, C_DONE, 0, 0, 5])
      + w_exec(1, 2, 0, 2, 3) + bytes([C_DONE, 0, 0x40, 0])
      + w_exec(2, 2, 0, 3, 1) + bytes([W_CLOSE, 2, TIMERS, 0, C_EXIT, 0]))
write(C, "script_flow", b"\x03\x01"
      + w_exec(0, 1, 0, 1, 30) + bytes([Z_ANSWER, 0, C_READY, 0, C_OUT, 0, 0x05, C_DONE, 0, 4, 2]))
write(C, "queue_busy", b"\x03\x00"
      + w_exec(0, 0, 0, 1, 1) + bytes([Z_ANSWER, 0, C_READY, 0])
      + w_exec(1, 2, 0, 2, 1) + w_exec(2, 2, 0, 3, 1) + bytes([C_DONE, 0, 0, 0, C_DONE, 0, 3, 0]))

# fuzz_daemon_child: cf0 cf1 setup, then steps; indices into child_ops[].
CC_RAW, CC_FRAME, CC_BIG, CC_READ, CC_OUT, CC_ERR, CC_DRAIN, CC_CLOSE = 0, 1, 5, 6, 8, 9, 10, 11
CC_EXIT, CC_TIMERS, CC_WCLOSE, CC_WEXEC, CC_DONE = 12, 13, 14, 15, 16
done_ok = struct.pack("<BxxxI", 1, 0)
H = "fuzz_daemon_child"
write(H, "code_done", b"\x01\x00\x00" + bytes([CC_OUT, 0, 0x02]) + bytes([CC_ERR, 0, 0x81]) + b"\xff" * 64
      + bytes([CC_FRAME]) + frame(0, DONE, F_END, 0, done_ok) + bytes([CC_READ, 0]))
res = b'{"a": [1, 2]}'
write(H, "script_result", b"\x01\x00\x01" + bytes([CC_FRAME]) + frame(0, DONE, 0, 0, struct.pack("<BxxxI", 5, len(res)))
      + bytes([CC_FRAME]) + frame(0, DATA, S_RESULT | F_END, 0, res) + bytes([CC_READ, 0]))
write(H, "script_result_split", b"\x01\x00\x01" + bytes([CC_FRAME]) + frame(0, DONE, 0, 0, struct.pack("<BxxxI", 5, len(res)))
      + bytes([CC_FRAME]) + frame(0, DATA, S_RESULT, 0, res[:4])
      + bytes([CC_FRAME]) + frame(0, DATA, S_RESULT | F_END, 0, res[4:]) + bytes([CC_READ, 0]))
write(H, "starting_fail", b"\x01\x00\x04" + bytes([CC_FRAME]) + frame(0, CHILD_FAIL, F_END, 0, b"mount: \"x\" = \x01 failed")
      + bytes([CC_READ, 0]))
write(H, "starting_ready", b"\x01\x00\x04" + bytes([CC_FRAME]) + frame(0, CHILD_READY, F_END, 0, b"")
      + bytes([CC_READ, 0, CC_DONE, 0, 0, 4]))
write(H, "queued_two", b"\x01\x00\x02" + bytes([CC_DONE, 0, 0, 3, CC_DONE, 0, 0x40, 0]))
write(H, "interrupted", b"\x01\x00\x08" + bytes([CC_OUT, 0, 0x7f]) + bytes([CC_FRAME]) + frame(0, DONE, F_END, 0, done_ok)
      + bytes([CC_READ, 0]))
write(H, "exit_midrun", b"\x00\x00\x00" + bytes([CC_OUT, 0, 0x10, CC_EXIT, 0]))
write(H, "worker_gone", b"\x00\x00\x02" + bytes([CC_WCLOSE, 0, CC_DONE, 0, 0, 1, CC_TIMERS, 1, CC_TIMERS, 0]))
write(H, "big_data", b"\x00\x03\x01" + bytes([CC_FRAME]) + frame(0, DONE, 0, 0, struct.pack("<BxxxI", 5, 70000))
      + bytes([CC_BIG, 0, DATA]) + u16(S_RESULT) + b"\x00\x80\x00\x42" + bytes([CC_READ, 0]))

# fuzz_request, part 3: json_check against the target's own checker.
write(R, "check_mixed", b"\x03" + b' {"a" : [1, -0.5e+3, true, false, null, "\\u00e9\\/\\"", {}], "\xc3\xa9": []} ')
write(R, "check_deep", b"\x03" + b"[" * 64 + b"]" * 64)
write(R, "check_nan", b"\x03" + b"[NaN, 'x', 01]")
write(H, "interrupted_then_done", b"\x01\x00\x00" + bytes([CC_TIMERS, 1, CC_DONE, 0, 0, 9, CC_TIMERS, 1]))
write(H, "interrupted_grace_over", b"\x01\x00\x02" + bytes([CC_TIMERS, 1, CC_TIMERS, 1, CC_READ, 0]))
