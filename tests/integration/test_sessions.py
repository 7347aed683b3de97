# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Sessions from real clients to a real SMTP server (smtp-sink), over loopback in a
namespace of the test's own, attributed by a real agent on the real kernel hooks."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (runnable, check_schema, PY, Agent, Netns, SmtpSink, expect, expect_eq, get,
                     run_cases, session_of)

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_client.py")
NS = "swt-sess"
agent = None
ns = None


def client(mode, host, port, arg):
    """Run smtp_client.py in the namespace; returns (pid, sport)."""
    p = ns.popen([PY, CLIENT, mode, host, str(port), arg], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=20)
    expect(p.returncode == 0, f"client {mode} failed: {err.strip()[-300:]}")
    import json
    info = json.loads(out.splitlines()[0])
    expect_eq(info["pid"], p.pid, "client pid (ip netns exec execs in place)")
    return info["pid"], info["sport"]


def replies(ev):
    return [r["code"] for r in get(ev, "smtp.replies", [])]


def test_ipv4_swaks():
    p = ns.popen(["swaks", "--server", "127.0.0.1:2525", "--helo", "swaks.test.example",
                  "--from", "a@test.invalid", "--to", "b@test.invalid"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    expect_eq(p.wait(timeout=20), 0, "swaks exit code")
    ev = agent.wait_for(session_of(p.pid), what=f"smtp_session of swaks pid {p.pid}")
    expect_eq(get(ev, "process.executable"), os.path.realpath(shutil.which("perl")),
              "process.executable")
    expect_eq(get(ev, "process.args")[1:3], ["/usr/bin/swaks", "--server"], "process.args")
    expect_eq(get(ev, "process.name"), "swaks", "process.name (comm)")
    expect_eq(get(ev, "process.parent.pid"), os.getpid(), "process.parent.pid")
    expect_eq(get(ev, "user.id"), "0", "user.id")
    expect_eq(get(ev, "user.name"), "root", "user.name")
    expect_eq(get(ev, "smtp.helo_verb"), "EHLO", "smtp.helo_verb")
    expect_eq(get(ev, "smtp.helo"), "swaks.test.example", "smtp.helo")
    expect_eq(get(ev, "smtp.mail_from"), "<a@test.invalid>", "smtp.mail_from")
    expect_eq(get(ev, "smtp.rcpt_to"), ["<b@test.invalid>"], "smtp.rcpt_to")
    expect(get(ev, "smtp.banner", "").startswith("smtp-sink"), f"banner {get(ev, 'smtp.banner')!r}")
    expect_eq(replies(ev), [250, 250, 250, 354, 250, 221], "reply codes")
    expect_eq(get(ev, "destination.ip"), "127.0.0.1", "destination.ip")
    expect_eq(get(ev, "destination.port"), 2525, "destination.port")
    expect_eq(get(ev, "source.ip"), "127.0.0.1", "source.ip")
    expect(1024 <= get(ev, "source.port", 0) <= 65535, "source.port")
    expect_eq(get(ev, "network.type"), "ipv4", "network.type")
    expect(get(ev, "network.community_id", "").startswith("1:"), "network.community_id")
    start = agent.wait_for(lambda e: get(e, "event.action") == "connection_attempted"
                           and get(e, "process.pid") == p.pid, what="connection_attempted")
    expect(get(start, "event.sequence") < get(ev, "event.sequence"), "attempt precedes session")


def test_ipv6_smtplib():
    pid, sport = client("smtplib", "::1", 2525, "py6.test.example")
    ev = agent.wait_for(session_of(pid), what="IPv6 smtp_session")
    expect_eq(get(ev, "network.type"), "ipv6", "network.type")
    expect_eq(get(ev, "destination.ip"), "::1", "destination.ip")
    expect_eq(get(ev, "source.ip"), "::1", "source.ip")
    expect_eq(get(ev, "source.port"), sport, "source.port")
    expect_eq(get(ev, "smtp.helo"), "py6.test.example", "smtp.helo")
    expect_eq(get(ev, "smtp.rcpt_to"), ["<rcpt1@test.invalid>", "<rcpt2@test.invalid>"], "rcpt_to")
    expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
    expect_eq(get(ev, "process.args")[:3], [PY, CLIENT, "smtplib"], "process.args")
    expect_eq(replies(ev)[-1], 221, "last reply")


def test_v4_mapped():
    pid, sport = client("smtplib", "::ffff:127.0.0.1", 2525, "mapped.test.example")
    ev = agent.wait_for(session_of(pid), what="v4-mapped smtp_session")
    expect_eq(get(ev, "network.type"), "ipv4", "network.type")
    expect_eq(get(ev, "destination.ip"), "127.0.0.1", "destination.ip")
    expect_eq(get(ev, "source.port"), sport, "source.port")
    expect_eq(get(ev, "smtpwatch.v4_mapped"), True, "smtpwatch.v4_mapped")
    expect_eq(get(ev, "smtp.helo"), "mapped.test.example", "smtp.helo")


def test_curl():
    body = os.path.join(agent.dir, "mail.txt")
    with open(body, "w") as f:
        f.write("Subject: t\r\n\r\nhello\r\n")
    p = ns.popen(["curl", "-s", "--max-time", "10", "smtp://127.0.0.1:2525/curl.test.example",
                  "--mail-from", "c@test.invalid", "--mail-rcpt", "d@test.invalid", "-T", body],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    expect_eq(p.wait(timeout=20), 0, "curl exit code")
    ev = agent.wait_for(session_of(p.pid), what="curl smtp_session")
    expect_eq(get(ev, "process.executable"), os.path.realpath(shutil.which("curl")),
              "process.executable")
    expect_eq(get(ev, "smtp.helo"), "curl.test.example", "smtp.helo")
    expect_eq(get(ev, "smtp.mail_from"), "<c@test.invalid>", "smtp.mail_from")


def test_helo_one_byte_per_segment():
    pid, _ = client("split", "127.0.0.1", 2525, "split.one-byte.test.example")
    ev = agent.wait_for(session_of(pid), what="split-HELO smtp_session")
    expect_eq(get(ev, "smtp.helo"), "split.one-byte.test.example", "smtp.helo")
    expect_eq(replies(ev)[0], 250, "EHLO reply")


def test_exit_right_after_helo():
    pid, _ = client("exit-after-helo", "127.0.0.1", 2525, "gone.test.example")
    expect(not os.path.exists(f"/proc/{pid}"), "client is gone")
    ev = agent.wait_for(session_of(pid), what="session of an exited client")
    expect_eq(get(ev, "smtp.helo"), "gone.test.example", "smtp.helo")
    expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
    expect_eq(get(ev, "process.args"),
              [PY, CLIENT, "exit-after-helo", "127.0.0.1", "2525", "gone.test.example"],
              "process.args")
    # From the kernel's exec cache, not /proc: it holds for a process already gone.
    expect_eq(get(ev, "smtpwatch.exec_source"), "exec", "smtpwatch.exec_source")


def test_session_without_helo():
    pid, _ = client("no-helo", "127.0.0.1", 2525, "-")
    ev = agent.wait_for(session_of(pid), what="HELO-less smtp_session")
    expect(get(ev, "smtp.helo") is None, f"no smtp.helo, got {get(ev, 'smtp.helo')!r}")
    expect(get(ev, "smtp.helo_verb") is None, "no smtp.helo_verb")
    expect_eq(get(ev, "smtp.mail_from"), "<nohelo@test.invalid>", "smtp.mail_from")
    expect_eq(get(ev, "smtp.banner")[:9], "smtp-sink", "banner")


def test_hostile_helo_escaped():
    raw = b"\x1b[2J\x1b]0;owned\x07\x00\"q\\\xff\xc3\xa9" + b"A" * 300
    pid, _ = client("raw", "127.0.0.1", 2525, raw.hex())
    ev = agent.wait_for(session_of(pid), what="hostile-HELO smtp_session")
    want = "\x1b[2J\x1b]0;owned\x07\\x00\"q\\\\xff\u00e9" + "A" * 300
    expect_eq(get(ev, "smtp.helo"), want, "smtp.helo decoded")
    with open(agent.events, "rb") as f:
        data = f.read()
    expect(not any(b < 0x20 and b != 0x0a for b in data), "no raw control byte in the file")
    data.decode("utf-8")  # raises if any line is not valid UTF-8


def main():
    global agent, ns
    if not runnable(CASES):
        return 0
    with Netns(NS) as n, SmtpSink(n, "127.0.0.1:2525"), SmtpSink(n, "[::1]:2525"), Agent() as a:
        ns, agent = n, a
        rc = run_cases(CASES)
        expect_eq(a.stop(), 0, "agent exit code after SIGTERM")
        rc |= check_schema(a, "schema_sessions")
        return rc


CASES = [test_ipv4_swaks, test_ipv6_smtplib, test_v4_mapped, test_curl,
         test_helo_one_byte_per_segment, test_exit_right_after_helo, test_session_without_helo,
         test_hostile_helo_escaped]

if __name__ == "__main__":
    sys.exit(main())
