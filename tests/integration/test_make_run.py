# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The README's first command: `make run` starts the agent on its embedded defaults and
an SMTP session shows up on stdout as one JSON line; Ctrl-C ends it."""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import PY, ROOT, Netns, SmtpSink, expect, expect_eq, get, run_cases, runnable

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_client.py")
NS = "swt-mrun"


def reader(stream, q):
    for line in stream:
        q.put(line)
    q.put(None)


def test_make_run_prints_sessions_and_stops_on_ctrl_c():
    with Netns(NS) as ns, SmtpSink(ns, "127.0.0.1:2525"):
        p = subprocess.Popen(["make", "--no-print-directory", "-s", "run"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        out, err = queue.Queue(), queue.Queue()
        for stream, q in ((p.stdout, out), (p.stderr, err)):
            threading.Thread(target=reader, args=(stream, q), daemon=True).start()
        try:
            said = []
            deadline = time.time() + 120  # make may have to build first
            while not any("watching:" in l for l in said):
                expect(time.time() < deadline and p.poll() is None,
                       f"make run did not start the agent: {''.join(said)[-600:]!r}")
                try:
                    line = err.get(timeout=1)
                except queue.Empty:
                    continue
                expect(line is not None, f"make run ended: {''.join(said)[-600:]!r}")
                said.append(line)
            c = ns.popen([PY, CLIENT, "smtplib", "127.0.0.1", "2525", "make-run.test.example"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            cout, cerr = c.communicate(timeout=20)
            expect_eq(c.returncode, 0, f"client: {cerr[-300:]}")
            pid = json.loads(cout.splitlines()[0])["pid"]
            deadline = time.time() + 15
            while True:
                expect(time.time() < deadline, f"no smtp_session of pid {pid} on stdout")
                try:
                    line = out.get(timeout=1)
                except queue.Empty:
                    continue
                expect(line is not None, "stdout ended before the session")
                ev = json.loads(line)  # stdout carries events only, one JSON object a line
                if get(ev, "event.action") == "smtp_session" and get(ev, "process.pid") == pid:
                    break
            expect_eq(get(ev, "smtp.helo"), "make-run.test.example", "smtp.helo")
            expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
            # Ctrl-C reaches make and the agent (one process group, as in a terminal).
            os.killpg(p.pid, signal.SIGINT)
            p.wait(timeout=15)
            while (line := out.get(timeout=5)) is not None:
                json.loads(line)  # whatever else it wrote is whole lines
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


CASES = [test_make_run_prints_sessions_and_stops_on_ctrl_c]

def main():
    if not runnable(CASES):
        return 0
    if not shutil.which("clang"):
        # make run first installs what the build needs: not where there is no compiler
        # and no network (the 6.1 VM runs a tree built on the host).
        for c in CASES:
            print(f"SKIP {c.__name__}: clang is not installed and make run would install "
                  "the build dependencies", flush=True)
        return 0
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
