# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A correctly set up postfix relaying mail to an smtp-sink scores low and raises no alert.

A real postfix (master, pickup, cleanup, qmgr, smtp) runs from a private configuration in
a temp dir (its own main.cf, master.cf, queue and data directories and maillog file),
in a network namespace of its own, wired straight to the MX namespace:
  netns swt-pfrelay 10.214.2.10 --veth-- netns swt-pfmx 10.214.2.25 (smtp-sink on :25)
No host interface, route, sysctl or system postfix file is touched: the agent's cgroup
hooks see every namespace. Messages go in with postfix's own sendmail; what postfix's log
says about their delivery (which smtp pid sent which recipient) is the ground truth the
agent's smtp_session events are held against.
"""
import os
import pty
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
from harness import (check_schema, Agent, Netns, Skip, SmtpSink, cgroup2_root, expect, expect_eq,
                     get, need_root, run_cases, sh)

NS_PFX, NS_MX = "swt-pfrelay", "swt-pfmx"  # swt-pmx is test_policy.py's
PFX_IP, MX_IP = "10.214.2.10", "10.214.2.25"
HELO = "relay.test.example"
SENDER = "ops@relay.test.example"
RCPTS = ["alice@dest.test.example", "bob@dest.test.example", "carol@dest.test.example"]
DAEMON_DIR = "/usr/lib/postfix/sbin"
SMTP_EXE = os.path.realpath(os.path.join(DAEMON_DIR, "smtp"))
MASTER_EXE = os.path.realpath(os.path.join(DAEMON_DIR, "master"))
MASTER_CF = ("/usr/share/postfix/master.cf.dist", "/etc/postfix/master.cf.proto")
MAIN_CF = ("/usr/share/postfix/main.cf.dist", "/etc/postfix/main.cf.proto")
# Every behaviour rule of docs/rules.md: none fits one relay sending 3 messages to its relayhost.
BEHAVIOUR_RULES = {"HELO_VARIES", "NON_MTA_DIRECT", "FANOUT", "RATE", "PREGREET", "REJECTED",
                   "LISTED", "UNATTRIBUTED"}
# The only HELO rule a clean FQDN may trip: it is not this machine's own name.
ALLOWED_RULES = {"HELO_NOT_SELF"}
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt")
LOG_RE = re.compile(r"postfix/smtp\[(\d+)\]: [0-9A-Za-z]+: to=<([^>]*)>, relay=([^,]*), "
                    r".*status=(\w+)(?: \((.*)\))?")

relay = None
agent = None
delivered = {}  # recipient -> pid of the postfix smtp process that delivered it


def compat_level():
    """The compatibility_level this postfix ships in its own main.cf template."""
    for path in MAIN_CF:
        try:
            with open(path) as f:
                m = re.search(r"^compatibility_level\s*=\s*(\S+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    ver = sh("postconf -dh mail_version").strip()
    return ".".join(ver.split(".")[:2])


class Postfix:
    """A private postfix instance in netns ns: config, queue, data and log in a temp dir."""

    def __init__(self, ns):
        self.ns = ns
        self.dir = None
        self.started = False

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self):
        src = next((p for p in MASTER_CF if os.path.exists(p)), None)
        if src is None:
            raise Skip(f"no master.cf template ({' or '.join(MASTER_CF)})")
        self.dir = tempfile.mkdtemp(prefix="swt-postfix-")
        os.chmod(self.dir, 0o755)  # postfix's unprivileged daemons must reach it
        self.conf = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "maillog")
        for d in (self.conf, self.spool, self.data):
            os.mkdir(d, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, -1)
        os.chmod(self.data, 0o700)
        shutil.copy(src, os.path.join(self.conf, "master.cf"))
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(f"""# smtpwatch test_postfix_relay: a relay with a private everything.
compatibility_level = {compat_level()}
queue_directory = {self.spool}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.log}
maillog_file_prefixes = {self.dir}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = {HELO}
mydomain = test.example
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [{MX_IP}]:25
smtp_helo_name = $myhostname
# One message, one SMTP session: the test counts sessions against delivered messages.
smtp_connection_cache_on_demand = no
alias_maps =
alias_database =
biff = no
""")
        # No smtpd listener at all: this instance only sends. No chroot: a chroot jail would
        # need copies of /etc files inside the temp queue directory.
        sh(f"postconf -c {self.conf} -MX smtp/inet")
        sh(f"postconf -c {self.conf} -F '*/*/chroot = n'")
        got = sh(f"postconf -c {self.conf} -h queue_directory").strip()
        expect_eq(got, self.spool, "postconf reads the private main.cf")
        # Before postlogd runs, postfix says why it fails only to syslog and to a terminal.
        mfd, sfd = pty.openpty()
        try:
            self.started = True  # even a failed start may leave a master behind
            r = subprocess.run(["ip", "netns", "exec", self.ns.name, "postfix", "-c", self.conf,
                                "start"], stdin=subprocess.DEVNULL, stdout=sfd, stderr=sfd,
                               timeout=30)
        finally:
            os.close(sfd)
            self.start_out = read_available(mfd)
            os.close(mfd)
        if r.returncode != 0:
            raise Skip(f"postfix refused to start from a private config_directory "
                       f"(exit {r.returncode}): {self.problems()}")
        deadline = time.time() + 10
        while "daemon started -- version" not in self.read_log():
            if time.time() > deadline:
                raise Skip(f"postfix master did not report starting within 10 s: "
                           f"{self.problems()}")
            time.sleep(0.1)
        expect(f"configuration {self.conf}" in self.read_log(),
               f"master runs with the private configuration: {self.read_log()[-300:]!r}")
        self.master_pid = self.read_master_pid()

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def problems(self):
        lines = self.read_log().splitlines() + getattr(self, "start_out", "").splitlines()
        bad = [ln.strip() for ln in lines if "fatal" in ln or "error" in ln or "warning" in ln]
        return "; ".join((bad or lines or ["no log"])[-3:])[:400]

    def read_master_pid(self):
        with open(os.path.join(self.spool, "pid", "master.pid")) as f:
            return int(f.read().strip())

    def sendmail(self, rcpt, subject):
        msg = f"From: <{SENDER}>\nTo: <{rcpt}>\nSubject: {subject}\n\nsmtpwatch relay test\n"
        r = subprocess.run(["ip", "netns", "exec", self.ns.name, "/usr/sbin/sendmail",
                            "-C", self.conf, "-i", "-f", SENDER, rcpt], input=msg,
                           capture_output=True, text=True, timeout=15)
        expect_eq(r.returncode, 0, f"sendmail exit for {rcpt} ({r.stderr.strip()[-200:]})")

    def queued(self):
        n = 0
        for q in QUEUES:
            for _, _, files in os.walk(os.path.join(self.spool, q)):
                n += len(files)
        return n

    def deliveries(self):
        """(smtp pid, recipient, relay, status, why) for every delivery attempt in the log."""
        return [(int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5))
                for m in map(LOG_RE.search, self.read_log().splitlines()) if m]

    def __exit__(self, *a):
        if self.started:
            try:
                sh(f"ip netns exec {self.ns.name} postfix -c {self.conf} stop", check=False,
                   timeout=20)
            except subprocess.TimeoutExpired:
                pass
            pid = None
            try:
                pid = self.read_master_pid()
            except (OSError, ValueError):
                pass
            deadline = time.time() + 5
            while pid and alive(pid) and time.time() < deadline:
                time.sleep(0.1)
            # Leftovers: anything still in the namespace (master, idle smtp, postlogd).
            sh(f"ip netns pids {self.ns.name} | xargs -r kill -9", check=False)
            self.started = False
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def read_available(fd):
    """What a pty's master side holds now, without waiting for more."""
    os.set_blocking(fd, False)
    out = b""
    while len(out) < 65536:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EAGAIN: nothing more now; EIO: no writer left
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def relay_sessions():
    """The smtp_session events of the smtp processes postfix's log says delivered our mail."""
    pids = set(delivered.values())
    return [e for e in agent.read_events()
            if get(e, "event.action") == "smtp_session" and get(e, "process.pid") in pids]


