# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Evasions: each is attributed to the connecting process with its HELO, never silent."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (runnable, PY, ROOT, Agent, Netns, Skip, SmtpSink, check_schema, expect,
                     expect_eq, get, run_cases, session_of, sh)

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evasive_client.py")
ns = agent = None


def evade(mode, helo, host="127.0.0.1"):
    p = ns.popen([PY, CLIENT, mode, host, "2525", helo], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=20)
    expect_eq(p.returncode, 0, f"{mode} client: {err.strip()[-200:]}")
    info = json.loads(out.splitlines()[0])
    expect_eq(info["pid"], p.pid, "connecting pid")
    ev = agent.wait_for(session_of(p.pid), what=f"{mode} session")
    expect_eq(get(ev, "smtp.helo"), helo, "smtp.helo")
    expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
    return ev, info


def test_comm_changed_with_prctl():
    ev, _ = evade("comm", "renamed.test.example")
    expect_eq(get(ev, "process.name"), "sshd", "process.name is what the process claims")
    expect_eq(get(ev, "process.args")[1], CLIENT, "argv still tells the truth")


def test_fork_after_connect():
    ev, info = evade("fork", "forked.test.example")
    expect(info["speaker"] != info["pid"], "a child spoke")


def test_socket_handed_over_unix_socket():
    ev, info = evade("handoff", "handed.test.example")
    expect(info["speaker"] != info["pid"], "another process spoke")


def test_helo_sent_with_sendfile():
    evade("sendfile", "sendfile.test.example")


def test_helo_sent_with_splice():
    evade("splice", "splice.test.example")


def test_helo_after_pipelined_commands():
    ev, _ = evade("pipelined", "pipelined.test.example")
    expect_eq(get(ev, "smtp.mail_from"), "<p@test.invalid>", "smtp.mail_from after the HELO")
    expect_eq(get(ev, "smtp.rcpt_to"), ["<q@test.invalid>"], "smtp.rcpt_to")


URING = os.path.join(ROOT, "build", "tests", "uring_smtp")


def uring(helo, *flags):
    """tests/tools/uring_smtp: socket, connect, recv, send and write through io_uring."""
    expect(os.path.exists(URING), f"{URING} is not built (make tests-build)")
    p = ns.popen([URING, *flags, "127.0.0.1", "2525", helo], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=20)
    if p.returncode == 77:
        raise Skip(f"io_uring is not available here: {err.strip()}")
    expect_eq(p.returncode, 0, f"uring_smtp {' '.join(flags)}: {err.strip()[-200:]}")
    info = json.loads(out.splitlines()[0])
    expect_eq(info["pid"], p.pid, "connecting pid")
    ev = agent.wait_for(session_of(p.pid), what=f"io_uring session {' '.join(flags)}")
    expect_eq(get(ev, "smtp.helo"), helo, "smtp.helo")
    expect_eq(get(ev, "process.executable"), os.path.realpath(URING), "process.executable")
    return ev


def test_connect_and_helo_through_io_uring():
    # IORING_OP_CONNECT and IORING_OP_SEND/WRITE run in the process's io-wq worker
    # or inline; with SQPOLL, in its submission thread: the same process either way.
    ev = uring("uring.test.example")
    expect_eq(get(ev, "process.name"), "uring_smtp", "process.name")
    # With SQPOLL the connect runs in the process's "iou-sqp-PID" thread: the name
    # is still the process's (its main thread's), not the thread's.
    ev = uring("sqpoll.test.example", "--sqpoll")
    expect_eq(get(ev, "process.name"), "uring_smtp", "process.name with SQPOLL")


class Capture:
    """tcpdump on the namespace's lo: proof that the packets had the shape under test."""

    def __init__(self, bpf_filter):
        self.filter = bpf_filter

    def __enter__(self):
        self.p = ns.popen(["tcpdump", "-i", "lo", "-nn", "-l", "-c", "200", self.filter],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 5
        while time.time() < deadline:  # tcpdump says so on stderr once it listens
            line = self.p.stderr.readline()
            if "listening on" in line or not line:
                break
        return self

    def __exit__(self, *a):
        time.sleep(0.3)
        self.p.terminate()
        try:
            self.out, _ = self.p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.out, _ = self.p.communicate()


def evade_v6(mode, helo, bpf_filter):
    if not shutil.which("tcpdump"):
        raise Skip("tcpdump is not installed: cannot show the packets had extension headers")
    with Capture(bpf_filter) as cap:
        ev, _ = evade(mode, helo, "::1")
    sport = get(ev, "source.port")
    # "IP6 ::1 > ::1: HBH DSTOPT ... 35346 > 2525: Flags": the ports follow the headers.
    expect(re.search(rf"IP6 ::1 > ::1: .*\b{sport} > 2525: ", cap.out),
           f"no client packet of port {sport} matched {bpf_filter!r}: {cap.out[-300:]!r}")
    expect_eq(get(ev, "network.type"), "ipv6", "network.type")
    expect_eq(get(ev, "destination.ip"), "::1", "destination.ip")
    expect_eq(get(ev, "source.ip"), "::1", "source.ip")
    expect_eq(get(ev, "process.args")[2], mode, "process.args")
    return ev


def test_ipv6_hop_by_hop_header():
    # ip6[6]: the fixed header's next header is hop-by-hop, not TCP.
    evade_v6("v6hop", "hopopts.test.example", "ip6[6] == 0")


def test_ipv6_extension_header_chain():
    # Hop-by-hop, then destination options, routing (segment routing), destination options.
    sh(ns.cmd("sysctl -qw net.ipv6.conf.all.seg6_enabled=1 net.ipv6.conf.lo.seg6_enabled=1"))
    evade_v6("v6chain", "exthdrs.test.example", "ip6[6] == 0 and ip6[40] == 60")


def main():
    global ns, agent
    if not runnable(CASES):
        return 0
    with Netns("swt-evade") as n, SmtpSink(n, "127.0.0.1:2525"), SmtpSink(n, "[::1]:2525"), \
            Agent() as a:
        ns, agent = n, a
        rc = run_cases(CASES)
        expect_eq(a.stop(), 0, "agent exit code after SIGTERM")
        rc |= check_schema(a, "schema_evasion")
    return rc


CASES = [test_comm_changed_with_prctl, test_fork_after_connect,
         test_socket_handed_over_unix_socket, test_helo_sent_with_sendfile,
         test_helo_sent_with_splice, test_helo_after_pipelined_commands,
         test_ipv6_hop_by_hop_header, test_ipv6_extension_header_chain,
         test_connect_and_helo_through_io_uring]

if __name__ == "__main__":
    sys.exit(main())
