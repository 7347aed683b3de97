#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A configuration or a journal that someone other than root could write is refused
with one sentence: exit 78 at start, policy.reload_error on SIGHUP (docs/config.md)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import AGENT, Agent, Skip, expect, expect_eq, need_root, run_cases

NOBODY = 65534


def run_agent(args, tmp):
    """An agent that must refuse at once: its exit code and stderr."""
    sock = os.path.join(tmp, "sw.sock")
    r = subprocess.run([AGENT, "run", "--socket", sock] + args, capture_output=True, text=True,
                       timeout=20)
    return r.returncode, r.stderr.strip()


def refused(args, tmp, what, *words):
    rc, err = run_agent(args, tmp)
    expect_eq(rc, 78, f"exit code for {what} ({err!r})")
    lines = err.splitlines()
    expect_eq(len(lines), 1, f"one sentence for {what}: {err!r}")
    for w in words:
        expect(w in err, f"{w!r} in the message for {what}: {err!r}")


def config(tmp, name="c.json", mode=0o644, text='{"mode": "monitor"}\n'):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_config_writable_by_others():
    need_root()
    tmp = tempfile.mkdtemp(prefix="smtpwatch-perm-")
    try:
        for mode in (0o666, 0o664, 0o646):
            path = config(tmp, mode=mode)
            refused(["--config", path], tmp, f"mode {mode:o}", path, "writable by group or others",
                    f"{mode:04o}", "chmod go-w")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_config_owner_symlink_and_directory():
    need_root()
    tmp = tempfile.mkdtemp(prefix="smtpwatch-perm-")
    try:
        path = config(tmp)
        os.chown(path, NOBODY, NOBODY)
        refused(["--config", path], tmp, "a file owned by nobody", path, f"owned by uid {NOBODY}")
        os.chown(path, 0, 0)
        link = os.path.join(tmp, "link.json")
        os.symlink(path, link)
        refused(["--config", link], tmp, "a symlink", link, "symbolic link")
        sub = os.path.join(tmp, "open")
        os.mkdir(sub)
        inner = config(sub)
        os.chmod(sub, 0o777)
        refused(["--config", inner], tmp, "a world-writable directory", inner, sub, "0777")
        os.chmod(sub, 0o755)
        os.chown(sub, NOBODY, NOBODY)
        refused(["--config", inner], tmp, "a directory owned by nobody", sub,
                f"owned by uid {NOBODY}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_journal_refused():
    need_root()
    tmp = tempfile.mkdtemp(prefix="smtpwatch-perm-")
    try:
        j = os.path.join(tmp, "events.json")
        open(j, "w").close()
        os.chmod(j, 0o666)
        refused(["--output", j], tmp, "a journal writable by others", j, "journal",
                "writable by group or others")
        os.chmod(j, 0o640)
        os.chown(j, NOBODY, NOBODY)
        refused(["--output", j], tmp, "a journal owned by nobody", j, f"owned by uid {NOBODY}")
        os.unlink(j)
        os.symlink("/tmp/elsewhere.json", j)
        refused(["--output", j], tmp, "a journal that is a symlink", j, "symbolic link")
        expect(not os.path.exists("/tmp/elsewhere.json"), "the symlink was followed")
        os.unlink(j)
        sub = os.path.join(tmp, "logs")
        os.mkdir(sub)
        os.chmod(sub, 0o777)
        refused(["--output", os.path.join(sub, "ev.json")], tmp, "a journal directory 0777",
                sub, "0777")
        expect(not os.path.exists(os.path.join(sub, "ev.json")), "the journal was created anyway")
        # Sticky, like /tmp: fine for a plain journal, but rotation renames files
        # there, so a rotated journal needs a directory no one else can write.
        os.chmod(sub, 0o1777)
        refused(["--output", os.path.join(sub, "ev.json"), "--rotate-size", "1M"], tmp,
                "a rotated journal in a sticky directory", sub, "1777", "rotated")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sticky_journal_accepted_and_reload_refused():
    """The refusals are not blanket: a journal in a sticky directory runs; and a
    configuration made writable by others is refused on SIGHUP, the running policy kept."""
    need_root()
    tmp = tempfile.mkdtemp(prefix="smtpwatch-perm-")
    os.chmod(tmp, 0o1777)
    path = config(tmp, "r.json")
    try:
        with Agent(["--config", path]) as a:
            rc, st = a.status()
            expect_eq(rc, 0, "status")
            os.chmod(path, 0o666)
            a.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            err = None
            while time.time() < deadline:
                rc, st = a.status()
                err = (st or {}).get("policy", {}).get("reload_error")
                if err:
                    break
                time.sleep(0.1)
            expect(err and "writable by group or others" in err and path in err,
                   f"policy.reload_error after SIGHUP: {err!r}")
            expect_eq(a.status()[0], 0, "the agent keeps running with its policy")
        j = os.path.join(tmp, "ev.json")
        sock = os.path.join(tmp, "s.sock")
        p = subprocess.Popen([AGENT, "run", "--output", j, "--socket", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 15
            ok = False
            while time.time() < deadline and p.poll() is None:
                if subprocess.run([AGENT, "status", "--socket", sock],
                                  capture_output=True).returncode == 0:
                    ok = True
                    break
                time.sleep(0.1)
            expect(ok, f"agent with a journal in a sticky directory: rc {p.poll()}")
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not os.path.exists(AGENT):
        print(f"SKIP test_fileperm: {AGENT} is not built")
        return 0
    return run_cases([test_config_writable_by_others, test_config_owner_symlink_and_directory,
                      test_journal_refused, test_sticky_journal_accepted_and_reload_refused])


if __name__ == "__main__":
    sys.exit(main())
