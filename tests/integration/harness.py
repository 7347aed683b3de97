# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Integration test harness: network namespaces, a real agent, events as JSON.

Every case prints "PASS name", "FAIL name: why" or "SKIP name: why". Traffic
goes only to loopback or to the test's own namespaces; every wait is bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
# SMTPWATCH_BIN: the ASan/UBSan build for the second pass of make test.
AGENT = os.environ.get("SMTPWATCH_BIN") or os.path.join(ROOT, "build", "smtpwatch")
PEER = os.path.join(ROOT, "build", "tests", "smtp_peer")
PY = "/usr/bin/python3"  # Debian's, which has aiosmtpd


def sh(cmd, check=True, **kw):
    """Run a shell command, return its stdout."""
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class Skip(Exception):
    pass


def cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    raise Skip("cgroup v2 is not mounted")


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


class Netns:
    """A network namespace with lo up; removed on exit."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        sh(f"ip netns del {self.name}", check=False)
        sh(f"ip netns add {self.name}")
        sh(f"ip -n {self.name} link set lo up")
        return self

    def __exit__(self, *a):
        sh(f"ip netns pids {self.name} | xargs -r kill -9", check=False)
        sh(f"ip netns del {self.name}", check=False)

    def cmd(self, c):
        return f"ip netns exec {self.name} {c}"

    def popen(self, args, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name] + args, **kw)


class Agent:
    """build/smtpwatch run, with its events file and control socket in a temp dir."""

    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="smtpwatch-test-")
        self.events = os.path.join(self.dir, "events.json")
        self.sock = os.path.join(self.dir, "sw.sock")
        self.stderr = os.path.join(self.dir, "agent.err")
        self.extra = list(extra)
        self.proc = None
        self.rc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [AGENT, "run", "--output", self.events, "--socket", self.sock] + self.extra,
            stdout=subprocess.DEVNULL, stderr=open(self.stderr, "w"))
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.err()}")
            if subprocess.run([AGENT, "status", "--socket", self.sock],
                              capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("agent did not report ready within 15 s")

    def err(self):
        with open(self.stderr) as f:
            return f.read()[-2000:]

    def stop(self):
        if self.proc and self.rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.rc = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.rc = self.proc.wait()
        return self.rc

    def __exit__(self, *a):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def status(self):
        r = subprocess.run([AGENT, "status", "--socket", self.sock], capture_output=True,
                           text=True)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)

    def read_events(self):
        out = []
        try:
            with open(self.events, "rb") as f:
                lines = f.read().split(b"\n")
            # The last piece is empty, or a line the agent is writing right now (a
            # reader of an appended file can catch a write() half done): skip it,
            # as a tailer would. Every complete line must parse.
            for raw in lines[:-1]:
                out.append(json.loads(raw))
        except FileNotFoundError:
            pass
        return out

    def wait_for(self, pred, timeout=6.0, what="event"):
        """First event satisfying pred, waiting up to timeout seconds."""
        deadline = time.time() + timeout
        while True:
            for ev in self.read_events():
                if pred(ev):
                    return ev
            if time.time() > deadline:
                raise AssertionError(f"no {what} within {timeout} s")
            time.sleep(0.1)


def get(ev, dotted, default=None):
    cur = ev
    for k in dotted.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return default
        cur = cur[k]
    return cur


def session_of(pid):
    return lambda ev: get(ev, "event.action") == "smtp_session" and get(ev, "process.pid") == pid


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


class SmtpSink:
    """Postfix's smtp-sink, a real SMTP server, in a namespace."""

    def __init__(self, ns, addr, count=50):
        self.ns, self.addr, self.count = ns, addr, count

    def __enter__(self):
        self.p = self.ns.popen(["smtp-sink", "-u", "nobody", "-c", self.addr, str(self.count)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self.addr.rpartition(":")[2]
        deadline = time.time() + 5
        while time.time() < deadline:
            # ss, not a probe connection: a probe would itself be an SMTP session.
            if sh(self.ns.cmd(f"ss -Hltn sport = :{port}"), check=False).strip():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"smtp-sink did not listen on {self.addr}")

    def __exit__(self, *a):
        self.p.kill()
        self.p.wait()


def runnable(cases):
    """False, after a SKIP line for every case, when the file cannot run here (not root)."""
    try:
        need_root()
    except Skip as e:
        for c in cases:
            print(f"SKIP {c.__name__}: {e}", flush=True)
        return False
    return True


def run_cases(cases):
    """Run each case; print its verdict. Returns the exit code for the file."""
    failed = 0
    for fn in cases:
        name = fn.__name__
        try:
            fn()
            print(f"PASS {name}", flush=True)
        except Skip as e:
            print(f"SKIP {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure as one line
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            traceback.print_exc(file=sys.stdout)
    return 1 if failed else 0


def check_schema(agent, name):
    """Every line the agent wrote validates against docs/event.schema.json."""
    try:
        import jsonschema
    except ImportError:
        print(f"SKIP {name}: python3-jsonschema is not installed", flush=True)
        return 0
    with open(os.path.join(ROOT, "docs", "event.schema.json")) as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    events = agent.read_events()
    bad = []
    for ev in events:
        for err in validator.iter_errors(ev):
            bad.append(f"{get(ev, 'event.action')} seq {get(ev, 'event.sequence')}: "
                       f"{'.'.join(map(str, err.path))}: {err.message[:160]}")
    seqs = [get(ev, "event.sequence") for ev in events]
    if seqs != list(range(1, len(seqs) + 1)):
        bad.append(f"event.sequence is not gap-free from 1: {seqs[:20]}")
    if not events:
        bad.append("no events to validate")
    if bad:
        print(f"FAIL {name}: {len(bad)} problems; first: {bad[0]}", flush=True)
        for b in bad[:10]:
            print("   ", b)
        return 1
    print(f"PASS {name}", flush=True)
    return 0
