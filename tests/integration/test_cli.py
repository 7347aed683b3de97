# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The command line without an agent: check-helo, help, usage errors."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import AGENT, expect, expect_eq, run_cases


def run(*args, input=None):
    return subprocess.run([AGENT] + list(args), capture_output=True, timeout=10, input=input)


def test_check_helo_rules():
    r = run("check-helo", "--hostname", "mail.example.com", "--address", "192.0.2.10",
            "DESKTOP-4F2K9QX", "mail.example.com", "[192.0.2.7]", "gmail.com")
    expect_eq(r.returncode, 0, "exit code")
    out = [json.loads(l) for l in r.stdout.decode().splitlines()]
    expect_eq([o["helo"] for o in out], ["DESKTOP-4F2K9QX", "mail.example.com", "[192.0.2.7]",
                                          "gmail.com"], "one line per HELO, in order")
    expect_eq(out[0]["rules"], ["HELO_NO_DOT", "HELO_GENERIC_WORD"], "desktop name")
    expect_eq(out[1]["rules"], [], "the host's own name")
    expect_eq(out[1]["score"], 0, "clean score")
    expect_eq(out[2]["rules"], ["HELO_LITERAL_MISMATCH"], "foreign literal")
    expect("HELO_FORGED_BIGCO" in out[3]["rules"], "forged big provider")


def test_check_helo_hostile_bytes_escaped():
    r = run("check-helo", "-", input=b"\x1b[2J\x1b]0;x\x07evil\xff\x00z\n")
    expect_eq(r.returncode, 0, "exit code")
    expect(not any(b < 0x20 and b != 0x0a for b in r.stdout), "no raw control byte on stdout")
    o = json.loads(r.stdout)
    expect_eq(o["helo"], "\x1b[2J\x1b]0;x\x07evil\\xff\\x00z", "decoded HELO")
    expect("HELO_BAD_CHARS" in o["rules"], "bad characters")


def test_usage_errors():
    expect_eq(run("check-helo").returncode, 64, "check-helo without a HELO")
    expect_eq(run("check-helo", "--help").returncode, 0, "check-helo --help")
    expect_eq(run("run", "--help").returncode, 0, "run --help")
    expect_eq(run("run", "--weight", "NO_SUCH_RULE=5").returncode, 64, "unknown rule weight")
    expect_eq(run("run", "--ring-size", "3000").returncode, 64, "ring size not a power of two")
    expect_eq(run("version").stdout.decode().split()[0], "smtpwatch", "version")


if __name__ == "__main__":
    sys.exit(run_cases([test_check_helo_rules, test_check_helo_hostile_bytes_escaped,
                        test_usage_errors]))
