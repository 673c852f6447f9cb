#!/usr/bin/env python3
"""A FastCGI client for the connection tests: speaks to pyexec-fcgi's socket as
a web server would, with or without FCGI_KEEP_CONN.

    fcgi_client.py SOCKET keep N           N requests on one kept connection
    fcgi_client.py SOCKET idle K           K silent and K idle kept connections
                                           open, then one request on a new one
    fcgi_client.py SOCKET hangup K         K kept connections that this side (the
                                           web server's) closes after a request,
                                           then one more
    fcgi_client.py SOCKET leftover         a kept connection whose body pyexec
                                           does not read, then a new connection
    fcgi_client.py SOCKET unread           on one kept connection, requests whose
                                           bodies pyexec answers without reading
                                           them (415, 413 from the announced length,
                                           404, 405), then one it runs
    fcgi_client.py SOCKET fallback OTHER   for a worker with one thread: a kept
                                           connection the server closes while the
                                           thread is busy, then GET /health from
                                           OTHER (another address of the same
                                           listening socket), "refused" or its reply
    fcgi_client.py SOCKET silent K         K silent connections, then one request
                                           on a new one: answered at once, or once
                                           the K are closed
    fcgi_client.py SOCKET one              GET /health on a new connection, or
                                           "refused" when closed unanswered

SOCKET is a Unix socket's path or tcp:HOST:PORT.

Each prints one line per fact the shell test checks.
"""
import json
import socket
import struct
import sys
import time

BEGIN, END, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
KEEP_CONN = 1


def record(rtype, rid, data=b""):
    return struct.pack(">BBHHBx", 1, rtype, rid, len(data), 0) + data


def nv(name, value):
    out = b""
    for s in (name, value):
        out += bytes([len(s)]) if len(s) < 128 else struct.pack(">I", len(s) | 1 << 31)
    return out + name + value


def connect(path):
    """A Unix socket's path, or tcp:HOST:PORT."""
    if path.startswith("tcp:"):
        host, port = path[4:].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
    return s


def send_request(s, method, uri, body=b"", keep=True, rid=1, length=None,
                 ctype="application/json"):
    params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "SCRIPT_NAME": uri,
              "CONTENT_TYPE": ctype,
              "CONTENT_LENGTH": str(len(body) if length is None else length)}
    p = b"".join(nv(k.encode(), v.encode()) for k, v in params.items())
    msg = record(BEGIN, rid, struct.pack(">HB5x", 1, KEEP_CONN if keep else 0))
    msg += record(PARAMS, rid, p) + record(PARAMS, rid)
    for i in range(0, len(body), 65535):
        msg += record(STDIN, rid, body[i:i + 65535])
    if length is None:
        msg += record(STDIN, rid)
    s.sendall(msg)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_reply(s):
    """The reply's status line and body, once END_REQUEST arrived."""
    out = b""
    while True:
        _, rtype, _, clen, plen = struct.unpack(">BBHHBx", read_exact(s, 8))
        data = read_exact(s, clen + plen)[:clen]
        if rtype == STDOUT:
            out += data
        elif rtype == END:
            break
    head, _, body = out.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode()
    return status, body.decode()


def closed_by_server(s):
    s.settimeout(3)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False


def request(path, method, uri, body=b""):
    s = connect(path)
    send_request(s, method, uri, body, keep=False)
    r = read_reply(s)
    s.close()
    return r


def main():
    path, mode = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 0
    if mode == "keep":
        s = connect(path)
        sid = None
        for i in range(n):
            code = {"code": "x = %d\nprint(x * 2)" % i} if sid is None else \
                {"code": "x += 1\nprint(x * 2)", "id": sid}
            send_request(s, "POST", "/execute", json.dumps(code).encode(), rid=i % 3 + 1)
            status, body = read_reply(s)
            sid = json.loads(body).get("id", sid)
            print(status, body)
        print("still open" if not closed_by_server(s) else "closed")
    elif mode == "idle":
        silent = [connect(path) for _ in range(n)]
        kept = []
        for _ in range(n):
            s = connect(path)
            send_request(s, "GET", "/health")
            read_reply(s)
            kept.append(s)
        t0 = time.monotonic()
        status, body = request(path, "GET", "/health")
        print(status, body)
        print("answered in %d ms" % ((time.monotonic() - t0) * 1000))
        for s in silent + kept:
            s.close()
    elif mode == "hangup":
        for _ in range(n):
            s = connect(path)
            send_request(s, "GET", "/health")
            read_reply(s)
            s.close()
        time.sleep(0.2)
        status, body = request(path, "GET", "/health")
        print(status, body)
    elif mode == "leftover":
        s = connect(path)
        # Announces more than max_body and sends only the start of it.
        send_request(s, "POST", "/execute", b'{"code": "' + b"#" * 1000, length=64 << 20)
        status, body = read_reply(s)
        print(status, body)
        print("closed" if closed_by_server(s) else "still open")
        s.close()
        status, body = request(path, "POST", "/execute", b'{"code": "print(7)"}')
        print(status, body)
    elif mode == "unread":
        s = connect(path)
        code = json.dumps({"code": "print(6 * 7)"}).encode()
        for method, uri, body, ctype in (
                ("POST", "/execute", code + b" " * (256 << 10), "text/plain"),
                ("POST", "/execute", b"[" + b" " * (3 << 20) + b"]", "application/json"),
                ("POST", "/nope", b"x" * (64 << 10), "application/json"),
                ("GET", "/execute", b"x" * 1000, "application/json")):
            try:
                send_request(s, method, uri, body, ctype=ctype)
                status, _ = read_reply(s)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                status = "closed"
            print(status)
        print("still open" if not closed_by_server(s) else "closed")
        try:
            send_request(s, "POST", "/execute", b'{"code": "print(7)"}')
            print(*read_reply(s))
        except (EOFError, ConnectionResetError, BrokenPipeError):
            print("no reply")
        s.close()
    elif mode == "fallback":
        other = sys.argv[3]
        kept = connect(path)
        send_request(kept, "GET", "/health")
        read_reply(kept)
        # The only thread waits for the rest of this body...
        busy = connect(path)
        body = b'{"code": "print(5)"}'
        send_request(busy, "POST", "/execute", body[:5], length=len(body))
        time.sleep(0.3)
        # ...while the server closes its kept connection and another peer
        # connects: its connection waits in the backlog.
        kept.close()
        s = connect(other)
        send_request(s, "GET", "/health", keep=False)
        time.sleep(0.3)
        busy.sendall(record(STDIN, 1, body[5:]) + record(STDIN, 1))
        print(*read_reply(busy))
        try:
            print(*read_reply(s))
        except (EOFError, ConnectionResetError, BrokenPipeError):
            print("refused")
        s.close()
        busy.close()
    elif mode == "silent":
        silent = [connect(path) for _ in range(n)]
        time.sleep(0.3)
        s = connect(path)
        send_request(s, "GET", "/health", keep=False)
        s.settimeout(1)
        try:
            print("answered at once:", *read_reply(s))
        except socket.timeout:
            print("waiting")
            for c in silent:
                c.close()
            s.settimeout(10)
            t0 = time.monotonic()
            status, body = read_reply(s)
            print("answered %s after the closes: %s %s" % (
                "at once" if time.monotonic() - t0 < 1 else "late", status, body))
        s.close()
        for c in silent:
            c.close()
    elif mode == "one":
        s = connect(path)  # a failure to connect is an error, not "refused"
        try:
            send_request(s, "GET", "/health", keep=False)
            status, body = read_reply(s)
            print(status, body)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            print("refused")
        s.close()
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
