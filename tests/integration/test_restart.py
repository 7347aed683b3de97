# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Restarts with --pin: nothing in flight or queued is lost or reported twice, and
event.sequence goes on without a gap across agents; after kill -9 the loss is
counted; `smtpwatch cleanup` removes what stays in the kernel.

Every case pins in a directory of its own under /sys/fs/bpf and talks to smtp-sink
on the loopback of a namespace of its own.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (AGENT, PY, Netns, Skip, SmtpSink, check_schema, expect, expect_eq, get,
                     need_root, run_cases, session_of, sh)

NS = "swt-restart"
PORT = 2687
ns = None

# EHLO, then waits for a line on stdin before MAIL FROM and QUIT: a session that
# is open while the agent restarts.
SLOW_CLIENT = r"""
import socket, sys, json, os
s = socket.create_connection(("127.0.0.1", %d), timeout=10)
def reply():
    buf = b""
    while True:
        c = s.recv(4096)
        if not c:
            return buf
        buf += c
        ls = [l for l in buf.split(b"\r\n")[:-1] if len(l) >= 4]
        if ls and ls[-1][3:4] == b" ":
            return buf
reply()
s.sendall(sys.argv[1].encode() + b"\r\n")
reply()
os.write(1, (json.dumps({"pid": os.getpid()}) + "\n").encode())
sys.stdin.readline()
s.sendall(b"MAIL FROM:<after-restart@test.invalid>\r\n")
reply()
s.sendall(b"QUIT\r\n")
reply()
s.close()
""" % PORT


# N SMTP sessions with a desktop's HELO, a line on stdout after them, then, after a
# line on stdin, M more: one process whose evidence spans an agent's restart.
BOT = r"""
import smtplib, sys, json, os
def sessions(n):
    for _ in range(n):
        c = smtplib.SMTP("127.0.0.1", %d, local_hostname="DESKTOP-4F2K9QX", timeout=5)
        c.ehlo("DESKTOP-4F2K9QX")
        c.mail("promo@bulk.test.invalid")
        c.quit()
sessions(int(sys.argv[1]))
os.write(1, (json.dumps({"pid": os.getpid()}) + "\n").encode())
sys.stdin.readline()
sessions(int(sys.argv[2]))
""" % PORT


class PinnedAgent:
    """An agent with --pin, its pin directory, output file and socket kept across restarts."""

    def __init__(self, tmp, pin_dir, extra=()):
        self.tmp, self.pin_dir, self.extra = tmp, pin_dir, list(extra)
        self.events = os.path.join(tmp, "events.json")
        self.sock = os.path.join(tmp, "sw.sock")
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        self.err = os.path.join(self.tmp, f"agent{self.n}.err")
        self.proc = subprocess.Popen(
            [AGENT, "run", "--output", self.events, "--socket", self.sock, "--ports", str(PORT),
             "--pin", "--pin-dir", self.pin_dir] + self.extra,
            stdout=subprocess.DEVNULL, stderr=open(self.err, "w"))
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.stderr()}")
            if self.status()[0] == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("agent did not report ready within 20 s")

    def stderr(self):
        with open(self.err) as f:
            return f.read()[-1500:]

    def status(self):
        r = subprocess.run([AGENT, "status", "--socket", self.sock], capture_output=True, text=True)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            return rc
        return self.proc.returncode if self.proc else None

    def read_events(self):
        try:
            with open(self.events, "rb") as f:
                return [json.loads(l) for l in f.read().split(b"\n")[:-1]]
        except FileNotFoundError:
            return []

    def wait_for(self, pred, timeout=8.0, what="event"):
        deadline = time.time() + timeout
        while True:
            for ev in self.read_events():
                if pred(ev):
                    return ev
            expect(time.time() < deadline, f"no {what} within {timeout} s")
            time.sleep(0.1)


class Case:
    """A temp dir, a pin dir, and whatever was pinned removed at the end."""

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpwatch-restart-")
        self.pin_dir = f"/sys/fs/bpf/smtpwatch-test-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.agent = PinnedAgent(self.tmp, self.pin_dir)
        return self

    def __exit__(self, *a):
        self.agent.stop(signal.SIGKILL)
        subprocess.run([AGENT, "cleanup", "--pin-dir", self.pin_dir, "--socket", self.agent.sock],
                       capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def slow_client(helo):
    p = ns.popen([PY, "-c", SLOW_CLIENT, helo], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    line, deadline = b"", time.time() + 15
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.time()))
        chunk = os.read(p.stdout.fileno(), 256) if ready else b""
        if not chunk:
            p.kill()
            raise AssertionError(f"slow client did not get through EHLO: {p.communicate()[1][-300:]!r}")
        line += chunk
    expect_eq(json.loads(line)["pid"], p.pid, "slow client pid")
    return p


