# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The Debian package as an operator runs it: installed with dpkg on a Debian 12 system
whose PID 1 is systemd, the agent started by its unit with every sandboxing directive
of scripts/deb/smtpwatch.service, then reloaded, upgraded, stopped and removed.

Runs only inside the VM that tests/kernels/test_unit_systemd_6_1.sh boots (tests/run.sh
group "systemd"): elsewhere it would install the package on the machine it runs on.
SMTP traffic goes to smtp-sink on 127.0.0.1 only; the VM has no network device.
"""
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import (PY, Agent, check_schema, expect, expect_eq, get, run_cases,  # noqa: E402
                     session_of)

SW = "/usr/sbin/smtpwatch"
EVENTS = "/var/log/smtpwatch/events.json"
SOCK = "/run/smtpwatch/smtpwatch.sock"
PIN = "/sys/fs/bpf/smtpwatch"
CLIENT = os.path.join(ROOT, "tests", "integration", "smtp_client.py")


class Service(Agent):
    """The agent systemd runs: its events file and control socket are the package's."""

    def __init__(self):
        self.events, self.sock, self.proc, self.rc = EVENTS, SOCK, None, None

    def status(self):
        r = subprocess.run([SW, "status", "--socket", SOCK], capture_output=True, text=True,
                           timeout=10)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)


svc = Service()


def run(*argv, timeout=120):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def prop(name):
    return run("systemctl", "show", "-p", name, "--value", "smtpwatch.service").stdout.strip()


def journal():
    return run("journalctl", "-u", "smtpwatch.service", "--no-pager", "-o", "cat").stdout


def wait_running(old_pid=None, timeout=60):
    """Until systemd has the READY=1 of a main process (a new one, if old_pid)."""
    deadline = time.time() + timeout
    while True:
        pid = prop("MainPID")
        if prop("ActiveState") == "active" and prop("SubState") == "running" and \
                pid not in ("", "0", old_pid):
            return pid
        expect(time.time() < deadline,
               f"smtpwatch.service not running within {timeout} s: {prop('ActiveState')}/"
               f"{prop('SubState')}, result {prop('Result')}; journal: {journal()[-600:]!r}")
        time.sleep(0.2)


def mount_opts(path, pid=None):
    """The options of the mount at path, here or in a process's mount namespace."""
    pre = ["nsenter", "-t", pid, "-m"] if pid else []
    lines = run(*pre, "findmnt", "-n", "-o", "OPTIONS", "-T", path).stdout.strip().splitlines()
    return lines[-1] if lines else ""


def bpffs(pid=None):
    return mount_opts("/sys/fs/bpf", pid)


def deb():
    debs = sorted(glob.glob(os.path.join(ROOT, "build", "smtpwatch_*.deb")), key=os.path.getmtime)
    expect(debs, "no build/smtpwatch_*.deb (make deb on the host)")
    return debs[-1]


def dpkg(*args):
    r = run("dpkg", *args)
    expect_eq(r.returncode, 0, f"dpkg {' '.join(args)}: {(r.stdout + r.stderr)[-400:]}")


def client(helo, user=None):
    argv = [PY, CLIENT, "smtplib", "127.0.0.1", "2525", helo]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    expect_eq(p.returncode, 0, f"client {helo}: {p.stderr[-300:]}")
    return json.loads(p.stdout.splitlines()[0])["pid"]


def test_installed_and_started_by_systemd():
    dpkg("-i", deb())
    # postinst registers the unit; starting it is the operator's decision.
    expect_eq(run("systemctl", "is-enabled", "smtpwatch.service").stdout.strip(), "disabled",
              "enabled after install")
    r = run("systemctl", "enable", "--now", "smtpwatch.service")
    expect_eq(r.returncode, 0, f"systemctl enable --now: {r.stderr[-300:]}")
    wait_running()
    rc, st = svc.status()
    expect_eq(rc, 0, "smtpwatch status on the package's socket")
    expect_eq(st["agent"]["mode"], "monitor", "mode of the shipped configuration")
    expect(st["persist"]["pinned"] and "error" not in st["persist"],
           f"pinned under the sandbox: {st['persist']}; /sys/fs/bpf here: {bpffs()!r}, "
           f"in the unit: {bpffs(prop('MainPID'))!r}")
    expect(os.path.isdir(PIN), f"{PIN} exists (the unit runs --pin)")
    # The rest of the kernel's tunables stay out of reach.
    pid = prop("MainPID")
    for path in ("/sys", "/proc/sys", "/sys/fs/cgroup"):
        opts = mount_opts(path, pid)
        expect(opts.startswith("ro,"), f"{path} in the unit: {opts!r}, not read-only")
    expect("watching:" in journal(), "the start line is in the journal")
    expect_eq(prop("NRestarts"), "0", "restarts")


