# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The syslog output (agent/syslog_out.c) against a real rsyslogd.

The test starts its own rsyslogd (private configuration, work directory and pid
file in a temp dir; imudp and imtcp on 127.0.0.1 high ports, imuxsock on a
socket in the temp dir), runs mmjsonparse on every message and writes the parsed
fields to a file. build/tests/syslog_send drives the module as the agent would.
Every line must arrive exactly once, parsed; losses must be counted.
"""
import collections
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, Skip, expect, expect_eq, need_root, run_cases, sh

# SYSLOG_SEND: another build of the tool (the tests were checked against broken ones).
SENDER = os.environ.get("SYSLOG_SEND") or os.path.join(ROOT, "build", "tests", "syslog_send")
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
RFC3339_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)$")
# Bytes a HELO can carry, written as the agent writes them (cJSON, UTF-8 kept).
HOSTILE = "\x1b[2J\"q\\'\u00e9\u2028\U0001F600\x7f<>&"

CONF = """\
global(workDirectory="{dir}/work" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
module(load="mmjsonparse")
# UDP has no flow control: a burst overflows the default receive buffer.
input(type="imudp" address="127.0.0.1" port="{udp}" name="udp" rcvbufSize="8m")
input(type="imtcp" address="127.0.0.1" port="{tcp}" name="tcp")
input(type="imuxsock" Socket="{dir}/log" UseSpecialParser="off" ParseHostname="on"
      IgnoreTimestamp="off" RateLimit.Interval="0")
template(name="fields" type="list" option.jsonf="on") {{
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="timestamp" name="timereported" dateformat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="helo" name="$!smtp!helo" format="jsonf")
  property(outname="sequence" name="$!event!sequence" format="jsonf")
}}
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="mmjsonparse" cookie="@cee:")
if $parsesuccess == "OK" then {{
  action(type="omfile" file="{dir}/parsed.json" template="fields")
}} else {{
  action(type="omfile" file="{dir}/unparsed.log" template="raw")
}}
"""


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Rsyslog:
    """rsyslogd -n -f CONF -i PIDFILE, everything in one temp dir."""

    def __init__(self):
        if not os.access(RSYSLOGD, os.X_OK):
            raise Skip("rsyslogd is not installed (Debian package rsyslog)")
        if not os.access(SENDER, os.X_OK):
            raise RuntimeError(f"{SENDER} is missing: run make tests-build")
        self.dir = tempfile.mkdtemp(prefix="smtpwatch-rsyslog-")
        os.mkdir(os.path.join(self.dir, "work"))
        self.udp, self.tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        self.sock = os.path.join(self.dir, "log")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.dir, udp=self.udp, tcp=self.tcp))
        self.proc = None

    def __enter__(self):
        r = subprocess.run([RSYSLOGD, "-N1", "-f", self.conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"rsyslogd refuses the test configuration: {r.stderr.strip()}")
        self.start()
        return self

    def start(self):
        self.log = open(os.path.join(self.dir, "rsyslogd.log"), "a")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", self.conf, "-i", os.path.join(self.dir, "rsyslogd.pid")],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited {self.proc.returncode}: {self.errors()}")
            if (sh(f"ss -Hltn 'sport = :{self.tcp}'", check=False).strip()
                    and sh(f"ss -Hlun 'sport = :{self.udp}'", check=False).strip()
                    and os.path.exists(self.sock)):
                return
            time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen within 10 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __exit__(self, *a):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def errors(self):
        try:
            with open(os.path.join(self.dir, "rsyslogd.log")) as f:
                return f.read()[-1500:]
        except FileNotFoundError:
            return ""

    def parsed(self):
        out = []
        try:
            with open(os.path.join(self.dir, "parsed.json"), "rb") as f:
                for raw in f:
                    if raw.endswith(b"\n"):
                        out.append(json.loads(raw))
        except FileNotFoundError:
            pass
        return out

    def unparsed(self):
        try:
            with open(os.path.join(self.dir, "unparsed.log"), "rb") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def target(self, kind):
        return {"udp": f"udp://127.0.0.1:{self.udp}", "tcp": f"tcp://127.0.0.1:{self.tcp}",
                "unix": f"unix://{self.sock}"}[kind]


class Sender:
    """build/tests/syslog_send: lines on stdin, one JSON line of counters per command."""

    def __init__(self, target, buffer=None):
        args = [SENDER, "--hostname", "testhost"]
        if buffer:
            args += ["--buffer", str(buffer)]
        self.proc = subprocess.Popen(args + [target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     encoding="utf-8", bufsize=1)
        self.pid = self.proc.pid

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def send(self, lines):
        for line in lines:
            self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def cmd(self, c, timeout=30):
        self.proc.stdin.write("!" + c + "\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise AssertionError(f"syslog_send did not answer '{c}' within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"syslog_send exited: {self.proc.stderr.read()[-500:]}")
        return json.loads(line)


def event(tag, i, pad=0):
    """A line shaped like the agent's; smtp.helo identifies it. Line 0 carries hostile bytes."""
    ev = {"@timestamp": "2026-11-23T06:25:00.123456Z",
          "event": {"action": "smtp_session", "sequence": i},
          "host": {"name": "testhost"},
          "smtp": {"helo_verb": "EHLO", "helo": f"{tag}-{i}" + (HOSTILE if i == 0 else "")},
          "rule": {"name": ["HELO_NO_DOT"]}}
    if pad:
        ev["pad"] = "x" * pad
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