def finish(p):
    p.stdin.write(b"go\n")
    p.stdin.flush()
    out, err = p.communicate(timeout=15)
    expect_eq(p.returncode, 0, f"slow client exit ({err.strip()[-200:]})")


def swaks(helo):
    p = ns.popen(["swaks", "--server", f"127.0.0.1:{PORT}", "--helo", helo, "--from", "a@test.invalid",
                  "--to", "b@test.invalid"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    expect_eq(p.wait(timeout=20), 0, "swaks exit code")
    return p.pid


def sessions(agent, pid):
    return [e for e in agent.read_events() if session_of(pid)(e)]


def pinned(pin_dir):
    return sorted(os.listdir(pin_dir)) if os.path.isdir(pin_dir) else []


def test_sigterm_restart_loses_nothing():
    with Case() as c:
        a = c.agent.start()
        _, st = a.status()
        expect_eq(st["persist"]["pinned"], True, "status persist.pinned")
        before = swaks("before.restart.test")
        a.wait_for(session_of(before), what="session before the restart")
        open_one = slow_client("EHLO in-flight.restart.test")
        time.sleep(0.5)  # its EHLO reached the agent
        expect_eq(a.stop(), 0, "agent exit code on SIGTERM")
        names = pinned(c.pin_dir)
        for want in ("events", "flows", "meta", "link_connect4", "link_sched_process_exec"):
            expect(want in names, f"{want} pinned after a --pin stop: {names}")
        expect(os.path.exists(os.path.join(c.tmp, "sessions.state")), "sessions.state written")
        # With no agent running: the open session goes on, and a whole new one happens.
        finish(open_one)
        during = swaks("while.down.restart.test")
        a.start()
        ev = a.wait_for(session_of(open_one.pid), what="the in-flight session after the restart")
        expect_eq(get(ev, "smtp.helo"), "in-flight.restart.test", "HELO from before the restart")
        expect_eq(get(ev, "smtp.mail_from"), "<after-restart@test.invalid>", "MAIL FROM from after it")
        expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
        expect(get(ev, "process.entity_id") and get(ev, "process.parent.entity_id"),
               f"entity ids kept across the restart: {get(ev, 'process')}")
        ev = a.wait_for(session_of(during), what="the session made while no agent ran")
        expect_eq(get(ev, "smtp.helo"), "while.down.restart.test", "queued session's HELO")
        for pid in (before, open_one.pid, during):
            expect_eq(len(sessions(a, pid)), 1, f"lines for pid {pid}")
        res = a.wait_for(lambda e: get(e, "event.action") == "agent_resumed", what="agent_resumed")
        expect_eq(get(res, "smtpwatch.resume.clean"), True, "resume.clean")
        expect(get(res, "smtpwatch.resume.sessions_restored", 0) >= 1, "sessions restored")
        expect_eq(get(res, "smtpwatch.resume.sessions_lost"), 0, "sessions lost")
        _, st = a.status()
        expect_eq(st["persist"]["resumed"], True, "status persist.resumed")
        a.stop()
        expect_eq(check_schema(a, "sigterm_restart_schema_and_sequence"), 0, "schema and sequence")


def test_evidence_windows_span_a_restart():
    # --rate 3: the third session in a minute trips RATE; with the HELO's own rules
    # (60) that scores 80 and alerts, once per window. Three sessions before the
    # restart, three after: the windows carried over, the first one after already
    # trips RATE and none alerts again; started afresh, the sixth would alert twice.
    with Case() as c:
        c.agent.extra = ["--rate", "3"]
        a = c.agent.start()
        bot = ns.popen([PY, "-c", BOT, "3", "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        line = bot.stdout.readline()
        if not line:
            raise AssertionError(f"bot did not finish its first sessions: "
                                 f"{bot.communicate(timeout=10)[1][-300:]!r}")
        pid = json.loads(line)["pid"]
        deadline = time.time() + 10
        while len(sessions(a, pid)) < 3:
            expect(time.time() < deadline, "the first three sessions were not reported")
            time.sleep(0.1)
        alert = a.wait_for(lambda e: get(e, "event.action") == "smtp_alert"
                           and get(e, "process.pid") == pid, what="the bot's alert")
        expect_eq(get(alert, "smtpwatch.alert.sessions"), 3, "sessions at the alert")
        expect_eq(a.stop(), 0, "agent exit code on SIGTERM")
        a.start()
        res = a.wait_for(lambda e: get(e, "event.action") == "agent_resumed", what="agent_resumed")
        expect(get(res, "smtpwatch.resume.processes_restored", 0) >= 1,
               f"processes restored: {get(res, 'smtpwatch.resume')}")
        bot.stdin.write(b"go\n")
        bot.stdin.flush()
        _, err = bot.communicate(timeout=30)
        expect_eq(bot.returncode, 0, f"bot exit ({err.strip()[-200:]})")
        deadline = time.time() + 10
        while len(sessions(a, pid)) < 6:
            expect(time.time() < deadline, f"{len(sessions(a, pid))} of 6 sessions reported")
            time.sleep(0.1)
        after = sorted(sessions(a, pid), key=lambda e: get(e, "event.sequence"))[3:]
        for ev in after:
            expect("RATE" in get(ev, "rule.name", []),
                   f"RATE on session {get(ev, 'event.sequence')} after the restart: "
                   f"{get(ev, 'rule.name')}")
        time.sleep(0.5)
        alerts = [e for e in a.read_events()
                  if get(e, "event.action") == "smtp_alert" and get(e, "process.pid") == pid]
        expect_eq(len(alerts), 1, "alerts for the bot across the restart")
        a.stop()


def test_kill9_restart_counts_the_loss():
    with Case() as c:
        a = c.agent.start()
        first = swaks("first.kill.test")
        a.wait_for(session_of(first), what="session before the crash")
        open_one = slow_client("EHLO open-at-crash.kill.test")
        time.sleep(0.5)  # a tick later, the meta map counts it as open
        expect_eq(a.stop(signal.SIGKILL), -9, "agent killed")
        finish(open_one)
        during = swaks("while.dead.kill.test")
        a.start()
        ev = a.wait_for(session_of(during), what="the session queued while no agent ran")
        expect_eq(get(ev, "smtp.helo"), "while.dead.kill.test", "queued session's HELO")
        res = a.wait_for(lambda e: get(e, "event.action") == "agent_resumed", what="agent_resumed")
        expect_eq(get(res, "smtpwatch.resume.clean"), False, "resume.clean after kill -9")
        expect(get(res, "smtpwatch.resume.sessions_lost", 0) >= 1,
               f"sessions_lost counts the open one: {get(res, 'smtpwatch.resume')}")
        expect_eq(len(sessions(a, first)), 1, "the session before the crash is not repeated")
        a.stop()
        expect_eq(check_schema(a, "kill9_restart_schema_and_sequence"), 0, "schema and sequence")


def test_pinned_enforcement_stays_until_cleanup():
    """The documented trade: with --pin the policy outlives the agent; cleanup ends it."""
    with Case() as c:
        cfg = os.path.join(c.tmp, "enforce.json")
        with open(cfg, "w") as f:
            json.dump({"mode": "enforce", "enforce_ports": [PORT], "allow": {"uids": [4242], "destinations": ["192.0.2.0/24"]}}, f)
        c.agent.extra = ["--config", cfg]
        a = c.agent.start()
        a.stop()
        r = subprocess.run(ns.cmd(f"{PY} -c 'import socket; socket.create_connection((\"127.0.0.1\", {PORT}), timeout=5)'"),
                           shell=True, capture_output=True, text=True)
        expect(r.returncode != 0 and "Operation not permitted" in r.stderr,
               f"connect refused with no agent running (pinned policy): rc {r.returncode} {r.stderr[-150:]!r}")
        r = subprocess.run([AGENT, "cleanup", "--pin-dir", c.pin_dir, "--socket", a.sock],
                           capture_output=True, text=True)
        expect_eq(r.returncode, 0, f"cleanup exit code ({r.stderr.strip()})")
        expect("removed" in r.stdout, f"cleanup says what it removed: {r.stdout!r}")
        expect(not os.path.exists(c.pin_dir), "pin directory gone after cleanup")
        r = subprocess.run(ns.cmd(f"{PY} -c 'import socket; socket.create_connection((\"127.0.0.1\", {PORT}), timeout=5).close()'"),
                           shell=True, capture_output=True, text=True)
        expect_eq(r.returncode, 0, f"connect allowed after cleanup ({r.stderr.strip()[-150:]})")


def test_cleanup_refused_while_running_and_unpinned_stop_leaves_nothing():
    with Case() as c:
        a = c.agent.start()
        r = subprocess.run([AGENT, "cleanup", "--pin-dir", c.pin_dir], capture_output=True, text=True)
        expect_eq(r.returncode, 69, "cleanup while the agent runs")
        expect("stop it first" in r.stderr, f"one clear sentence: {r.stderr!r}")
        a.stop()
        # An agent without --pin adopts what was pinned, and removes it when it stops.
        a.extra = []
        cmd = [AGENT, "run", "--output", a.events, "--socket", a.sock, "--ports", str(PORT),
               "--pin-dir", c.pin_dir]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while a.status()[0] != 0:
            expect(p.poll() is None and time.time() < deadline, "unpinned agent did not start")
            time.sleep(0.1)
        _, st = a.status()
        expect_eq(st["persist"]["resumed"], True, "unpinned agent resumed the pinned state")
        expect_eq(st["persist"]["keep"], False, "and will not keep it")
        p.send_signal(signal.SIGTERM)
        expect_eq(p.wait(timeout=15), 0, "exit code")
        expect(not os.path.exists(c.pin_dir), f"nothing left pinned: {pinned(c.pin_dir)}")


def test_incompatible_build_starts_afresh():
    """Pinned state from a build with another record layout is not trusted."""
    with Case() as c:
        a = c.agent.start()
        a.stop()
        meta = os.path.join(c.pin_dir, "meta")
        dump = json.loads(sh(f"bpftool -j map dump pinned {meta}"))
        value = [int(b, 16) for b in dump[0]["value"]]
        value[8] ^= 0xff  # struct sw_meta.abi: another build's fingerprint
        sh(f"bpftool map update pinned {meta} key hex 00 00 00 00 value hex "
           + " ".join(f"{b:02x}" for b in value))
        a.start()
        expect("incompatible build" in a.stderr(), f"one sentence on stderr: {a.stderr()!r}")
        _, st = a.status()
        expect_eq(st["persist"]["pinned"], True, "pinned afresh")
        expect_eq(st["persist"]["resumed"], False, "nothing resumed")
        pid = swaks("after.upgrade.test")
        a.wait_for(session_of(pid), what="a session after starting afresh")
        expect(not any(get(e, "event.action") == "agent_resumed" for e in a.read_events()),
               "no agent_resumed for a fresh start")


def test_no_bpffs_runs_unpinned():
    with Case() as c:
        c.agent.pin_dir = "/tmp/not-a-bpf-fs-%d/smtpwatch" % os.getpid()
        a = c.agent.start()
        _, st = a.status()
        expect_eq(st["persist"]["pinned"], False, "persist.pinned")
        expect("not a mounted BPF filesystem" in st["persist"].get("error", ""),
               f"status says why: {st['persist']}")
        expect("running without pinning" in a.stderr(), f"stderr says so: {a.stderr()!r}")


def main():
    global ns
    try:
        need_root()
        if not os.path.isdir("/sys/fs/bpf"):
            raise Skip("/sys/fs/bpf does not exist (no sysfs?)")
        # The agent mounts the BPF filesystem there when --pin needs it: do it first,
        # so that every case pins in a directory of its own beside the others.
        if sh("stat -f -c %T /sys/fs/bpf", check=False).strip() != "bpf_fs":
            sh("mount -t bpf bpf /sys/fs/bpf")
        for t in ("swaks", "smtp-sink"):
            if not shutil.which(t):
                raise Skip(f"{t} is not installed")
    except Skip as e:
        for n in ("sigterm_restart_loses_nothing", "evidence_windows_span_a_restart",
                  "kill9_restart_counts_the_loss",
                  "pinned_enforcement_stays_until_cleanup",
                  "cleanup_refused_while_running_and_unpinned_stop_leaves_nothing",
                  "incompatible_build_starts_afresh", "no_bpffs_runs_unpinned"):
            print(f"SKIP {n}: {e}")
        return 0
    with Netns(NS) as n:
        ns = n
        with SmtpSink(ns, f"127.0.0.1:{PORT}", count=50):
            return run_cases([test_sigterm_restart_loses_nothing, test_evidence_windows_span_a_restart,
                              test_kill9_restart_counts_the_loss,
                              test_pinned_enforcement_stays_until_cleanup,
                              test_cleanup_refused_while_running_and_unpinned_stop_leaves_nothing,
                              test_incompatible_build_starts_afresh, test_no_bpffs_runs_unpinned])


if __name__ == "__main__":
    sys.exit(main())
