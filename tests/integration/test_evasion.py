# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Evasions: each is attributed to the connecting process with its HELO, never silent."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import (PY, Agent, Netns, Skip, SmtpSink, check_schema, expect, expect_eq, get,
                     need_root, run_cases, session_of)

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evasive_client.py")
ns = agent = None


def evade(mode, helo):
    p = ns.popen([PY, CLIENT, mode, "127.0.0.1", "2525", helo], stdout=subprocess.PIPE,
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


def main():
    global ns, agent
    try:
        need_root()
    except Skip as e:
        for c in CASES:
            print(f"SKIP {c.__name__}: {e}")
        return 0
    with Netns("swt-evade") as n, SmtpSink(n, "127.0.0.1:2525"), Agent() as a:
        ns, agent = n, a
        rc = run_cases(CASES)
        expect_eq(a.stop(), 0, "agent exit code after SIGTERM")
        rc |= check_schema(a, "schema_evasion")
    return rc


CASES = [test_comm_changed_with_prctl, test_fork_after_connect,
         test_socket_handed_over_unix_socket, test_helo_sent_with_sendfile]

if __name__ == "__main__":
    sys.exit(main())
