# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""smtpwatch hunt over journal files written here: no agent, no root.

The journal is the agent's rotation set: events.json (newest), events.json.1,
events.json.2.gz, with sessions at known times around a blocklist listing's
2026-11-23T06:25:00Z, non-session events, malformed and hostile lines.
"""
import gzip
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import AGENT, expect, expect_eq, run_cases

HELO = "DESKTOP-4F2K9QX"
AT = "2026-11-23T06:25:00Z"


def session(seq, start, end, helo=HELO, pid=4242, dst="198.51.100.7", action="smtp_session",
            banner="mx.example.net ESMTP"):
    """One event in the agent's shape (docs/schema.md), serialized as the agent does."""
    ev = {
        "@timestamp": start,
        "event": {"action": action, "sequence": seq, "kind": "event", "type": "end",
                  "start": start, "end": end, "duration": 0, "risk_score": 55},
        "host": {"name": "desk-17", "id": "4c4c4544004d3010", "boot": {"id": "b1"}},
        "source": {"ip": "10.0.0.17", "port": 40000 + seq},
        "destination": {"ip": dst, "port": 25},
        "network": {"type": "ipv6" if ":" in dst else "ipv4", "transport": "tcp",
                    "protocol": "smtp", "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
        "smtp": {"helo_verb": "EHLO", "helo": helo, "mail_from": "<a@example.com>",
                 "rcpt_to": ["<b@example.net>"], "banner": banner, "banner_code": 220,
                 "replies": [{"code": 554, "text": "5.7.1 blocked using sbl-xbl.spamhaus.org"}],
                 "starttls": False, "commands": 4},
        "rule.name": ["HELO_NO_DOT", "HELO_GENERIC_WORD"],
    }
    if action == "smtp_session":
        ev["process"] = {"pid": pid, "name": "python3", "executable": "/usr/bin/python3.11",
                         "args": ["python3", "bot.py"], "parent": {"pid": 1168}}
        ev["user"] = {"id": "1000", "name": "alice"}
    return json.dumps(ev, separators=(",", ":")).encode()


def other(seq, ts, action):
    """A non-session event that still names the HELO: it must not match."""
    ev = {"@timestamp": ts, "event": {"action": action, "sequence": seq, "kind": "event"},
          "host": {"name": "desk-17"}, "process": {"pid": 4242},
          "destination": {"ip": "198.51.100.7", "port": 25}, "smtp": {"helo": HELO}}
    return json.dumps(ev, separators=(",", ":")).encode()


# Sessions by event.sequence; the window is 06:15:00 to 06:35:00 with the default 10m.
S = {
    1: session(1, "2026-11-23T06:00:00.000000Z", "2026-11-23T06:40:00.000000Z", pid=5000),
    2: session(2, "2026-11-23T06:14:59.000000Z", "2026-11-23T06:15:00.000000Z"),  # end on edge
    3: session(3, "2026-11-23T06:14:58.000000Z", "2026-11-23T06:14:59.999999Z"),  # just out
    4: session(4, "2026-11-23T06:18:00.000000Z", "2026-11-23T06:19:00.000000Z"),  # in the .gz
    5: session(5, "2026-11-23T06:20:00.000000Z", "2026-11-23T06:20:01.000000Z",
               helo="desktop-4f2k9qx", pid=4243, dst="2001:db8::25"),
    6: session(6, "2026-11-23T06:22:00.000000Z", "2026-11-23T06:22:02.000000Z",
               action="smtp_unattributed", dst="203.0.113.9"),
    7: session(7, "2026-11-23T06:24:59.500000Z", "2026-11-23T06:25:01.250000Z"),
    8: session(8, "2026-11-23T06:26:00.000000Z", "2026-11-23T06:26:03.000000Z", pid=4244,
               dst="192.0.2.99", banner="\x1b[2J\x1b]0;pwned\x07 ESMTP"),  # \u001b in JSON
    9: session(9, "2026-11-23T06:35:00.000000Z", "2026-11-23T06:35:10.000000Z"),  # start on edge
    10: session(10, "2026-11-23T06:35:00.000001Z", "2026-11-23T06:35:10.000000Z"),  # just out
    11: session(11, "2026-11-23T06:25:00.000000Z", "2026-11-23T06:25:05.000000Z",
                helo="mail.example.com"),
}
MALFORMED = [b"not json at all", b'{"@timestamp":"2026-11-23T06:25:00Z","event":{',
             b"[1,2,3]", b'"smtp_session"', b'{"event":{"action":"smtp_session"}} trailing']


class Journal:
    """events.json, .1 and .2.gz in a temp dir."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="smtpwatch-hunt-")
        self.base = os.path.join(self.dir, "events.json")
        self.write(self.base, [S[7], other(20, AT, "connection_attempted"), MALFORMED[0], S[8],
                               MALFORMED[1], other(21, AT, "smtp_alert"), S[11], MALFORMED[2],
                               MALFORMED[3], MALFORMED[4], b""])
        self.write(self.base + ".1", [S[9], S[10], S[5], S[2], S[3]])
        self.write(self.base + ".2.gz", [S[1], S[4], S[6]], gz=True)
        return self

    def __exit__(self, *a):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, path, lines, gz=False):
        data = b"".join(l + b"\n" for l in lines)
        with (gzip.open if gz else open)(path, "wb") as f:
            f.write(data)
        return path


def hunt(*args, **kw):
    return subprocess.run([AGENT, "hunt"] + list(args), capture_output=True, timeout=30, **kw)


def seqs(r):
    """event.sequence of each printed line, after checking each is a line of the journal."""
    lines = r.stdout.split(b"\n")
    expect_eq(lines[-1], b"", "output ends with a newline")
    known = set(S.values())
    for l in lines[:-1]:
        expect(l in known, f"printed line is not byte-for-byte a journal line: {l[:120]!r}")
    return [json.loads(l)["event"]["sequence"] for l in lines[:-1]]


ALL = [1, 2, 4, 5, 6, 7, 8, 9]  # in @timestamp order


def test_journal_rotations_in_time_order():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, "--journal", j.base)
        expect_eq(r.returncode, 0, f"exit code ({r.stderr!r})")
        expect_eq(seqs(r), ALL, "sessions of all three files, oldest first")
        err = r.stderr.decode()
        expect(f"skipped 5 malformed lines in {j.base}\n" in err, f"malformed count: {err!r}")
        expect(".json.1" not in err and ".gz" not in err, f"clean files are not reported: {err!r}")


def test_rotation_caught_mid_compression():
    """PATH.1 and the finished PATH.1.gz side by side for a moment: each line once."""
    with Journal() as j:
        with open(j.base + ".1", "rb") as src, gzip.open(j.base + ".1.gz", "wb") as dst:
            dst.write(src.read())
        r = hunt("--helo", HELO, "--at", AT, "--journal", j.base)
        expect_eq(r.returncode, 0, f"exit code ({r.stderr!r})")
        expect_eq(seqs(r), ALL, "the rotated file's sessions once, not twice")


def test_named_files_any_order():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, j.base + ".2.gz", j.base, j.base + ".1")
        expect_eq(r.returncode, 0, "exit code")
        expect_eq(seqs(r), ALL, "same answer from named files")
        r = hunt("--helo", HELO, "--at", AT, j.base + ".2.gz")
        expect_eq(seqs(r), [1, 4, 6], "matches inside the gzip file")
        # The same file twice (and through the journal) is read once.
        r = hunt("--helo", HELO, "--at", AT, j.base + ".1", j.base + ".1", "--journal", j.base)
        expect_eq(seqs(r), ALL, "no duplicates")


def test_window_edges():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, "--window", "600", j.base + ".1")
        expect_eq(seqs(r), [2, 5, 9], "end at TIME-10m and start at TIME+10m are inside; "
                  "1 us beyond is outside")
        r = hunt("--helo", HELO, "--at", AT, "--window", "9m59s", j.base + ".1")
        expect_eq(seqs(r), [5], "one second less drops both edges")
        r = hunt("--helo", HELO, "--at", AT, "-w", "1s", "--journal", j.base)
        expect_eq(seqs(r), [1, 7], "a session spanning TIME matches however early it began")
        r = hunt("--helo", HELO, "--at", "2026-11-23T06:25:01.250001Z", "-w", "0", j.base)
        expect_eq(r.returncode, 1, "1 us after the end of the session, with no window")
        r = hunt("--helo", HELO, "--at", "2026-11-23T06:25:01.25Z", "-w", "0", j.base)
        expect_eq(seqs(r), [7], "at the exact end")


def test_dst_and_pid_filters():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, "--dst", "2001:db8:0:0:0::25", "--journal", j.base)
        expect_eq(seqs(r), [5], "IPv6 compared as an address, not as text")
        r = hunt("--helo", HELO, "--at", AT, "--dst", "198.51.100.7", "--journal", j.base)
        expect_eq(seqs(r), [1, 2, 4, 7, 9], "IPv4 destination")
        r = hunt("--helo", HELO, "--at", AT, "--dst", "::ffff:198.51.100.7", "--journal", j.base)
        expect_eq(seqs(r), [1, 2, 4, 7, 9], "an IPv4-mapped address is the IPv4 one")
        r = hunt("--helo", HELO, "--at", AT, "--pid", "4242", "--journal", j.base)
        expect_eq(seqs(r), [2, 4, 7, 9], "process id (unattributed flows have none)")
        r = hunt("--helo", HELO, "--at", AT, "--pid", "4242", "--dst", "2001:db8::25",
                 "--journal", j.base)
        expect_eq(r.returncode, 1, "filters combine")


def test_helo_case_and_contains():
    with Journal() as j:
        r = hunt("--helo", "Desktop-4f2K9QX", "--at", AT, "--journal", j.base)
        expect_eq(seqs(r), ALL, "ASCII case is ignored")
        r = hunt("--helo", "DESKTOP-4F2K9Q", "--at", AT, "--journal", j.base)
        expect_eq(r.returncode, 1, "--helo is the whole HELO")
        r = hunt("--helo-contains", "4f2k", "--at", AT, "--journal", j.base)
        expect_eq(seqs(r), ALL, "--helo-contains")
        r = hunt("--helo-contains", "example", "--at", AT, "--journal", j.base)
        expect_eq(seqs(r), [11], "--helo-contains another HELO")


def test_time_forms():
    with Journal() as j:
        for at in ("2026-11-23T08:25:00+02:00", "2026-11-22T23:25:00-07:00",
                   "2026-11-23 06:25:00", "2026-11-23T06:25:00.000000Z"):
            r = hunt("--helo", HELO, "--at", at, "--journal", j.base)
            expect_eq(seqs(r), ALL, f"--at {at}")
        r = hunt("--helo", HELO, "--at", "2026-11-23T06:25:00+01:00", "--journal", j.base)
        expect_eq(r.returncode, 1, "an hour earlier matches nothing")


def test_no_match_exit_1():
    with Journal() as j:
        r = hunt("--helo", "NOSUCHHOST", "--at", AT, "--journal", j.base)
        expect_eq((r.returncode, r.stdout), (1, b""), "unknown HELO")
        expect(b"no match" in r.stderr, f"says so on stderr: {r.stderr!r}")
        r = hunt("--helo", HELO, "--at", "2026-11-24T06:25:00Z", "--journal", j.base)
        expect_eq((r.returncode, r.stdout), (1, b""), "another day")


def test_usage_errors():
    with Journal() as j:
        cases = [
            ("no --helo", ["--at", AT, j.base]),
            ("no --at", ["--helo", HELO, j.base]),
            ("bad time", ["--helo", HELO, "--at", "yesterday", j.base]),
            ("bad date", ["--helo", HELO, "--at", "2026-02-30T06:25:00Z", j.base]),
            ("bad offset", ["--helo", HELO, "--at", "2026-11-23T06:25:00+25:00", j.base]),
            ("bad window", ["--helo", HELO, "--at", AT, "--window", "10 minutes", j.base]),
            ("negative window", ["--helo", HELO, "--at", AT, "--window", "-5m", j.base]),
            ("bad dst", ["--helo", HELO, "--at", AT, "--dst", "mx.example.net", j.base]),
            ("bad pid", ["--helo", HELO, "--at", AT, "--pid", "12ab", j.base]),
            ("unknown option", ["--helo", HELO, "--at", AT, "--frobnicate", j.base]),
        ]
        for what, args in cases:
            r = hunt(*args)
            expect_eq(r.returncode, 64, what)
            expect_eq(r.stdout, b"", f"{what}: nothing on stdout")
            expect(r.stderr.startswith(b"smtpwatch: "), f"{what}: says why: {r.stderr[:100]!r}")
    r = hunt("--help")
    expect_eq(r.returncode, 0, "--help")
    expect(r.stdout.startswith(b"Usage: smtpwatch hunt"), "--help on stdout")


def test_missing_and_unreadable_input():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, j.path("nope.json"), j.base)
        expect_eq((r.returncode, r.stdout), (66, b""), "a named file that does not exist")
        expect_eq(len(r.stderr.decode().strip().splitlines()), 1, "one sentence")
        expect(b"nope.json" in r.stderr, "names the file")
        r = hunt("--helo", HELO, "--at", AT, j.dir)
        expect_eq(r.returncode, 66, "a directory")
        r = hunt("--helo", HELO, "--at", AT, "--journal", j.path("other.json"))
        expect_eq(r.returncode, 66, "a journal with no file at all")
        # Rotations without the base file (it was just rotated) are a journal.
        os.unlink(j.base)
        r = hunt("--helo", HELO, "--at", AT, "--journal", j.base)
        expect_eq(seqs(r), [1, 2, 4, 5, 6, 9], "rotations only")
        if os.geteuid() != 0:
            os.chmod(j.base + ".1", 0)
            r = hunt("--helo", HELO, "--at", AT, j.base + ".1")
            expect_eq(r.returncode, 77, "permission denied")


def test_truncated_and_corrupt_gzip():
    with Journal() as j:
        filler = [other(100 + i, AT, "connection_attempted") for i in range(3000)]
        data = gzip.compress(b"".join(l + b"\n" for l in [S[4]] + filler + [S[7]]))
        cut = j.path("cut.json.3.gz")
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 2])  # a rotation caught half-written
        r = hunt("--helo", HELO, "--at", AT, cut)
        expect_eq(r.returncode, 0, f"exit code ({r.stderr!r})")
        expect_eq(seqs(r), [4], "what the cut file has")
        expect(b"cut.json.3.gz" in r.stderr and b"gzip" in r.stderr, f"warned: {r.stderr!r}")

        bad = j.path("bad.json.gz")
        with open(bad, "wb") as f:
            f.write(data[:-8] + bytes(b ^ 0xff for b in data[-8:-4]) + data[-4:])  # bad CRC
        r = hunt("--helo", HELO, "--at", AT, bad)
        expect_eq(r.returncode, 65, "corrupt file")
        expect_eq(seqs(r), [4, 7], "what could be read is still printed")
        expect(b"corrupt" in r.stderr, f"says so: {r.stderr!r}")


def test_long_lines_and_stdin():
    with Journal() as j:
        huge = b'{"event":{"action":"smtp_session"},"smtp":{"helo":"' + HELO.encode() + \
            b'"},"x":"' + b"A" * (1 << 20) + b'"}'
        near = session(30, "2026-11-23T06:25:30.000000Z", "2026-11-23T06:25:31.000000Z")
        near = near[:-1] + b',"pad":"' + b"B" * ((1 << 20) - len(near) - 9) + b'"}'
        expect_eq(len(near), 1 << 20, "test line of exactly 1 MiB")
        path = j.write(j.path("long.json"), [huge, near, huge, S[9]])
        r = hunt("--helo", HELO, "--at", AT, path)
        expect_eq(r.returncode, 0, "exit code")
        out = r.stdout.split(b"\n")
        expect_eq([json.loads(l)["event"]["sequence"] for l in out[:-1]], [30, 9],
                  "a 1 MiB line is read, a longer one skipped")
        expect_eq(out[0], near, "the long line byte for byte")
        expect(b"skipped 2 malformed lines" in r.stderr, f"counted: {r.stderr!r}")
        with open(j.base + ".2.gz", "rb") as f:
            r = hunt("--helo", HELO, "--at", AT, "-", stdin=f)
        expect_eq(seqs(r), [1, 4, 6], "gzip on standard input")


def test_hostile_lines():
    with Journal() as j:
        r = hunt("--helo", HELO, "--at", AT, "--pid", "4244", "--journal", j.base)
        expect_eq(seqs(r), [8], "the line with escaped controls matches")
        expect_eq(r.stdout, S[8] + b"\n", "printed exactly as in the file")
        expect(b"\\u001b" in r.stdout and b"\x1b" not in r.stdout, "escapes stay escapes")
        # Raw control bytes inside a JSON string (cJSON accepts them) and a
        # C1 CSI: on a terminal they must arrive as text, not as commands.
        raw = session(40, "2026-11-23T06:25:10.000000Z", "2026-11-23T06:25:11.000000Z",
                      banner="BANNER").replace(b"BANNER", b"\x1b[2J\x07\x7f\xc2\x9b31m\xff")
        path = j.write(j.path("raw.json"), [raw])
        r = hunt("--helo", HELO, "--at", AT, path)
        expect_eq(r.stdout, raw + b"\n", "not a terminal: byte for byte")
        tty = on_terminal([AGENT, "hunt", "--helo", HELO, "--at", AT, path])
        expect(b"\x1b" not in tty and b"\x07" not in tty and b"\x7f" not in tty
               and b"\x9b" not in tty and b"\xff" not in tty, f"raw control on the tty: {tty!r}")
        expect(b"\\x1b[2J\\x07\\x7f\\xc2\\x9b31m\\xff" in tty, f"shown as \\xNN: {tty!r}")


def on_terminal(argv):
    """Run argv with stdout on a pseudo-terminal; return what it wrote there."""
    master, slave = pty.openpty()
    # Raw mode: the line discipline would turn \n into \r\n.
    import tty as ttymod
    ttymod.setraw(slave)
    p = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=10)
    os.close(master)
    return out


if __name__ == "__main__":
    sys.exit(run_cases([test_journal_rotations_in_time_order, test_rotation_caught_mid_compression, test_named_files_any_order,
                        test_window_edges, test_dst_and_pid_filters, test_helo_case_and_contains,
                        test_time_forms, test_no_match_exit_1, test_usage_errors,
                        test_missing_and_unreadable_input, test_truncated_and_corrupt_gzip,
                        test_long_lines_and_stdin, test_hostile_lines]))