def test_postfix_relays_to_sink():
    for i, rcpt in enumerate(RCPTS):
        relay.sendmail(rcpt, f"relay test {i + 1}")
    deadline = time.time() + 30
    while True:
        tries = relay.deliveries()
        bad = [t for t in tries if t[3] != "sent"]
        expect(not bad, "postfix could not deliver: " + "; ".join(
            f"{t[1]} {t[3]} via {t[2]}: {t[4]}" for t in bad[:2]))
        sent = {t[1]: t for t in tries}
        if set(sent) >= set(RCPTS) and relay.queued() == 0:
            break
        if time.time() > deadline:
            raise AssertionError(f"after 30 s: delivered {sorted(sent)}, {relay.queued()} "
                                 f"queue files left ({relay.problems()})")
        time.sleep(0.2)
    expect_eq(sorted(sent), sorted(RCPTS), "recipients delivered")
    for rcpt, (pid, _, via, _, _) in sent.items():
        expect_eq(via, f"{MX_IP}[{MX_IP}]:25", f"relay that took {rcpt}")
        delivered[rcpt] = pid


def test_sessions_attributed_to_postfix_smtp():
    expect(delivered, "no deliveries to check (see test_postfix_relays_to_sink)")
    deadline = time.time() + 10
    sessions = relay_sessions()
    while len(sessions) < len(RCPTS) and time.time() < deadline:
        time.sleep(0.2)
        sessions = relay_sessions()
    expect_eq(len(sessions), len(RCPTS), f"smtp_session events of postfix smtp pids "
              f"{sorted(set(delivered.values()))}")
    # As sent, with parameters: postfix adds ORCPT=rfc822;... (RFC 3461).
    rcpts = sorted(r.split(" ")[0] for e in sessions for r in (get(e, "smtp.rcpt_to") or []))
    expect_eq(rcpts, sorted(f"<{r}>" for r in RCPTS), "smtp.rcpt_to over the sessions")
    uid = str(pwd.getpwnam("postfix").pw_uid)
    for ev in sessions:
        pid = get(ev, "process.pid")
        expect_eq(get(ev, "process.executable"), SMTP_EXE, f"process.executable of {pid}")
        expect_eq(get(ev, "process.name"), "smtp", f"process.name of {pid}")
        expect_eq(get(ev, "user.name"), "postfix", f"user.name of {pid}")
        expect_eq(get(ev, "user.id"), uid, f"user.id of {pid}")
        expect_eq(get(ev, "process.parent.name"), "master", f"process.parent.name of {pid}")
        expect_eq(get(ev, "process.parent.pid"), relay.master_pid, f"process.parent.pid of {pid}")
        expect_eq(get(ev, "process.parent.executable"), MASTER_EXE,
                  f"process.parent.executable of {pid}")
        expect_eq(get(ev, "smtp.helo"), HELO, f"smtp.helo of {pid}")
        expect_eq(get(ev, "smtp.helo_verb"), "EHLO", f"smtp.helo_verb of {pid}")
        expect_eq(get(ev, "source.ip"), PFX_IP, f"source.ip of {pid}")
        expect_eq(get(ev, "destination.ip"), MX_IP, f"destination.ip of {pid}")
        expect_eq(get(ev, "destination.port"), 25, f"destination.port of {pid}")
        expect((get(ev, "smtp.mail_from") or "").startswith(f"<{SENDER}>"),
               f"smtp.mail_from of {pid}: {get(ev, 'smtp.mail_from')!r}")
        expect((get(ev, "smtp.banner") or "").startswith("smtp-sink"),
               f"smtp.banner of {pid}: {get(ev, 'smtp.banner')!r}")
        codes = [r["code"] for r in get(ev, "smtp.replies") or []]
        expect(codes and all(c < 400 for c in codes) and codes[-1] == 221,
               f"reply codes of {pid}: {codes}")


