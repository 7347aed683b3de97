# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The journal: rotation by size with gzip under a flood, SIGHUP reopen (logrotate), and
hunt over the rotated files. No line lost, split or duplicated."""
import glob
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (AGENT, Agent, Netns, Skip, SmtpSink, expect, expect_eq, get, need_root,
                     run_cases)

SESSIONS = 400
agent = ns = None


def journal_lines(base):
    """Every line of base, its rotations (plain or .gz) and moved-away copies."""
    lines = []
    for path in sorted(glob.glob(base + "*")):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
        if data:
            expect(data.endswith(b"\n"), f"{path} ends inside a line")
        lines += data.splitlines()
    return lines


def flood(n):
    p = ns.popen(["smtp-source", "-s", "20", "-m", str(n), "-M", "flood.test.example",
                  "-f", "a@test.example", "-t", "b@test.example", "127.0.0.1:2525"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=120)
    expect_eq(p.returncode, 0, f"smtp-source: {err[-200:]}")
    return p.pid


def settled_lines(base, timeout=10):
    """journal_lines once two readings agree: a reader that lists the files while one
    rotates (PATH.1 beside its new .gz, or renamed between listing and reading) sees
    some lines twice, however exact the journal is."""
    deadline = time.time() + timeout
    prev = None
    while True:
        try:
            cur = journal_lines(base)
        except FileNotFoundError:  # PATH.1 went once its .gz was complete
            cur = None
        if (cur is not None and cur == prev) or time.time() > deadline:
            return cur if cur is not None else journal_lines(base)
        prev = cur
        time.sleep(0.5)


def wait_sessions(pid, n, timeout=30):
    def count(lines):
        return sum(get(ev, "event.action") == "smtp_session" and get(ev, "process.pid") == pid
                   for ev in map(json.loads, lines))

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if count(journal_lines(agent.events)) >= n:
                break
        except FileNotFoundError:  # a rotation renamed it between listing and opening
            pass
        time.sleep(0.3)
    return count(settled_lines(agent.events))


def test_rotation_under_flood_loses_nothing():
    pid = flood(SESSIONS)
    got = wait_sessions(pid, SESSIONS)
    expect_eq(got, SESSIONS, "sessions reported across all files")
    rotated = glob.glob(agent.events + ".*.gz")
    expect(len(rotated) >= 3, f"several rotations happened: {sorted(rotated)}")
    events = [json.loads(l) for l in settled_lines(agent.events)]
    seqs = sorted(get(e, "event.sequence") for e in events)
    expect_eq(seqs, list(range(1, len(seqs) + 1)), "every sequence number exactly once")
    st = agent.status()[1]
    expect(st["counters"]["output_rotations"] >= 3, "status counts rotations")
    expect_eq(st["losses"]["write_errors"], 0, "no write errors")
    expect_eq(st["losses"]["ring_full"], 0, "no ring losses")


def test_sighup_reopens_for_logrotate():
    moved = agent.events + ".moved-by-logrotate"
    os.rename(agent.events, moved)
    before = agent.status()[1]["counters"]["output_reopens"]
    agent.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while agent.status()[1]["counters"]["output_reopens"] == before:
        expect(time.time() < deadline, "no reopen after SIGHUP")
        time.sleep(0.05)
    pid = flood(20)
    expect_eq(wait_sessions(pid, 20), 20, "sessions after the reopen")
    expect(os.path.exists(agent.events), "a new file at the configured path")
    with open(moved) as f:
        old = [json.loads(l) for l in f]
    expect(not any(get(e, "process.pid") == pid for e in old),
           "nothing written to the moved file after the reopen")
    events = [json.loads(l) for l in settled_lines(agent.events)]
    seqs = sorted(get(e, "event.sequence") for e in events)
    expect_eq(seqs, list(range(1, len(seqs) + 1)), "still gap-free and unique")


def test_hunt_finds_a_session_in_a_gz_rotation():
    if not os.path.exists(AGENT) or subprocess.run([AGENT, "hunt", "--help"],
                                                  capture_output=True).returncode != 0:
        raise Skip("hunt is not built")
    target = None
    for path in sorted(glob.glob(agent.events + ".*.gz")):
        with gzip.open(path, "rb") as f:
            for raw in f:
                ev = json.loads(raw)
                if get(ev, "event.action") == "smtp_session":
                    target = (path, raw.rstrip(b"\n"), ev)
                    break
        if target:
            break
    expect(target is not None, "a session inside a .gz rotation")
    path, raw, ev = target
    r = subprocess.run([AGENT, "hunt", "--helo", get(ev, "smtp.helo"), "--at",
                        get(ev, "@timestamp"), "--window", "5s", "--pid",
                        str(get(ev, "process.pid"))] + sorted(glob.glob(agent.events + "*")),
                       capture_output=True, timeout=30)
    expect_eq(r.returncode, 0, f"hunt exit ({r.stderr.decode()[-200:]})")
    expect(raw in r.stdout.splitlines(), "the exact line from the .gz is printed")


def main():
    global agent, ns
    try:
        need_root()
        if not shutil.which("smtp-source"):
            raise Skip("postfix's smtp-source is not installed")
    except Skip as e:
        for c in CASES:
            print(f"SKIP {c.__name__}: {e}")
        return 0
    with Netns("swt-journal") as n, SmtpSink(n, "127.0.0.1:2525", 1000), \
            Agent(["--rotate-size", "64K", "--rotate-keep", "100"]) as a:
        ns, agent = n, a
        rc = run_cases(CASES)
        expect_eq(a.stop(), 0, "agent exit code")
    return rc


CASES = [test_rotation_under_flood_loses_nothing, test_sighup_reopens_for_logrotate,
         test_hunt_finds_a_session_in_a_gz_rotation]

if __name__ == "__main__":
    sys.exit(main())