def test_sessions_attributed_inside_the_sandbox():
    for helo, user, name in (("unit.test.example", None, "root"),
                             ("nobody.test.example", "nobody", "nobody")):
        pid = client(helo, user)
        ev = svc.wait_for(session_of(pid), timeout=15, what=f"session of {helo}")
        expect_eq(get(ev, "smtp.helo"), helo, "smtp.helo")
        expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
        expect_eq(get(ev, "process.args")[1:3], [CLIENT, "smtplib"], "process.args")
        expect_eq(get(ev, "user.name"), name, "user.name")
    st = os.stat(EVENTS)
    expect_eq(oct(st.st_mode & 0o777), oct(0o640), "events file mode (UMask=0027)")


def test_reload_and_watchdog():
    before = svc.status()[1]["policy"]["reloads"]
    r = run("systemctl", "reload", "smtpwatch.service")
    expect_eq(r.returncode, 0, f"systemctl reload: {r.stderr[-300:]}")
    deadline = time.time() + 10
    while svc.status()[1]["policy"]["reloads"] == before:
        expect(time.time() < deadline, "SIGHUP from ExecReload did not reload")
        time.sleep(0.2)
    # WatchdogSec=30s: systemd notes each WATCHDOG=1 the agent sends.
    first = prop("WatchdogTimestampMonotonic")
    deadline = time.time() + 25
    while prop("WatchdogTimestampMonotonic") == first:
        expect(time.time() < deadline, f"no watchdog ping within 25 s (last {first})")
        time.sleep(0.5)
    expect_eq(prop("NRestarts"), "0", "restarts")


def test_upgrade_restarts_and_loses_nothing():
    last = svc.read_events()[-1]
    old = prop("MainPID")
    dpkg("-i", deb())  # the same version again: dpkg runs the upgrade path
    wait_running(old)
    res = svc.wait_for(lambda e: get(e, "event.action") == "agent_resumed", timeout=15,
                       what="agent_resumed after the upgrade")
    expect_eq(get(res, "event.sequence"), get(last, "event.sequence") + 1,
              "the sequence goes on across the restart")
    ps = svc.status()[1]["persist"]
    expect(ps["resumed"] and ps["previous_clean"], f"resumed from a clean stop: {ps}")
    pid = client("after.test.example")
    svc.wait_for(session_of(pid), timeout=15, what="session after the upgrade")
    expect_eq(check_schema(svc, "schema_and_sequence_across_the_upgrade"), 0,
              "schema and sequence")


def test_stop_keeps_the_pins_and_remove_clears_them():
    r = run("systemctl", "stop", "smtpwatch.service")
    expect_eq(r.returncode, 0, f"systemctl stop: {r.stderr[-300:]}")
    expect_eq(prop("ActiveState"), "inactive", "state after stop")
    expect_eq(prop("ExecMainStatus"), "0", "the agent's exit status")
    expect(os.path.isdir(PIN), "a stopped agent's hooks stay pinned (the next start resumes)")
    dpkg("-r", "smtpwatch")
    expect(not os.path.exists(PIN), f"{PIN} is gone after dpkg -r")
    progs = run("bpftool", "-j", "prog", "show").stdout
    names = [p.get("name", "") for p in json.loads(progs or "[]")]
    expect(not [n for n in names if n.startswith("sw_")],
           f"no smtpwatch program is left in the kernel: {[n for n in names if n.startswith('sw_')]}")


CASES = [test_installed_and_started_by_systemd, test_sessions_attributed_inside_the_sandbox,
         test_reload_and_watchdog, test_upgrade_restarts_and_loses_nothing,
         test_stop_keeps_the_pins_and_remove_clears_them]


def main():
    if os.getpid() == 1 or not os.path.isdir("/run/systemd/system") or \
            not os.path.exists("/etc/smtpwatch-vm-test"):
        for c in CASES:
            print(f"SKIP {c.__name__}: runs only in the VM that "
                  "tests/kernels/test_unit_systemd_6_1.sh boots", flush=True)
        return 0
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "127.0.0.1:2525", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not run("ss", "-Hltn", "sport = :2525").stdout.strip():
            expect(time.time() < deadline and sink.poll() is None, "smtp-sink does not listen")
            time.sleep(0.1)
        return run_cases(CASES)
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    sys.exit(main())
