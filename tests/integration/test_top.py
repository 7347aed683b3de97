# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""smtpwatch top: the JSON ranking of the contract, the batch table, the full-screen
view driven in tmux (sort, escaping of a hostile HELO, quit and terminal restore),
and the control socket's refusal of a non-root peer and of stalling by a silent client."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (runnable, AGENT, PY, Agent, Netns, Skip, expect, expect_eq, get, run_cases,
                     session_of, sh)

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "swt-top"
BOT_HELO = "DESKTOP-4F2K9QX"
GOOD_HELO = "mail.test.example"
HOSTILE = b"\x1b[2J\x1b[31mEVIL" + b"Z" * 2000
CONTRACT_KEYS = {"pid", "name", "executable", "user", "container_id", "sessions",
                 "destinations", "helos", "replies_rejected", "risk_score", "rules"}
TMUX = ["tmux", "-L", "swt-top", "-f", "/dev/null"]  # a private server: no other session is touched
ns = agent = None
pids = {}


def top(*args, timeout=20, user=None):
    cmd = [AGENT, "top", "--socket", agent.sock] + list(args)
    if user:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def top_json(*args):
    r = top("-b", "-n", "1", "-o", "json", *args)
    expect_eq(r.returncode, 0, f"top -o json exit ({r.stderr.decode()[-200:]})")
    lines = r.stdout.decode().splitlines()
    expect_eq(len(lines), 1, "JSON documents (lines) printed")
    doc = json.loads(lines[0])
    expect_eq(set(doc), {"processes"}, "document keys")
    return doc["processes"]


