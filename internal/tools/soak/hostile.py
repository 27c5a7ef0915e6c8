#!/usr/bin/env python3
"""Hostile clients for the shout soak test. Loopback only.

usage:
  hostile.py mix     HOST TCPPORT TLSPORT UDPPORT   # one round of misbehaving clients (bounded ~60 s)
  hostile.py idlers  HOST TCPPORT N MAXWAIT          # N silent conns held until the server closes them (idle timeout)
  hostile.py limits  HOST TCPPORT N NIPS FIRSTIP     # N conns over NIPS source addrs, count served vs rejected
Prints one JSON summary line on stdout.
"""
import json, os, random, selectors, socket, struct, sys, threading, time

HOST = "127.0.0.1"
assert True
res = {}
lock = threading.Lock()


def count(key, n=1):
    with lock:
        res[key] = res.get(key, 0) + n


def loopback(h):
    assert h in ("127.0.0.1", "::1", "localhost") or h.startswith("127."), h
    return h


def conn(port, src=None, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def rst_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


# ---- TCP -------------------------------------------------------------------

def never_read(port, hold):
    """send forever, never read: the server must drop it at --write-timeout."""
    t0 = time.time()
    try:
        s = conn(port)
        s.settimeout(1)
        chunk = (b"never read me " * 4680)[:65536]
        sent = 0
        while time.time() - t0 < hold:
            try:
                sent += s.send(chunk)
            except socket.timeout:
                continue
        count("never_read_held_to_end")
        s.close()
    except (ConnectionResetError, BrokenPipeError) as e:
        count("never_read_dropped_by_server")
        with lock:
            res.setdefault("never_read_drop_after_s", []).append(round(time.time() - t0, 1))
    except OSError as e:
        count("never_read_err_" + type(e).__name__)


def slow_reader(port, dur):
    """sends a lot, reads 2 KB every 20 ms; closes with unread data (a reset)."""
    try:
        s = conn(port)
        stop = time.time() + dur
        def sender():
            data = ("slow reader ß " * 100 + "\n").encode()
            try:
                s.settimeout(1)
                while time.time() < stop:
                    try:
                        s.sendall(data)
                    except socket.timeout:
                        pass
            except OSError:
                pass
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        got = 0
        s.settimeout(1)
        while time.time() < stop:
            try:
                b = s.recv(2048)
                if not b:
                    count("slow_reader_eof")
                    break
                got += len(b)
            except socket.timeout:
                pass
            time.sleep(0.02)
        th.join(2)
        count("slow_reader_bytes", got)
        rst_close(s)
        count("slow_reader_done")
    except OSError as e:
        count("slow_reader_err_" + type(e).__name__)


def resetter(port, n):
    """reset (SO_LINGER 0) mid-message, at various points."""
    for i in range(n):
        try:
            s = conn(port)
            kind = i % 4
            if kind == 0:        # partial line ending inside a UTF-8 character
                s.sendall(b"hello stra\xc3")
            elif kind == 1:      # a big message, reset while the server writes the reply
                s.sendall(b"x" * 262144)
            elif kind == 2:      # a line, read part of the reply, reset
                s.sendall(b"hello there\n" * 100)
                s.recv(10)
            else:                # reset at once
                pass
            time.sleep(random.random() * 0.02)
            rst_close(s)
            count("reset_done")
        except OSError as e:
            count("reset_err_" + type(e).__name__)


def half_open(port, n, hold):
    socks = []
    for _ in range(n):
        try:
            socks.append(conn(port))
        except OSError as e:
            count("half_open_err_" + type(e).__name__)
    time.sleep(hold)
    for s in socks:
        s.close()
    count("half_open_done", len(socks))


def connect_close(port, n):
    for i in range(n):
        try:
            s = conn(port)
            if i % 2:
                rst_close(s)
            else:
                s.close()
            count("connect_close_done")
        except OSError as e:
            count("connect_close_err_" + type(e).__name__)


def half_close_noread(port, n, hold):
    socks = []
    for _ in range(n):
        try:
            s = conn(port)
            s.sendall(b"half close then never read\n" * 50)
            s.shutdown(socket.SHUT_WR)
            socks.append(s)
        except OSError as e:
            count("half_close_err_" + type(e).__name__)
    time.sleep(hold)
    for s in socks:
        s.close()
    count("half_close_done", len(socks))


def huge(port, kind, nbytes):
    """a huge message without a newline; the reply is read whole and checked."""
    try:
        s = conn(port, timeout=30)
        if kind == "ascii":
            unit, want_unit = b"a", b"A"
        elif kind == "sharp":
            unit, want_unit = "ß".encode(), b"SS"
        else:
            unit = None
        if unit is None:
            data = os.urandom(nbytes)
            want_len = None
        else:
            data = unit * (nbytes // len(unit))
            want_len = len(data) // len(unit) * len(want_unit)
        got = bytearray()
        def sender():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                count("huge_send_err")
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
        th.join(5)
        s.close()
        if unit is None:
            count("huge_random_done")
            count("huge_random_reply_bytes", len(got))
        else:
            ok = len(got) == want_len and got == want_unit * (want_len // len(want_unit))
            count("huge_%s_%s" % (kind, "ok" if ok else "WRONG"))
    except OSError as e:
        count("huge_err_" + type(e).__name__)


# ---- TLS ---------------------------------------------------------------------

def tls_garbage(port, n):
    for i in range(n):
        try:
            s = conn(port)
            if i % 3 == 0:
                s.sendall(os.urandom(300))
            elif i % 3 == 1:     # looks like a handshake record, then junk
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc" + os.urandom(100))
            else:                # a plain-text line to a TLS port
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.settimeout(3)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            if i % 2:
                rst_close(s)
            else:
                s.close()
            count("tls_garbage_done")
        except OSError as e:
            count("tls_garbage_err_" + type(e).__name__)


def tls_silent(port, n, maxwait):
    """connect and never handshake: the server must close at --handshake-timeout."""
    socks = []
    for _ in range(n):
        try:
            socks.append(conn(port))
        except OSError as e:
            count("tls_silent_err_" + type(e).__name__)
    t0 = time.time()
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    while left and time.time() - t0 < maxwait:
        for key, _ in sel.select(0.5):
            try:
                b = key.fileobj.recv(4096)
            except OSError:
                b = b""
            if not b:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                left -= 1
                with lock:
                    res["tls_silent_closed_after_s_max"] = max(res.get("tls_silent_closed_after_s_max", 0), round(time.time() - t0, 1))
    count("tls_silent_closed_by_server", len(socks) - left)
    count("tls_silent_still_open_at_end", left)
    for key in list(sel.get_map().values()):
        key.fileobj.close()


# ---- UDP -----------------------------------------------------------------------

def udp_flood(port, dur, size):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = (b"udp flood " * (size // 10 + 1))[:size]
    stop = time.time() + dur
    n = 0
    while time.time() < stop:
        try:
            u.sendto(payload, (HOST, port))
            n += 1
        except OSError:
            pass
    u.close()
    count("udp_flood_sent", n)


def udp_odd(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    cases = [b"", b"\xff\xfe\x00", b"a" * 65507, "ΐ".encode() * 32753, os.urandom(1400)]
    for c in cases * 5:
        try:
            u.sendto(c, (HOST, port))
        except OSError:
            count("udp_odd_send_err")
        try:
            u.recvfrom(70000)
            count("udp_odd_answered")
        except socket.timeout:
            count("udp_odd_no_answer")
    u.close()
    # a datagram from a reflector port (chargen, 19): must be dropped, not answered
    try:
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind((HOST, 19))
        r.settimeout(0.5)
        r.sendto(b"from chargen", (HOST, port))
        try:
            r.recvfrom(100)
            count("udp_reflector_ANSWERED")
        except socket.timeout:
            count("udp_reflector_dropped")
        r.close()
    except OSError:
        count("udp_reflector_bind_failed")


def run_threads(targets):
    ths = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
    for t in ths:
        t.start()
    for t in ths:
        t.join()


def mix(tcp, tls, udp):
    t0 = time.time()
    targets = []
    targets += [(never_read, (tcp, 50))] * 5
    targets += [(slow_reader, (tcp, 25))] * 3
    targets += [(resetter, (tcp, 100))] * 4
    targets += [(half_open, (tcp, 50, 15))]
    targets += [(connect_close, (tcp, 300))]
    targets += [(half_close_noread, (tcp, 20, 10))]
    targets += [(huge, (tcp, "ascii", 16 << 20)), (huge, (tcp, "sharp", 8 << 20)), (huge, (tcp, "random", 8 << 20))]
    targets += [(tls_garbage, (tls, 60)), (tls_silent, (tls, 10, 20)), (resetter, (tls, 40)), (half_open, (tls, 10, 5))]
    targets += [(udp_flood, (udp, 10, 64))] * 3 + [(udp_odd, (udp,))]
    run_threads(targets)
    res["elapsed_s"] = round(time.time() - t0, 1)


def idlers(port, n, maxwait):
    """silent conns held until the server closes them."""
    socks = [conn(port) for _ in range(n)]
    t0 = time.time()
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left = n
    closes = []
    while left and time.time() - t0 < maxwait:
        for key, _ in sel.select(1):
            try:
                b = key.fileobj.recv(4096)
            except OSError:
                b = b""
            if not b:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                left -= 1
                closes.append(round(time.time() - t0, 1))
    res["idlers_closed_by_server"] = n - left
    res["idlers_still_open"] = left
    if closes:
        res["idlers_closed_after_s_min"] = min(closes)
        res["idlers_closed_after_s_max"] = max(closes)
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def limits(port, n, nips, first):
    """n conns over nips source addresses 127.0.0.first..; send a line on each;
    count those answered and those that read EOF at once (rejected)."""
    socks = []
    t0 = time.time()
    for i in range(n):
        src = "127.0.0.%d" % (first + i % nips)
        try:
            s = conn(port, src=src, timeout=10)
            socks.append(s)
        except OSError as e:
            count("limits_connect_err_" + type(e).__name__)
    res["limits_connect_s"] = round(time.time() - t0, 1)
    sel = selectors.DefaultSelector()
    for s in socks:
        try:
            s.sendall(b"limit probe\n")
        except OSError as e:
            count("limits_send_err_" + type(e).__name__)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    answered = set()
    deadline = time.time() + 20
    while left and time.time() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                b = s.recv(4096)
            except OSError as e:
                count("limits_recv_err_" + type(e).__name__)
                b = None
            if b:
                if b == b"LIMIT PROBE\n":
                    count("limits_answered")
                else:
                    count("limits_answered_WRONG")
                sel.unregister(s)
                left -= 1
                answered.add(s)
            else:
                if b == b"":
                    count("limits_eof_rejected")
                sel.unregister(s)
                left -= 1
    res["limits_no_answer"] = left
    time.sleep(1)
    for s in socks:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        s.close()
    res["limits_total_s"] = round(time.time() - t0, 1)


if __name__ == "__main__":
    mode = sys.argv[1]
    HOST = loopback(sys.argv[2])
    a = [int(x) for x in sys.argv[3:]]
    if mode == "mix":
        mix(*a)
    elif mode == "idlers":
        idlers(*a)
    elif mode == "limits":
        limits(*a)
    else:
        sys.exit("unknown mode")
    res["mode"] = mode
    print(json.dumps(res, sort_keys=True), flush=True)