def helos(tag, n):
    return [f"{tag}-{i}" + (HOSTILE if i == 0 else "") for i in range(n)]


def wait_arrived(rs, tag, n, timeout=15):
    """The parsed records of this tag, once n arrived and a moment passed for late duplicates."""
    deadline = time.time() + timeout
    while True:
        got = [r for r in rs.parsed() if r.get("helo", "").startswith(tag + "-")]
        if len(got) >= n or time.time() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return [r for r in rs.parsed() if r.get("helo", "").startswith(tag + "-")]


def expect_exactly_once(got, want, what):
    counts = collections.Counter(r["helo"] for r in got)
    dups = sorted(h for h, c in counts.items() if c > 1)
    missing = [h for h in want if h not in counts]
    extra = sorted(set(counts) - set(want))
    expect(not dups, f"{what}: {len(dups)} lines arrived more than once, e.g. {dups[:3]!r}")
    expect(not missing, f"{what}: {len(missing)} of {len(want)} lines never arrived, "
                        f"e.g. {missing[:3]!r}")
    expect(not extra, f"{what}: lines nobody sent: {extra[:3]!r}")


def expect_header(rec, pid, input_name, severity=6):
    """The RFC 5424 header as rsyslog parsed it."""
    expect_eq(rec["input"], input_name, "input")
    expect_eq(rec["version"], "1", "RFC 5424 VERSION")
    expect_eq(rec["facility"], "3", "facility (daemon)")
    expect_eq(rec["severity"], str(severity), "severity")
    expect_eq(rec["pri"], str(3 * 8 + severity), "PRI")
    expect_eq(rec["hostname"], "testhost", "HOSTNAME")
    expect_eq(rec["app"], "smtpwatch", "APP-NAME")
    expect_eq(rec["procid"], str(pid), "PROCID")
    expect_eq(rec["msgid"], "-", "MSGID")
    expect(RFC3339_US.match(rec["timestamp"]), f"TIMESTAMP {rec['timestamp']!r}")


