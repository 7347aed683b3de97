# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Policy: the configuration file, allowed mailers, enforce mode, reload, stop and crash.

Topology: netns swt-pcli 10.215.1.1 / fd00:215::1 --veth-- netns swt-pmx with the MX
10.215.1.25 / fd00:215::25 (smtp-sink) and a relay 10.215.1.26 (smtp-sink) on port 25.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (AGENT, PY, Agent, Netns, Skip, SmtpSink, cgroup2_root, check_schema, expect,
                     expect_eq, get, need_root, run_cases, session_of, sh)

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "smtp_client.py")
MX, MX6, RELAY = "10.215.1.25", "fd00:215::25", "10.215.1.26"
cli = mx = None
tmp = tempfile.mkdtemp(prefix="smtpwatch-policy-")
CG = None


def write_config(name, cfg):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def policy(mode, **allow):
    base = {"destinations": [RELAY + "/32"], "executables": ["/usr/sbin/smtp-source"]}
    base.update(allow)
    return {"mode": mode, "allow": base}


def client(host, helo, as_user=None, cmd=None):
    """smtplib client in the client namespace; returns (pid, rc, stderr)."""
    argv = cmd or [PY, CLIENT, "smtplib", host, "25", helo]
    if as_user:
        argv = ["setpriv", f"--reuid={as_user}", "--regid=nogroup", "--clear-groups"] + argv
    p = cli.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=20)
    return p.pid, p.returncode, err


def in_cgroup(cg, helo):
    """The smtplib client started inside cgroup directory cg; returns (pid, rc, stderr)."""
    sh_cmd = f'echo $$ > {cg}/cgroup.procs && exec ip netns exec swt-pcli "$@"'
    p = subprocess.Popen(["sh", "-c", sh_cmd, "sh", PY, CLIENT, "smtplib", MX, "25", helo],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=20)
    return p.pid, p.returncode, err


def denied_event(agent, pid):
    return agent.wait_for(lambda e: get(e, "event.action") == "connection_denied"
                          and get(e, "process.pid") == pid, what=f"connection_denied for {pid}")


def sighup(agent):
    before = agent.status()[1]["policy"]["reloads"]
    agent.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while agent.status()[1]["policy"]["reloads"] == before:
        expect(time.time() < deadline, "the agent did not reload")
        time.sleep(0.05)