def client(mode, helo_arg):
    p = ns.popen([PY, os.path.join(HERE, "smtp_client.py"), mode, "127.0.0.1", "25", helo_arg],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    expect_eq(p.returncode, 0, f"{mode} client exit ({err.strip()[-200:]})")
    return json.loads(out.splitlines()[0])["pid"]


def wait_sessions(pid, n, timeout=10):
    deadline = time.time() + timeout
    while True:
        got = [e for e in agent.read_events() if session_of(pid)(e)]
        if len(got) >= n or time.time() > deadline:
            return got
        time.sleep(0.2)


def traffic():
    """The bot first, then the good mailer: a newest-first or pid order would fail.
    Then a client whose HELO holds terminal escapes and 2,000 bytes of junk."""
    p = ns.popen([PY, os.path.join(HERE, "bot_client.py"), "25", BOT_HELO, "6"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=60)
    expect_eq(p.returncode, 0, f"bot exit ({err.strip()[-200:]})")
    pids["bot"] = p.pid
    pids["good"] = client("smtplib", GOOD_HELO)
    pids["hostile"] = client("raw", HOSTILE.hex())
    expect_eq(len(wait_sessions(pids["bot"], 6)), 6, "bot sessions reported")
    expect_eq(len(wait_sessions(pids["good"], 1)), 1, "good client sessions reported")
    expect_eq(len(wait_sessions(pids["hostile"], 1)), 1, "hostile session reported")


def test_json_ranks_bot_above_mailer():
    traffic()
    procs = top_json()
    order = [p["pid"] for p in procs]
    expect(pids["bot"] in order and pids["good"] in order, f"both pids in {order}")
    expect(order.index(pids["bot"]) < order.index(pids["good"]),
           f"bot {pids['bot']} ranked before good client {pids['good']}: {order}")
    for p in procs:
        expect_eq(set(p), CONTRACT_KEYS, f"keys of process {p.get('pid')}")
    bot = procs[order.index(pids["bot"])]
    good = procs[order.index(pids["good"])]
    expect_eq(bot["sessions"], 6, "bot sessions")
    expect_eq(bot["destinations"], 6, "bot destinations")
    expect_eq(bot["replies_rejected"], 3, "bot replies_rejected (even octets refuse)")
    expect_eq(bot["helos"], [BOT_HELO], "bot helos")
    expect_eq(bot["executable"], os.path.realpath(PY), "bot executable")
    expect_eq(good["sessions"], 1, "good sessions")
    expect_eq(good["destinations"], 1, "good destinations")
    expect_eq(good["replies_rejected"], 0, "good replies_rejected")
    expect_eq(good["helos"], [GOOD_HELO], "good helos")
    expect(bot["risk_score"] > good["risk_score"], f"risk {bot['risk_score']} > {good['risk_score']}")
    for r in ("HELO_NO_DOT", "FANOUT", "REJECTED"):
        expect(r in bot["rules"], f"{r} in bot rules {bot['rules']}")
    # -s re-sorts the document: pids ascending.
    by_pid = [p["pid"] for p in top_json("-s", "pid")]
    expect_eq(by_pid, sorted(by_pid), "order with -s pid")
    by_sess = [p["sessions"] for p in top_json("-s", "sessions")]
    expect_eq(by_sess, sorted(by_sess, reverse=True), "order with -s sessions")


def test_batch_table_has_no_escape_codes():
    expect(pids, "needs the traffic of the JSON case")
    t0 = time.monotonic()
    r = top("-b", "-n", "2", "-d", "0.2", "-o", "table")
    elapsed = time.monotonic() - t0
    expect_eq(r.returncode, 0, f"exit ({r.stderr.decode()[-200:]})")
    expect(b"\x1b" not in r.stdout, "no ESC byte in the batch table")
    out = r.stdout.decode()
    titles = [l for l in out.splitlines() if l.lstrip().startswith("PID ")]
    expect_eq(len(titles), 2, "iterations (column title lines)")
    expect(elapsed >= 0.2, f"-d 0.2 between iterations, took {elapsed:.2f} s")
    rows = [l for l in out.splitlines() if re.match(r"\s*%d " % pids["bot"], l)]
    expect_eq(len(rows), 2, "bot rows")
    expect(BOT_HELO in rows[0] and "FANOUT" in rows[0], f"bot row: {rows[0]!r}")
    expect("sort: risk" in out, "sort key in the header")
    evil = [l for l in out.splitlines() if "EVIL" in l]
    expect_eq(len(evil), 2, "hostile HELO rows (one line each)")
    expect(r"\x1b[2J\x1b[31mEVIL" in evil[0], f"hostile HELO escaped: {evil[0]!r}")
    expect(not any(l.lstrip("Z+ ") == "" and l for l in out.splitlines()), "no line of junk alone")
    # Not a terminal and no -b: the same plain table, once.
    r = top()
    expect_eq(r.returncode, 0, "exit without -b")
    expect(b"\x1b" not in r.stdout, "no ESC byte when stdout is a pipe")
    titles = [l for l in r.stdout.decode().splitlines() if l.lstrip().startswith("PID ")]
    expect_eq(len(titles), 1, "one iteration by default")


class Tmux:
    """A shell in a private tmux server, 160x40."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="swt-top-tmux-")
        os.chmod(self.dir, 0o755)

    def __enter__(self):
        subprocess.run(TMUX + ["kill-server"], capture_output=True)
        env = dict(os.environ, PS1="$ ", TERM="xterm-256color")
        subprocess.run(TMUX + ["new-session", "-d", "-x", "160", "-y", "40", "-s", "t",
                               "sh"], check=True, env=env)
        return self

    def __exit__(self, *a):
        subprocess.run(TMUX + ["kill-server"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def keys(self, *k):
        subprocess.run(TMUX + ["send-keys", "-t", "t"] + list(k), check=True)

    def line(self, text):
        self.keys("-l", text)
        self.keys("Enter")

    def capture(self, escapes=False):
        return subprocess.run(TMUX + ["capture-pane", "-p", "-t", "t"] + (["-e"] if escapes else []),
                              capture_output=True, check=True).stdout.decode("utf-8", "replace")

    def fmt(self, f):
        return subprocess.run(TMUX + ["display-message", "-p", "-t", "t", f],
                              capture_output=True, check=True, text=True).stdout.strip()

    def wait(self, pred, what, timeout=8):
        deadline = time.time() + timeout
        while True:
            screen = self.capture()
            if pred(screen):
                return screen
            if time.time() > deadline:
                raise AssertionError(f"{what} within {timeout} s; screen:\n{screen}")
            time.sleep(0.1)


def need_tmux():
    if not shutil.which("tmux"):
        raise Skip("tmux is not installed")


def test_interactive_view_in_tmux():
    need_tmux()
    expect(pids, "needs the traffic of the JSON case")
    nproc = len(top_json())
    with Tmux() as t:
        t.line(f"stty -g > {t.dir}/before")
        t.line(f"{AGENT} top --socket {agent.sock} -d 0.5; echo TOP-EXIT=$?")
        screen = t.wait(lambda s: "sort: risk" in s and str(pids["bot"]) in s, "the view")
        expect_eq(t.fmt("#{alternate_on}"), "1", "alternate screen while running")
        expect_eq(t.fmt("#{cursor_flag}"), "0", "cursor hidden while running")
        lines = screen.split("\n")
        expect(lines[0].startswith("smtpwatch top "), f"header first line: {lines[0]!r}")
        for word in ("host ", "agent monitor", "tc ", "window ", "sort: risk"):
            expect(word in lines[0], f"{word!r} in header {lines[0]!r}")
        for word in ("events ", "sessions ", "alerts ", "losses "):
            expect(word in lines[1], f"{word!r} in header {lines[1]!r}")
        titles = [i for i, l in enumerate(lines) if l.lstrip().startswith("PID ")]
        expect_eq(len(titles), 1, "column title lines")
        for col in ("USER", "CONTAINER", "EXECUTABLE", "SESS/MIN", "DESTS", "LAST HELO", "REJ",
                    "LISTS", "RISK", "RULES"):
            expect(col in lines[titles[0]], f"column {col}")
        rows = [l for l in lines[titles[0] + 1:] if l.strip()]
        # One line per process: a wrapped HELO would add lines that start without a pid.
        expect_eq(len(rows), nproc, f"table rows for {nproc} processes: {rows}")
        for l in rows:
            expect(re.match(r"\s*\d+ ", l), f"row starts with a pid: {l!r}")
            expect(len(l) <= 160, f"row fits the width: {len(l)}")
        evil = [l for l in rows if "EVIL" in l]
        expect_eq(len(evil), 1, "rows with the hostile HELO")
        expect(r"\x1b[2J\x1b[31mEVIL" in evil[0], f"hostile HELO shown escaped: {evil[0]!r}")
        expect(re.match(r"\s*%d " % pids["hostile"], evil[0]), "hostile row has its pid")
        bot_row = [l for l in rows if re.match(r"\s*%d " % pids["bot"], l)][0]
        expect(BOT_HELO in bot_row, f"bot row shows its HELO: {bot_row!r}")
        # Its rules overflow: cut to exactly the width, last column kept, marked.
        expect(len(bot_row) == 160 and bot_row.endswith("+"), f"bot row cut at 160: {bot_row!r}")
        # With escapes: the only SGR codes are the view's own (reverse title bar).
        esc = t.capture(escapes=True)
        sgr = set(re.findall(r"\x1b\[([0-9;]*)m", esc))
        red = [s for s in sgr if re.search(r"(^|;)(31|91)(;|$)|38;5;(1|9)(;|$)", s)]
        expect_eq(red, [], "red SGR codes on the screen")
        expect("\x1b[2J" not in esc, "no raw clear-screen sequence on the screen")
        expect(r"\x1b[2J" in esc, "the escaped text survives in the escaped capture")

        # SIGWINCH: the view follows a smaller window, rows cut to the new width.
        subprocess.run(TMUX + ["resize-window", "-t", "t", "-x", "90", "-y", "12"], check=True)
        small = t.wait(lambda s: any(len(l) == 90 for l in s.split("\n")) and
                       s.startswith("smtpwatch top "), "the view at 90 columns")
        expect(max(len(l) for l in small.split("\n")) <= 90, "lines within 90 columns")
        expect_eq(len(small.rstrip("\n").split("\n")), min(12, 4 + nproc), "lines at 12 rows")
        subprocess.run(TMUX + ["resize-window", "-t", "t", "-x", "160", "-y", "40"], check=True)

        t.keys("s")
        t.wait(lambda s: "sort: sessions" in s, "sort key after 's'")
        t.keys("s")
        t.wait(lambda s: "sort: rate" in s, "sort key after a second 's'")
        t.keys("p")
        t.wait(lambda s: "[PAUSED]" in s, "paused flag")
        t.keys("p")
        t.wait(lambda s: "[PAUSED]" not in s, "resumed")
        t.keys("Down")
        t.keys("PageDown")
        t.keys("Up")
        t.keys("q")
        screen = t.wait(lambda s: re.search(r"TOP-EXIT=\d", s), "top exit after 'q'")
        expect("TOP-EXIT=0" in screen, "exit code 0 after 'q'")
        expect_eq(t.fmt("#{alternate_on}"), "0", "alternate screen left")
        expect_eq(t.fmt("#{cursor_flag}"), "1", "cursor shown again")
        expect_eq(t.fmt("#{wrap_flag}"), "1", "autowrap restored")
        t.line(f"stty -g > {t.dir}/after")
        t.wait(lambda s: os.path.exists(f"{t.dir}/after") and os.path.getsize(f"{t.dir}/after") > 0,
               "stty after")
        with open(f"{t.dir}/before") as a, open(f"{t.dir}/after") as b:
            expect_eq(b.read(), a.read(), "terminal modes after 'q'")

        # SIGINT (^C) restores the terminal too.
        os.unlink(f"{t.dir}/after")
        t.line("clear")
        t.line(f"{AGENT} top --socket {agent.sock} -d 0.5; echo TOP-EXIT=$?")
        t.wait(lambda s: "sort: risk" in s, "the view again")
        t.keys("C-c")
        t.wait(lambda s: re.search(r"TOP-EXIT=\d", s), "top exit after ^C")
        expect_eq(t.fmt("#{alternate_on}"), "0", "alternate screen left after ^C")
        expect_eq(t.fmt("#{cursor_flag}"), "1", "cursor shown after ^C")
        t.line(f"stty -g > {t.dir}/after")
        t.wait(lambda s: os.path.exists(f"{t.dir}/after") and os.path.getsize(f"{t.dir}/after") > 0,
               "stty after ^C")
        with open(f"{t.dir}/before") as a, open(f"{t.dir}/after") as b:
            expect_eq(b.read(), a.read(), "terminal modes after ^C")


def test_interactive_session_ends_on_q():
    """top as the pane's only command: 'q' ends it, and with it the tmux session."""
    need_tmux()
    subprocess.run(TMUX + ["kill-server"], capture_output=True)
    try:
        subprocess.run(TMUX + ["new-session", "-d", "-x", "160", "-y", "40", "-s", "t",
                               f"{AGENT} top --socket {agent.sock} -d 0.5"], check=True)
        deadline = time.time() + 8
        while "sort: risk" not in subprocess.run(TMUX + ["capture-pane", "-p", "-t", "t"],
                                                 capture_output=True, text=True).stdout:
            expect(time.time() < deadline, "the view within 8 s")
            time.sleep(0.1)
        subprocess.run(TMUX + ["send-keys", "-t", "t", "q"], check=True)
        deadline = time.time() + 5
        while subprocess.run(TMUX + ["has-session", "-t", "t"], capture_output=True).returncode == 0:
            expect(time.time() < deadline, "the session ended within 5 s of 'q'")
            time.sleep(0.1)
    finally:
        subprocess.run(TMUX + ["kill-server"], capture_output=True)


def test_interactive_keeps_retrying_without_agent():
    need_tmux()
    missing = os.path.join(agent.dir, "missing.sock")
    with Tmux() as t:
        t.line(f"{AGENT} top --socket {missing} -d 0.3; echo TOP-EXIT=$?")
        t.wait(lambda s: "no agent answers on" in s and "retrying" in s, "unreachable header")
        time.sleep(1.2)  # several refreshes: still running
        screen = t.capture()
        expect(not re.search(r"TOP-EXIT=\d", screen), "top keeps running without an agent")
        expect(screen.startswith("smtpwatch top "), f"header still shown: {screen[:80]!r}")
        t.keys("q")
        screen = t.wait(lambda s: re.search(r"TOP-EXIT=\d", s), "top exit after 'q'")
        expect("TOP-EXIT=0" in screen, "exit code 0")
    r = subprocess.run([AGENT, "top", "-b", "--socket", missing], capture_output=True, timeout=10)
    expect_eq(r.returncode, 69, "batch exit without an agent")
    err = r.stderr.decode().strip()
    expect(err and "\n" not in err and "no agent answers" in err, f"one sentence: {err!r}")
    expect_eq(r.stdout, b"", "nothing on stdout")


def test_socket_refuses_non_root_peer():
    # The Agent's temp dir is 0700: let nobody reach the socket file itself.
    os.chmod(agent.dir, 0o755)
    r = top("-b", "-n", "1", user=True)
    err = r.stderr.decode().strip()
    expect_eq(r.returncode, 77, f"nobody's top exit (socket file 0600; {err})")
    expect(err and "\n" not in err and "permission denied" in err, f"one sentence: {err!r}")
    expect_eq(r.stdout, b"", "nothing on stdout")
    # With the file opened up, the agent's own peer-credential check must refuse.
    mode = os.stat(agent.sock).st_mode & 0o777
    expect_eq(mode & 0o077, 0, "socket mode's group and other bits")
    os.chmod(agent.sock, 0o666)
    try:
        r = top("-b", "-n", "1", "-o", "json", user=True)
        err = r.stderr.decode().strip()
        expect_eq(r.returncode, 77, f"nobody's top exit (peer credentials; {err})")
        expect("refused" in err and "for root" in err and "\n" not in err,
               f"the agent's refusal: {err!r}")
        expect_eq(r.stdout, b"", "nothing on stdout")
        s = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            AGENT, "status", "--socket", agent.sock], capture_output=True,
                           timeout=10)
        expect(s.returncode != 0, "nobody's status fails")
        expect(b'"ok"' not in s.stdout, "nobody's status shows no state")
    finally:
        os.chmod(agent.sock, mode)
    rc, st = agent.status()
    expect_eq(rc, 0, "root's status still answers")