def every_line_once(kind, n, pad_every=0):
    with Rsyslog() as rs, Sender(rs.target(kind)) as s:
        tag = f"{kind}{os.getpid()}"
        lines = [event(tag, i, pad=(20000 if pad_every and i % pad_every == 1 else 0))
                 for i in range(n)]
        before = time.time()
        s.send(lines)
        st = s.cmd("drain 10")
        expect_eq((st["sent"], st["dropped"], st["buffered"]), (n, 0, 0),
                  "sent, dropped, buffered after drain")
        got = wait_arrived(rs, tag, n)
        expect_exactly_once(got, helos(tag, n), kind)
        for r in got:
            expect_header(r, s.pid, {"udp": "udp", "tcp": "tcp", "unix": "imuxsock"}[kind])
        # The TIMESTAMP is the time of sending, in UTC.
        ts = time.mktime(time.strptime(got[0]["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        expect(abs(ts - before) < 30, f"TIMESTAMP {got[0]['timestamp']} is not now")
        expect_eq(rs.unparsed(), [], "messages mmjsonparse could not parse")
        if pad_every:
            expect(any(r["helo"] == f"{tag}-1" for r in got), "a 20 KB line arrived")


def test_udp_every_line_once_parsed():
    every_line_once("udp", 200)


def test_tcp_every_line_once_parsed():
    # Octet counting: 20 KB lines among small ones must not be split or merged.
    every_line_once("tcp", 500, pad_every=50)


def test_unix_every_line_once_parsed():
    every_line_once("unix", 200)


def test_severity_of_alerts():
    with Rsyslog() as rs, Sender(rs.target("tcp")) as s:
        tag = f"sev{os.getpid()}"
        s.cmd("severity 4")
        s.send([event(tag, 1)])
        s.cmd("drain 10")
        got = wait_arrived(rs, tag, 1)
        expect_eq(len(got), 1, "alert lines received")
        expect_header(got[0], s.pid, "tcp", severity=4)


def test_udp_oversized_dropped_and_counted():
    with Rsyslog() as rs, Sender(rs.target("udp")) as s:
        tag = f"big{os.getpid()}"
        s.send([event(tag, 1, pad=70000), event(tag, 2)])
        st = s.cmd("drain 10")
        expect_eq((st["dropped"], st["rejected"], st["sent"]), (1, 1, 1),
                  "dropped, rejected, sent: the 70 KB datagram is dropped, the next one goes")
        got = wait_arrived(rs, tag, 1)
        expect_eq([r["helo"] for r in got], [f"{tag}-2"], "what arrived")


def collector_restart(kind):
    """Collector stops; lines wait in the buffer; it comes back; each line arrives once."""
    with Rsyslog() as rs, Sender(rs.target(kind)) as s:
        tag = f"re{kind}{os.getpid()}"
        first = [event(tag, i) for i in range(20)]
        s.send(first)
        st = s.cmd("drain 10")
        expect_eq(st["buffered"], 0, "buffered before the collector stops")
        expect_eq(len(wait_arrived(rs, tag, 20)), 20, "lines before the stop")
        rs.stop()
        later = [event(tag, i) for i in range(20, 120)]
        s.send(later)
        st = s.cmd("run 1.5")
        expect_eq(st["connected"], False, "connected while the collector is down")
        expect_eq(st["dropped"], 0, "dropped while the buffer has room")
        expect_eq(st["buffered"], 100, "messages waiting while the collector is down")
        expect(st["buffered_bytes"] > 100 * 150, f"buffered_bytes {st['buffered_bytes']}")
        rs.start()  # same ports, same socket path
        st = s.cmd("drain 20")
        expect_eq((st["buffered"], st["dropped"]), (0, 0), "buffered, dropped after the restart")
        expect_eq(st["sent"], 120, "sent")
        expect_eq(st["reconnects"], 1, "reconnects")
        expect_eq(st["connected"], True, "connected again")
        got = wait_arrived(rs, tag, 120)
        expect_exactly_once(got, helos(tag, 120), f"{kind} across a collector restart")
        expect_eq(rs.unparsed(), [], "messages mmjsonparse could not parse")


def test_tcp_collector_restart_buffered_once():
    collector_restart("tcp")


def test_unix_collector_restart_buffered_once():
    collector_restart("unix")


def test_tcp_collector_vanishes_unacknowledged_resent():
    """The collector goes without a FIN reaching us (host gone): what it never
    acknowledged is written again on the next connection, once."""
    need_root()
    if not shutil.which("nft"):
        raise Skip("nft is not installed (Debian package nftables)")
    table = f"sw_syslog_test_{os.getpid()}"
    with Rsyslog() as rs, Sender(rs.target("tcp")) as s:
        tag = f"gone{os.getpid()}"
        s.send([event(tag, i) for i in range(20)])
        expect_eq(s.cmd("drain 10")["buffered"], 0, "buffered before the collector goes")
        try:
            # Loopback only: this test's port, both directions.
            sh(f"nft add table inet {table}")
            sh(f"nft add chain inet {table} out '{{ type filter hook output priority 0; }}'")
            sh(f"nft add rule inet {table} out oif lo tcp dport {rs.tcp} drop")
            sh(f"nft add rule inet {table} out oif lo tcp sport {rs.tcp} drop")
            rs.stop()  # its FIN never reaches us
            s.send([event(tag, i) for i in range(20, 120)])
            st = s.cmd("run 1")
            expect_eq((st["connected"], st["sent"], st["buffered"]), (True, 20, 100),
                      "connected, sent, buffered: written but never acknowledged")
            rs.start()
        finally:
            sh(f"nft delete table inet {table}", check=False)
        st = s.cmd("drain 30")
        expect_eq((st["buffered"], st["dropped"], st["sent"]), (0, 0, 120),
                  "buffered, dropped, sent after the collector came back")
        got = wait_arrived(rs, tag, 120)
        expect_exactly_once(got, helos(tag, 120), "tcp across a collector that vanished")
        expect_eq(rs.unparsed(), [], "partial or unparsable messages")


def test_tcp_backpressure_whole_messages():
    """More than the collector takes at once: partial writes resume mid-message,
    nothing is split or merged, and what is not sent is counted."""
    with Rsyslog() as rs, Sender(rs.target("tcp")) as s:  # the default 4 MiB buffer
        tag = f"bp{os.getpid()}"
        n = 4000
        rs.proc.send_signal(signal.SIGSTOP)  # a collector that stops reading
        try:
            s.send([event(tag, i, pad=(3000 + i % 997)) for i in range(n)])
            st = s.cmd("run 1")
            expect(st["buffered"] > 0 and st["dropped"] > 0,
                   f"no backlog formed (buffered {st['buffered']}, dropped {st['dropped']})")
        finally:
            rs.proc.send_signal(signal.SIGCONT)
        st = s.cmd("drain 60")
        expect_eq(st["buffered"], 0, "buffered after drain")
        expect_eq(st["sent"] + st["dropped"], n, "every line is sent or counted as dropped")
        got = wait_arrived(rs, tag, st["sent"], timeout=30)
        counts = collections.Counter(r["helo"] for r in got)
        expect_eq(len(got), st["sent"], "lines received")
        expect(all(c == 1 for c in counts.values()), "a line arrived twice")
        expect_eq(rs.unparsed(), [], "split or merged messages")


def test_tcp_buffer_full_counts_drops():
    with Rsyslog() as rs:
        rs.stop()  # the collector is away from the start
        with Sender(rs.target("tcp"), buffer=16384) as s:
            tag = f"full{os.getpid()}"
            n = 100
            s.send([event(tag, i, pad=300) for i in range(n)])
            st = s.cmd("run 0.5")
            kept = st["buffered"]
            expect(0 < kept < n, f"{kept} of {n} lines kept in a 16 KiB buffer")
            expect_eq(st["dropped"], n - kept, "every line not kept is counted as dropped")
            expect_eq(st["rejected"], n - kept, "send() said so for each")
            expect(st["buffered_bytes"] <= 16384, f"buffered_bytes {st['buffered_bytes']} > limit")
            rs.start()
            st = s.cmd("drain 20")
            expect_eq((st["buffered"], st["sent"]), (0, kept), "buffered, sent after the collector came")
            got = wait_arrived(rs, tag, kept)
            # The oldest lines are kept, whole: the newest are the ones dropped.
            expect_exactly_once(got, helos(tag, kept), "kept lines")
            expect_eq(rs.unparsed(), [], "partial or unparsable messages")


def test_bad_targets_refused():
    for target, why in [("tcp://127.0.0.1", None), ("http://127.0.0.1:514", "use udp://"),
                        ("tcp://127.0.0.1:99999", "port"), ("unix://relative/log", "absolute"),
                        ("udp://[::1]:5514", None)]:
        p = subprocess.run([SENDER, target], input="!close 0\n", capture_output=True, text=True,
                           timeout=10)
        if why is None:
            expect_eq(p.returncode, 0, f"{target}: exit code ({p.stderr.strip()})")
        else:
            expect_eq(p.returncode, 1, f"{target}: exit code")
            expect(why in p.stderr and p.stderr.count("\n") == 1,
                   f"{target}: one sentence saying {why!r}, got {p.stderr!r}")


def a_bin():
    from harness import AGENT
    return AGENT


def test_agent_sessions_reach_rsyslog_and_metrics():
    """The agent itself: every smtp_session arrives at rsyslog once, parsed; metrics file written."""
    from harness import Agent, Netns, SmtpSink, PY, get
    client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_client.py")
    with Rsyslog() as rs, Netns("swt-syslog") as n, SmtpSink(n, "127.0.0.1:2525"):
        with Agent(["--syslog", rs.target("tcp")]) as a:
            want = []
            for i in range(5):
                helo = f"agent-syslog-{i}.test.example"
                p = n.popen([PY, client, "smtplib", "127.0.0.1", "2525", helo],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                expect_eq(p.wait(timeout=20), 0, "client exit")
                want.append(helo)
            a.wait_for(lambda e: get(e, "smtp.helo") == want[-1], what="the last session")
            got = wait_arrived(rs, "agent-syslog", 5)
            expect_exactly_once(got, want, "agent sessions at rsyslog")
            st = a.status()[1]
            expect(st["syslog"]["connected"] and st["syslog"]["sent"] >= 10,
                   f"status.syslog {st.get('syslog')}")
            expect_eq(st["losses"]["syslog_dropped"], 0, "syslog drops")
            m = subprocess.run([a_bin(), "status", "--socket", a.sock, "--metrics"],
                               capture_output=True, text=True, timeout=10)
            expect_eq(m.returncode, 0, "status --metrics exit")
            expect("smtpwatch_up 1" in m.stdout.splitlines(), "smtpwatch_up 1")
            expect(any(l.startswith("smtpwatch_sessions_total ") and float(l.split()[1]) >= 5
                       for l in m.stdout.splitlines()), "sessions counter in the metrics")
            expect_eq(a.stop(), 0, "agent exit code")


if __name__ == "__main__":
    sys.exit(run_cases([test_agent_sessions_reach_rsyslog_and_metrics, test_udp_every_line_once_parsed, test_tcp_every_line_once_parsed,
                        test_unix_every_line_once_parsed, test_severity_of_alerts,
                        test_udp_oversized_dropped_and_counted,
                        test_tcp_collector_restart_buffered_once,
                        test_unix_collector_restart_buffered_once,
                        test_tcp_collector_vanishes_unacknowledged_resent,
                        test_tcp_backpressure_whole_messages,
                        test_tcp_buffer_full_counts_drops, test_bad_targets_refused]))