def test_enforce_denies_unapproved_client():
    cfg = write_config("enforce.json", policy("enforce"))
    with Agent(["--config", cfg]) as a:
        for host, family in ((MX, "ipv4"), (MX6, "ipv6"), ("::ffff:" + MX, "ipv4")):
            pid, rc, err = client(host, "bot.test.example")
            expect(rc != 0 and "Operation not permitted" in err, f"{host}: EPERM, got rc {rc} {err[-120:]!r}")
            ev = denied_event(a, pid)
            expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
            expect_eq(get(ev, "smtpwatch.policy.decision"), "deny", "decision")
            expect_eq(get(ev, "rule.name"), ["POLICY_DEFAULT_DENY"], "rule.name")
            expect_eq(get(ev, "destination.port"), 25, "destination.port")
            expect_eq(get(ev, "network.type"), family, f"network.type for {host}")
            expect(not any(session_of(pid)(e) for e in a.read_events()), "no session for a refusal")
        rc, st = a.status()
        expect_eq(st["agent"]["mode"], "enforce", "status mode")
        expect_eq(st["policy"]["denied"], 3, "status denied counter")
        # An allowed mailer and a relay destination are untouched.
        p = cli.popen(["smtp-source", "-M", "relay.test.example", "-m", "1", MX + ":25"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=20)
        expect_eq(p.returncode, 0, f"smtp-source (allowed) exit: {err[-200:]}")
        ev = a.wait_for(session_of(p.pid), what="smtp-source session")
        expect_eq(get(ev, "smtpwatch.policy.matched"), "executable", "matched rule")
        pid, rc, err = client(RELAY, "anyone.test.example")
        expect_eq(rc, 0, f"client to the relay: {err[-200:]}")
        ev = a.wait_for(session_of(pid), what="relay session")
        expect_eq(get(ev, "smtpwatch.policy.matched"), "destination", "matched rule")
        expect_eq(a.stop(), 0, "exit code")
        check_schema_or_fail(a, "enforce")


def check_schema_or_fail(a, name):
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = check_schema(a, name)
    expect(rc == 0, buf.getvalue().strip()[:400])


def test_monitor_reports_would_deny_and_reload_flips():
    cfg = write_config("flip.json", policy("monitor"))
    with Agent(["--config", cfg]) as a:
        pid, rc, err = client(MX, "monitor.test.example")
        expect_eq(rc, 0, f"monitor mode lets it through: {err[-200:]}")
        ev = a.wait_for(session_of(pid), what="monitored session")
        expect_eq(get(ev, "smtpwatch.policy.decision"), "would_deny", "decision")
        expect_eq(get(ev, "smtpwatch.would_deny"), True, "would_deny")
        write_config("flip.json", policy("enforce"))
        sighup(a)
        pid, rc, err = client(MX, "after-reload.test.example")
        expect(rc != 0 and "Operation not permitted" in err, "enforced after the reload")
        denied_event(a, pid)
        # A broken file on reload keeps the running policy and says why.
        with open(cfg, "w") as f:
            f.write('{"mode": "enforce", "allow": {"uids": [0, "root"]}}')
        sighup(a)
        st = a.status()[1]
        expect("allow.uids[1]" in st["policy"].get("reload_error", ""),
               f"reload_error names the key: {st['policy']}")
        expect_eq(st["agent"]["mode"], "enforce", "mode kept")
        pid, rc, err = client(MX, "still.test.example")
        expect(rc != 0, "still enforced")
        expect(a.proc.poll() is None, "agent still running")
        expect("allow.uids[1]" in a.err(), "the refusal is said on stderr")
        expect_eq(a.stop(), 0, "exit code")
        check_schema_or_fail(a, "flip")


def test_bad_config_exits_78_naming_the_key():
    cases = {
        '{"mode": "block"}': "mode",
        '{"allow": {"destinations": ["10.0.0.0/33"]}}': "allow.destinations[0]",
        '{"allow": {"executables": ["smtp"]}}': "allow.executables[0]",
        '{"ports": [25, 70000]}': "ports[1]",
        '{"allow": {"hosts": []}}': "allow.hosts",
        '{"rules": {"weights": {"NOPE": 3}}}': "rules.weights.NOPE",
        '{"mode": "enforce",\n "allow": }': "line 2",
    }
    for text, key in cases.items():
        path = os.path.join(tmp, "bad.json")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([AGENT, "run", "--config", path, "--socket", os.path.join(tmp, "b.sock")],
                           capture_output=True, text=True, timeout=10)
        expect_eq(r.returncode, 78, f"exit code for {text!r}")
        expect(key in r.stderr and path in r.stderr, f"{key!r} and the file in {r.stderr!r}")
        expect_eq(len(r.stderr.strip().splitlines()), 1, f"one line: {r.stderr!r}")
    r = subprocess.run([AGENT, "run", "--config", os.path.join(tmp, "missing.json")],
                       capture_output=True, text=True, timeout=10)
    expect_eq(r.returncode, 78, "a missing explicit file")


def test_scripts_uids_and_cgroups():
    script = os.path.join(tmp, "mailer.py")
    with open(script, "w") as f:
        f.write(f"#!{PY}\nimport runpy, sys\nsys.argv = ['x', 'smtplib', '{MX}', '25', 'script.test.example']\n"
                f"runpy.run_path('{CLIENT}', run_name='__main__')\n")
    os.chmod(script, 0o755)
    cfg = write_config("who.json", policy("enforce", executables=[script], uids=[65534],
                                          cgroups=["/smtpwatch-test-policy"]))
    with Agent(["--config", cfg]) as a:
        pid, rc, err = client(MX, "-", cmd=[script])
        expect_eq(rc, 0, f"the allowed script by its path: {err[-200:]}")
        ev = a.wait_for(session_of(pid), what="script session")
        expect_eq(get(ev, "smtpwatch.policy.matched"), "script", "matched")
        pid, rc, err = client(MX, "-", cmd=[PY, script])
        expect(rc != 0, "the same code through the bare interpreter is not the script")
        pid, rc, err = client(MX, "nobody.test.example", as_user="nobody")
        expect_eq(rc, 0, f"allowed uid: {err[-200:]}")
        ev = a.wait_for(session_of(pid), what="uid session")
        expect_eq(get(ev, "smtpwatch.policy.matched"), "uid", "matched")
        inner = os.path.join(CG, "worker")
        os.makedirs(inner, exist_ok=True)
        pid, rc, err = in_cgroup(inner, "cgroup.test.example")
        expect_eq(rc, 0, f"allowed cgroup (a sub-cgroup of it): {err[-200:]}")
        ev = a.wait_for(session_of(pid), what="cgroup session")
        expect_eq(get(ev, "smtpwatch.policy.matched"), "cgroup", "matched")
        os.rmdir(inner)
        expect_eq(a.stop(), 0, "exit code")


def test_units_resolved_at_start_and_on_reload():
    # A unit's cgroup is found by its name wherever its slice is, and processes in
    # cgroups below it count too (a service's helpers, a template instance's workers).
    slice_ = os.path.join(CG, "swtest.slice")
    unit = os.path.join(slice_, "swtest-mailer.service")
    worker = os.path.join(unit, "worker")
    cfg = write_config("units.json", policy("enforce", units=["swtest-mailer.service"]))
    with Agent(["--config", cfg]) as a:
        st = a.status()[1]["policy"]
        expect("swtest-mailer.service has no cgroup" in st.get("warning", ""),
               f"a unit not running is named in status: {st.get('warning')!r}")
        os.makedirs(worker)
        try:
            pid, rc, err = in_cgroup(worker, "early.test.example")
            expect(rc != 0 and "Operation not permitted" in err,
                   f"before a reload the new unit is not known: rc {rc} {err[-120:]!r}")
            sighup(a)
            expect("warning" not in a.status()[1]["policy"], "the warning goes once the unit runs")
            for cg, helo in ((unit, "unit.test.example"), (worker, "worker.test.example")):
                pid, rc, err = in_cgroup(cg, helo)
                expect_eq(rc, 0, f"a process of the unit ({cg}): {err[-200:]}")
                ev = a.wait_for(session_of(pid), what=f"session from {cg}")
                expect_eq(get(ev, "smtpwatch.policy.matched"), "cgroup", "matched")
                expect_eq(get(ev, "smtp.helo"), helo, "smtp.helo")
            # A cgroup of another name beside it is not the unit.
            other = os.path.join(slice_, "swtest-other.service")
            os.makedirs(other)
            pid, rc, err = in_cgroup(other, "other.test.example")
            expect(rc != 0 and "Operation not permitted" in err,
                   f"another unit is refused: rc {rc} {err[-120:]!r}")
            denied_event(a, pid)
        finally:
            for d in (worker, unit, os.path.join(slice_, "swtest-other.service"), slice_):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        expect_eq(a.stop(), 0, "exit code")


def test_stop_and_crash_fail_open():
    cfg = write_config("crash.json", policy("enforce"))
    for how in (signal.SIGTERM, signal.SIGKILL):
        with Agent(["--config", cfg]) as a:
            pid, rc, err = client(MX, "before.test.example")
            expect(rc != 0, "denied while the agent runs")
            a.proc.send_signal(how)
            a.proc.wait(timeout=15)
            a.rc = a.proc.returncode
        # Enforcement lives in links owned by the agent: they go with it.
        deadline = time.time() + 5
        while True:
            pid, rc, err = client(MX, "after.test.example")
            if rc == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        expect_eq(rc, 0, f"after {signal.Signals(how).name}, mail flows again: {err[-200:]}")


def main():
    global cli, mx, CG
    try:
        need_root()
        CG = os.path.join(cgroup2_root(), "smtpwatch-test-policy")
    except Skip as e:
        for c in CASES:
            print(f"SKIP {c.__name__}: {e}")
        return 0
    with Netns("swt-pcli") as c, Netns("swt-pmx") as m:
        cli, mx = c, m
        sh("ip link add swt-pc0 netns swt-pcli type veth peer name swt-pm0 netns swt-pmx")
        sh(c.cmd("ip addr add 10.215.1.1/24 dev swt-pc0"))
        sh(c.cmd("ip addr add fd00:215::1/64 dev swt-pc0 nodad"))
        sh(c.cmd("ip link set swt-pc0 up"))
        for addr in ("10.215.1.25/24", "10.215.1.26/24"):
            sh(m.cmd(f"ip addr add {addr} dev swt-pm0"))
        sh(m.cmd("ip addr add fd00:215::25/64 dev swt-pm0 nodad"))
        sh(m.cmd("ip link set swt-pm0 up"))
        os.makedirs(CG, exist_ok=True)
        try:
            with SmtpSink(m, "0.0.0.0:25", 200), SmtpSink(m, "[fd00:215::25]:25", 200):
                return run_cases(CASES)
        finally:
            for d in (os.path.join(CG, "worker"), CG):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


CASES = [test_bad_config_exits_78_naming_the_key, test_enforce_denies_unapproved_client,
         test_monitor_reports_would_deny_and_reload_flips, test_scripts_uids_and_cgroups,
         test_units_resolved_at_start_and_on_reload, test_stop_and_crash_fail_open]

if __name__ == "__main__":
    sys.exit(main())