def test_relay_scores_low_and_never_alerts():
    sessions = relay_sessions()
    expect(sessions, "no relay sessions to score (see the cases above)")
    for ev in sessions:
        pid, rules, risk = get(ev, "process.pid"), get(ev, "rule.name"), get(ev, "event.risk_score")
        expect(isinstance(risk, int) and risk < 70, f"risk of {pid}: {risk} (rules {rules})")
        expect("NON_MTA_DIRECT" not in rules, f"NON_MTA_DIRECT on postfix's smtp ({pid}): {rules}")
        expect(not set(rules) & BEHAVIOUR_RULES, f"behaviour rules on {pid}: {rules}")
        expect(set(rules) <= ALLOWED_RULES, f"rules of {pid}: {rules}, allowed "
               f"{sorted(ALLOWED_RULES)}")
    time.sleep(1.0)  # an alert follows its session at once; give it time to be written
    pids = {get(e, "process.pid") for e in sessions}
    alerts = [e for e in agent.read_events() if get(e, "event.action") == "smtp_alert"
              and (get(e, "process.pid") in pids
                   or get(e, "process.parent.pid") == relay.master_pid)]
    expect_eq([(get(a, "process.pid"), get(a, "message")) for a in alerts], [],
              "alerts for postfix's processes")


CASES = [test_postfix_relays_to_sink, test_sessions_attributed_to_postfix_smtp,
         test_relay_scores_low_and_never_alerts]


def preflight():
    need_root()
    cgroup2_root()
    for path in ("/usr/sbin/postfix", "/usr/sbin/postconf", "/usr/sbin/sendmail",
                 "/usr/sbin/smtp-sink", SMTP_EXE, MASTER_EXE):
        if not os.access(path, os.X_OK):
            raise Skip(f"{path} is not installed")
    try:
        pwd.getpwnam("postfix")
        sh("getent group postdrop")
    except (KeyError, RuntimeError):
        raise Skip("the postfix user or the postdrop group does not exist")


def main():
    global relay, agent
    try:
        preflight()
        with Netns(NS_PFX) as pfx, Netns(NS_MX) as mx:
            # The veth pair lives only in the two namespaces: it goes away with them.
            sh(f"ip -n {NS_PFX} link add eth0 type veth peer name eth0 netns {NS_MX}")
            for ns, addr in ((NS_PFX, PFX_IP), (NS_MX, MX_IP)):
                sh(f"ip -n {ns} addr add {addr}/24 dev eth0")
                sh(f"ip -n {ns} link set eth0 up")
            with SmtpSink(mx, f"{MX_IP}:25"), Postfix(pfx) as p, Agent() as a:
                relay, agent = p, a
                rc = run_cases(CASES)
                expect_eq(a.stop(), 0, "agent exit code after SIGTERM")
                rc |= check_schema(a, "schema_postfix_relay")
    except Skip as e:
        for c in CASES:
            print(f"SKIP {c.__name__}: {e}", flush=True)
        return 0
    except Exception as e:  # noqa: BLE001 - setup or teardown broke: one verdict line
        print(f"FAIL postfix_relay_setup: {e}", flush=True)
        traceback.print_exc(file=sys.stdout)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