def test_silent_client_does_not_stall():
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    partial = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.connect(agent.sock)
        partial.connect(agent.sock)
        partial.sendall(b'{"cmd":"sta')  # half a request, no newline
        time.sleep(0.1)
        for cmd in ([AGENT, "status", "--socket", agent.sock],
                    [AGENT, "top", "-b", "-o", "json", "--socket", agent.sock]):
            t0 = time.monotonic()
            r = subprocess.run(cmd, capture_output=True, timeout=10)
            took = time.monotonic() - t0
            expect_eq(r.returncode, 0, f"{cmd[1]} exit with a silent client open")
            expect(took < 1.0, f"{cmd[1]} answered in {took:.2f} s with a silent client open")
        # The agent drops the silent client at its deadline instead of holding it.
        silent.settimeout(6)
        expect_eq(silent.recv(100), b"", "silent client closed by the agent")
    finally:
        silent.close()
        partial.close()


def main():
    global ns, agent
    if not runnable(CASES):
        return 0
    rc = 0
    with Netns(NS) as n:
        mx = n.popen([PY, os.path.join(HERE, "mx_server.py"), "25", "100"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 5
            while not sh(n.cmd("ss -Hltn sport = :25"), check=False).strip():
                expect(time.time() < deadline, "mx_server did not listen on 25")
                time.sleep(0.05)
            with Agent() as a:
                ns, agent = n, a
                rc = run_cases(CASES)
                expect_eq(a.stop(), 0, "agent exit code")
        finally:
            mx.kill()
            mx.wait()
    return rc


CASES = [test_json_ranks_bot_above_mailer, test_batch_table_has_no_escape_codes,
         test_interactive_view_in_tmux, test_interactive_session_ends_on_q,
         test_interactive_keeps_retrying_without_agent, test_socket_refuses_non_root_peer,
         test_silent_client_does_not_stall]

if __name__ == "__main__":
    sys.exit(main())
