# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Spam-bot evidence end to end: a bot scores high and raises exactly one alert;
postfix's smtp-source and a submission client with proper names score low."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (runnable, check_schema, PY, Agent, Netns, expect, expect_eq, get, run_cases,
                     session_of, sh)

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "swt-evid"
BOT_HELO = "DESKTOP-4F2K9QX"
ns = None
agent = None


def test_bot_scores_high_and_alerts_once():
    p = ns.popen([PY, os.path.join(HERE, "bot_client.py"), "25", BOT_HELO, "8"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=60)
    expect_eq(p.returncode, 0, f"bot exit ({err.strip()[-200:]})")
    sessions = []
    deadline = time.time() + 8
    while time.time() < deadline and len(sessions) < 8:
        sessions = [e for e in agent.read_events() if session_of(p.pid)(e)]
        time.sleep(0.2)
    expect_eq(len(sessions), 8, "bot sessions reported")
    worst = max(sessions, key=lambda e: get(e, "event.risk_score"))
    rules = set(r for e in sessions for r in get(e, "rule.name"))
    for r in ("HELO_NO_DOT", "HELO_GENERIC_WORD", "FANOUT", "REJECTED", "LISTED"):
        expect(r in rules, f"{r} in {sorted(rules)}")
    expect(get(worst, "event.risk_score") >= 80, f"risk {get(worst, 'event.risk_score')}")
    first = min(sessions, key=lambda e: get(e, "event.sequence"))
    expect("FANOUT" not in get(first, "rule.name"), "no FANOUT on the first destination")
    listed = [e for e in sessions if get(e, "smtp.listed_on")]
    expect_eq(len(listed), 4, "sessions refused by a blocklist (even octets)")
    expect_eq(get(listed[0], "smtp.listed_on"), ["spamhaus-zen"], "smtp.listed_on")
    expect_eq(get(listed[0], "smtp.listed_ip"), "127.0.0.1", "smtp.listed_ip")
    time.sleep(0.5)
    alerts = [e for e in agent.read_events()
              if get(e, "event.action") == "smtp_alert" and get(e, "process.pid") == p.pid]
    expect_eq(len(alerts), 1, "alerts for the bot")
    a = alerts[0]
    expect_eq(get(a, "event.kind"), "alert", "event.kind")
    expect_eq(get(a, "smtpwatch.alert.helos"), [BOT_HELO], "alert helos")
    expect("spamhaus-zen" in get(a, "smtpwatch.alert.listed_on"), "alert lists")
    expect(get(a, "smtpwatch.alert.destinations_in_window") >= 1, "alert destinations")
    expect(get(a, "smtpwatch.alert.sessions") >= 1, "alert sessions")
    expect(get(a, "process.executable") == os.path.realpath(PY), "alert names the executable")
    expect(any("blocked using zen.spamhaus.org" in r
               for r in get(a, "smtpwatch.alert.rejections")), "alert keeps the refusal text")


def test_smtp_source_scores_low():
    name = "relay.mail.test.example"
    p = ns.popen(["smtp-source", "-M", name, "-f", "ops@test.example", "-t",
                  "user@test.example", "-m", "3", "-s", "1", "127.0.0.1:25"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=30)
    expect_eq(p.returncode, 0, f"smtp-source exit ({err.strip()[-200:]})")
    ev = agent.wait_for(session_of(p.pid), what="smtp-source session")
    expect_eq(get(ev, "smtp.helo"), name, "smtp.helo")
    expect(get(ev, "event.risk_score") < 70, f"risk {get(ev, 'event.risk_score')} "
           f"rules {get(ev, 'rule.name')}")
    time.sleep(0.5)
    alerts = [e for e in agent.read_events()
              if get(e, "event.action") == "smtp_alert" and get(e, "process.pid") == p.pid]
    expect_eq(alerts, [], "alerts for smtp-source")


def test_submission_client_scores_low():
    p = ns.popen([PY, os.path.join(HERE, "smtp_client.py"), "smtplib", "127.0.0.1", "587",
                  "workstation.corp.test.example"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    expect_eq(p.returncode, 0, f"client exit ({err.strip()[-200:]})")
    ev = agent.wait_for(session_of(p.pid), what="submission session")
    expect_eq(get(ev, "destination.port"), 587, "destination.port")
    expect(get(ev, "event.risk_score") < 70, f"risk {get(ev, 'event.risk_score')} "
           f"rules {get(ev, 'rule.name')}")
    expect("NON_MTA_DIRECT" not in get(ev, "rule.name"), "submission is not direct-to-MX")


def main():
    global ns, agent
    if not runnable(CASES):
        return 0
    with Netns(NS) as n:
        servers = [n.popen([PY, os.path.join(HERE, "mx_server.py"), str(port), "40"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for port in (25, 587)]
        try:
            for port in (25, 587):
                deadline = time.time() + 5
                while not sh(n.cmd(f"ss -Hltn sport = :{port}"), check=False).strip():
                    expect(time.time() < deadline, f"mx_server did not listen on {port}")
                    time.sleep(0.05)
            with Agent() as a:
                ns, agent = n, a
                rc = run_cases(CASES)
                expect_eq(a.stop(), 0, "agent exit code")
                rc |= check_schema(a, "schema_evidence")
        finally:
            for s in servers:
                s.kill()
                s.wait()
    return rc


CASES = [test_bot_scores_high_and_alerts_once, test_smtp_source_scores_low,
         test_submission_client_scores_low]

if __name__ == "__main__":
    sys.exit(main())
