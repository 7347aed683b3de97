# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""SMTP clients with the behaviours the tests need. Prints {"pid", "sport"} as JSON.

  smtp_client.py smtplib HOST PORT HELO         Python's smtplib: EHLO, MAIL, RCPT, QUIT
  smtp_client.py split HOST PORT HELO           EHLO sent one byte per TCP segment
  smtp_client.py exit-after-helo HOST PORT HELO EHLO, then exit at once, no QUIT
  smtp_client.py no-helo HOST PORT -            MAIL FROM without any HELO
  smtp_client.py raw HOST PORT HEXBYTES         EHLO with arbitrary bytes as its argument
Every socket operation has a timeout; nothing loops without a bound.
"""
import json
import os
import smtplib
import socket
import sys
import time

mode, host, port, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def connect():
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((host, port))
    return s


def read_reply(s):
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return buf
        buf += chunk
        lines = buf.split(b"\r\n")
        # Complete when the last full line has a space after the code.
        full = [l for l in lines[:-1] if len(l) >= 4]
        if full and full[-1][3:4] == b" ":
            return buf


def report(sport):
    print(json.dumps({"pid": os.getpid(), "sport": sport}), flush=True)


if mode == "smtplib":
    c = smtplib.SMTP(host, port, local_hostname=arg, timeout=5)
    report(c.sock.getsockname()[1])
    c.ehlo(arg)
    c.mail("sender@test.invalid")
    c.rcpt("rcpt1@test.invalid")
    c.rcpt("rcpt2@test.invalid")
    c.quit()
elif mode == "split":
    s = connect()
    report(s.getsockname()[1])
    read_reply(s)
    for b in f"EHLO {arg}\r\n".encode():
        s.send(bytes([b]))
        time.sleep(0.01)
    read_reply(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
elif mode == "exit-after-helo":
    s = connect()
    report(s.getsockname()[1])
    read_reply(s)
    s.sendall(f"EHLO {arg}\r\n".encode())
    os._exit(0)
elif mode == "no-helo":
    s = connect()
    report(s.getsockname()[1])
    read_reply(s)
    s.sendall(b"MAIL FROM:<nohelo@test.invalid>\r\n")
    read_reply(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
elif mode == "raw":
    s = connect()
    report(s.getsockname()[1])
    read_reply(s)
    s.sendall(b"EHLO " + bytes.fromhex(arg) + b"\r\n")
    read_reply(s)
    s.sendall(b"QUIT\r\n")
    read_reply(s)
    s.close()
else:
    sys.exit(f"unknown mode {mode}")
