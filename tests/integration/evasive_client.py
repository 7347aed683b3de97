# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Clients that try to hide: each still opens a real SMTP session to HOST:PORT.

  evasive_client.py comm HOST PORT HELO      renames itself (prctl PR_SET_NAME) to "sshd" first
  evasive_client.py fork HOST PORT HELO      connects, then a forked child speaks and the parent exits
  evasive_client.py handoff HOST PORT HELO   connects, hands the socket to another process over a
                                             unix socket (SCM_RIGHTS), which speaks
  evasive_client.py sendfile HOST PORT HELO  sends its EHLO line with sendfile(2) from a file
  evasive_client.py splice HOST PORT HELO    sends its EHLO line with splice(2) from a pipe
  evasive_client.py pipelined HOST PORT HELO NOOP, RSET, EHLO, MAIL, RCPT and QUIT in one write,
                                             without waiting for a reply (no STARTTLS)
  evasive_client.py v6hop HOST PORT HELO     IPv6 with a hop-by-hop options header in every packet
                                             (IPV6_HOPOPTS sticky option set before connect)
  evasive_client.py v6chain HOST PORT HELO   IPv6 with four extension headers in every packet:
                                             hop-by-hop, destination options, a segment routing
                                             header, destination options (needs seg6_enabled)
Prints {"pid": connecting pid, "speaker": pid that sent the HELO} as JSON. Bounded timeouts.
"""
import ctypes
import json
import os
import socket
import sys
import tempfile

mode, host, port, helo = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def connect():
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def connect_v6(opts):
    """A TCP socket whose every packet carries the given IPv6 extension headers."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    for opt, val in opts:
        s.setsockopt(socket.IPPROTO_IPV6, opt, val)
    s.settimeout(5)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


# Hop-by-hop or destination options, 8 bytes: one PadN option (next header and
# length are the kernel's to fill).
PADN8 = bytes([0, 0, 1, 4, 0, 0, 0, 0])
# Destination options, 16 bytes: an experimental option to skip (RFC 4727), then PadN.
DST16 = bytes([0, 1, 0x1e, 6, 1, 2, 3, 4, 5, 6, 1, 4, 0, 0, 0, 0])


def srh_to(addr):
    """Segment routing header (type 4) with the destination as its only, last segment."""
    return bytes([0, 2, 4, 0, 0, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, addr)


def converse(s, send_helo=None):
    f = s.makefile("rb")
    f.readline()  # banner
    if send_helo:
        send_helo(s)
    else:
        s.sendall(f"EHLO {helo}\r\n".encode())
    while True:
        line = f.readline()
        if not line or line[3:4] == b" ":
            break
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()


if mode == "comm":
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, b"sshd", 0, 0, 0)  # PR_SET_NAME
    s = connect()
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)
    converse(s)
elif mode == "fork":
    s = connect()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        converse(s)
        os._exit(0)
    s.close()
    os.close(w)
    speaker = int(os.read(r, 32))
    print(json.dumps({"pid": os.getpid(), "speaker": speaker}), flush=True)
    os.waitpid(child, 0)
elif mode == "handoff":
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = os.fork()
    if child == 0:
        a.close()
        msg, fds, _, _ = socket.recv_fds(b, 16, 1)
        s = socket.socket(fileno=fds[0])
        b.sendall(str(os.getpid()).encode())
        converse(s)
        os._exit(0)
    b.close()
    s = connect()
    socket.send_fds(a, [b"x"], [s.fileno()])
    s.close()
    speaker = int(a.recv(32))
    print(json.dumps({"pid": os.getpid(), "speaker": speaker}), flush=True)
    os.waitpid(child, 0)
elif mode == "sendfile":
    s = connect()
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)

    def via_sendfile(sock):
        with tempfile.TemporaryFile() as t:
            t.write(f"EHLO {helo}\r\n".encode())
            t.flush()
            os.sendfile(sock.fileno(), t.fileno(), 0, t.tell())
    converse(s, via_sendfile)
elif mode == "splice":
    s = connect()
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)

    def via_splice(sock):
        line = f"EHLO {helo}\r\n".encode()
        r, w = os.pipe()
        os.write(w, line)
        os.close(w)
        left = len(line)
        while left > 0:
            n = os.splice(r, sock.fileno(), left)
            if n <= 0:
                sys.exit("splice sent nothing")
            left -= n
        os.close(r)
    converse(s, via_splice)
elif mode == "pipelined":
    s = connect()
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)
    f = s.makefile("rb")
    f.readline()  # banner
    s.sendall(f"NOOP\r\nRSET\r\nEHLO {helo}\r\nMAIL FROM:<p@test.invalid>\r\n"
              f"RCPT TO:<q@test.invalid>\r\nQUIT\r\n".encode())
    # Read until the server closes after QUIT: every reply, bounded by the timeout.
    while f.readline():
        pass
    s.close()
elif mode == "v6hop":
    s = connect_v6([(socket.IPV6_HOPOPTS, PADN8)])
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)
    converse(s)
elif mode == "v6chain":
    s = connect_v6([(socket.IPV6_HOPOPTS, PADN8), (socket.IPV6_RTHDRDSTOPTS, DST16),
                    (socket.IPV6_RTHDR, srh_to(host)), (socket.IPV6_DSTOPTS, PADN8)])
    print(json.dumps({"pid": os.getpid(), "speaker": os.getpid()}), flush=True)
    converse(s)
else:
    sys.exit(f"unknown mode {mode}")
