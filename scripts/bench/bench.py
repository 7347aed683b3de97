#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Measurement steps and the report of `make bench` (scripts/bench/run.sh drives them).

Each step prints one JSON line (run.sh appends it to the raw file); `report` turns
the raw file into the table and build/bench.json. Every subprocess has a timeout
and every loop a bound. Traffic goes to 127.0.0.1 only.
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SW = os.path.join(ROOT, "build", "smtpwatch")
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"
KERNEL_LOSSES = ("ring_full", "flow_map_full", "wire_map_full", "exec_map_full")
AGENT_LOSSES = ("sessions_evicted", "processes_evicted", "orphan_data", "bad_records",
                "stream_errors", "write_errors")


def emit(rec):
    print(json.dumps(rec, sort_keys=True), flush=True)


# ---- /proc and bpf ---------------------------------------------------------------

def proc_sample(pid):
    """CPU (ns from schedstat, and utime+stime ticks), context switches, memory."""
    s = {"cpu_ns": 0, "vol_cs": 0, "nonvol_cs": 0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                s["cpu_ns"] += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        s["vol_cs"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        s["nonvol_cs"] += int(line.split()[1])
        except FileNotFoundError:
            continue  # a thread that just ended
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    s["ticks"] = int(fields[11]) + int(fields[12])  # utime + stime
    s["tick_hz"] = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:", "RssAnon:", "RssFile:")):
                s[line.split(":")[0].lower() + "_kb"] = int(line.split()[1])
    # BPF maps mmapped by the consumer (the ring buffer): RSS counts its data pages twice.
    s["bpf_map_rss_kb"] = 0
    try:
        with open(f"/proc/{pid}/smaps") as f:
            in_map = False
            for line in f:
                if "-" in line.split()[0] and len(line.split()) >= 5 and not line.split()[0].endswith(":"):
                    in_map = line.rstrip().endswith("anon_inode:bpf-map")
                elif in_map and line.startswith("Rss:"):
                    s["bpf_map_rss_kb"] += int(line.split()[1])
    except OSError:
        pass
    return s


def lo_packets():
    """Packets sent on this netns's loopback (/proc/net/dev is per netns)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[9])
    return 0


def sys_busy():
    """Busy CPU ticks of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # minus idle and iowait


def foreign_agents(own_pid=None):
    """smtpwatch agents other than ours: their connect programs are loaded."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                             timeout=20).stdout
        ids = {p["id"] for p in json.loads(out) if p.get("name") == "sw_connect4"}
    except (ValueError, OSError, subprocess.SubprocessError):
        return None
    if own_pid:
        ids -= set(prog_ids(own_pid))
    return len(ids)


def proc_delta(a, b):
    d = {k: b[k] - a[k] for k in ("cpu_ns", "vol_cs", "nonvol_cs", "ticks")}
    d["tick_hz"] = b["tick_hz"]
    return d


def prog_ids(pid):
    """BPF programs the process holds, from its fds' fdinfo."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(ids)


def bpf_runtime(ids):
    """Summed run_time_ns and run_cnt of the programs (bpf_stats must be on)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    t = n = 0
    names = {}
    for p in json.loads(out):
        if p.get("id") in ids:
            t += p.get("run_time_ns", 0)
            n += p.get("run_cnt", 0)
            names[p.get("name", str(p.get("id")))] = p.get("run_time_ns", 0)
    return t, n, names


class BpfStats:
    """kernel.bpf_stats_enabled=1 for the duration of a with-block, restored after."""

    def __enter__(self):
        with open(BPF_STATS) as f:
            self.saved = f.read().strip()
        with open(BPF_STATS, "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open(BPF_STATS, "w") as f:
            f.write(self.saved)
        return False


def status(sock):
    r = subprocess.run([SW, "status", "--socket", sock], capture_output=True, text=True,
                       timeout=10)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def losses(st):
    if not st:
        return None
    lo = st.get("losses", {})
    return {k: lo.get(k, 0) for k in KERNEL_LOSSES + AGENT_LOSSES}


def loss_delta(a, b):
    if a is None or b is None:
        return None
    return {k: b[k] - a[k] for k in a}


# ---- the agent's output -------------------------------------------------------------

class Tail:
    """Reads the lines appended to a file since construction."""

    def __init__(self, path):
        self.path = path
        self.off = os.path.getsize(path) if os.path.exists(path) else 0
        self.part = b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return []
        self.off += len(data)
        data = self.part + data
        *whole, self.part = data.split(b"\n")
        return whole


def sessions_in(lines):
    out = []
    for line in lines:
        if b'"smtp_session"' not in line:
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event", {}).get("action") == "smtp_session":
            out.append(e)
    return out


# ---- steps ----------------------------------------------------------------------------

def cmd_flood(a):
    tail = Tail(a.output) if a.output else None
    st0 = losses(status(a.socket)) if a.socket else None
    cpu_pid = a.agent_pid or a.cpu_pid
    p0 = proc_sample(cpu_pid) if cpu_pid else None
    stats = BpfStats() if a.bpf_stats else None
    ids = prog_ids(a.agent_pid) if a.bpf_stats else []
    rec = {"kind": "flood", "tag": a.tag, "mode": a.mode, "rep": a.rep, "sent": a.sessions,
           "parallel": a.parallel, "foreign": foreign_agents(a.agent_pid)}
    if p0:
        rec["start_mem"] = {k: p0.get(k) for k in ("vmhwm_kb", "vmrss_kb", "rssanon_kb", "bpf_map_rss_kb")}
        # The peak of the flood, not of the BPF load before it (libbpf parses the
        # kernel's BTF then): "5" resets VmHWM to the current RSS (proc(5)).
        try:
            with open(f"/proc/{cpu_pid}/clear_refs", "w") as f:
                f.write("5")
            rec["hwm_reset"] = True
        except OSError:
            rec["hwm_reset"] = False
    busy0 = sys_busy()
    if stats:
        stats.__enter__()
    try:
        bt0 = bpf_runtime(ids)[0] if stats else 0
        t0 = time.monotonic()
        p = subprocess.Popen(["smtp-source", "-s", str(a.parallel), "-m", str(a.sessions),
                              f"127.0.0.1:{a.port}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate(timeout=10)
            rec["timeout"] = True
        t1 = time.monotonic()
        rec["sys_busy_ticks"] = sys_busy() - busy0
        rec.update(seconds=t1 - t0, rate=a.sessions / (t1 - t0), source_rc=p.returncode,
                   source_errors=[l for l in err.splitlines() if l.strip()][:5])
        # The agent writes a session within 2 s of its close: wait for all, bounded.
        reported = reported_any = 0
        if tail:
            deadline = time.monotonic() + a.flush
            while True:
                for e in sessions_in(tail.lines()):
                    if e.get("destination", {}).get("port") == a.port:
                        reported_any += 1
                        if e.get("process", {}).get("pid") == p.pid:
                            reported += 1
                if reported >= a.sessions or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            rec.update(reported=reported, reported_any_pid=reported_any,
                       flush_seconds=time.monotonic() - t1)
        if stats:
            rec["bpf_ns"] = bpf_runtime(ids)[0] - bt0
    finally:
        if stats:
            stats.__exit__(None, None, None)
    if p0:
        p1 = proc_sample(cpu_pid)
        rec["cpu"] = proc_delta(p0, p1)
        rec["vmhwm_kb"] = p1.get("vmhwm_kb")
        rec["mem"] = {k: p1.get(k) for k in ("vmhwm_kb", "vmrss_kb", "rssanon_kb", "bpf_map_rss_kb")}
    if a.socket:
        rec["losses"] = loss_delta(st0, losses(status(a.socket)))
    emit(rec)


def wait_settled(pid, max_wait=8.0):
    """Until the agent has worked off its backlog: < 2 ms CPU in 250 ms (bounded)."""
    t0 = time.monotonic()
    prev = proc_sample(pid)["cpu_ns"]
    for _ in range(int(max_wait / 0.25)):
        time.sleep(0.25)
        cur = proc_sample(pid)["cpu_ns"]
        if cur - prev < 2e6:
            break
        prev = cur
    return time.monotonic() - t0


def cmd_connect(a):
    p0 = proc_sample(a.agent_pid) if a.agent_pid else None
    r = subprocess.run([os.path.join(ROOT, "build", "bench", "bench_connect"), "--port",
                        str(a.port), "--count", str(a.count), "--timeout", "120"],
                       capture_output=True, text=True, timeout=150)
    rec = {"kind": "connect", "mode": a.mode, "rep": a.rep, "port": a.port,
           "foreign": foreign_agents(a.agent_pid)}
    try:
        rec.update(json.loads(r.stdout))
    except ValueError:
        rec["error"] = r.stderr.strip()[:300]
    if r.returncode:
        rec["error"] = r.stderr.strip()[:300]
    if p0:
        # The agent's work for these connections, including what it does after the loop.
        wait_settled(a.agent_pid)
        d = proc_delta(p0, proc_sample(a.agent_pid))
        rec["agent_cpu_us_per_conn"] = d["cpu_ns"] / 1e3 / a.count
        rec["agent_wakeups_per_conn"] = d["vol_cs"] / a.count
    emit(rec)


def cmd_iperf(a):
    cmd = ["iperf3", "-c", "127.0.0.1", "-p", str(a.port), "-t", str(a.seconds), "-O", "1", "-J"]
    if a.test == "small":
        cmd += ["-l", "64", "-N"]
    rec = {"kind": "iperf", "mode": a.mode, "rep": a.rep, "test": a.test,
           "foreign": foreign_agents(a.agent_pid)}
    stats = BpfStats() if a.bpf_stats else None
    ids = prog_ids(a.agent_pid) if a.bpf_stats else []
    if stats:
        stats.__enter__()
    try:
        b0 = bpf_runtime(ids) if stats else None
        pk0 = lo_packets()
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.seconds + 30)
        wall = time.monotonic() - t0
        rec["lo_packets_per_s"] = (lo_packets() - pk0) / wall
        b1 = bpf_runtime(ids) if stats else None
    finally:
        if stats:
            stats.__exit__(None, None, None)
    try:
        j = json.loads(r.stdout)
        rec["bps"] = j["end"]["sum_received"]["bits_per_second"]
    except (ValueError, KeyError):
        rec["error"] = (r.stdout + r.stderr).strip()[-300:]
    if stats:
        ncpu = os.cpu_count()
        rec.update(wall=wall, ncpu=ncpu, bpf_ns=b1[0] - b0[0], bpf_runs=b1[1] - b0[1],
                   share=(b1[0] - b0[0]) / (wall * 1e9 * ncpu),
                   by_prog={k: v - b0[2].get(k, 0) for k, v in b1[2].items()})
    emit(rec)


def cmd_idle(a):
    """Windows of a.seconds until one sees no event at all (others' SMTP traffic wakes
    the agent too: the cgroup hooks see every netns), at most a.tries windows."""
    for i in range(a.tries):
        tail = Tail(a.output)
        foreign = foreign_agents(a.agent_pid)
        p0 = proc_sample(a.agent_pid)
        time.sleep(a.seconds)
        p1 = proc_sample(a.agent_pid)
        d = proc_delta(p0, p1)
        n = len(tail.lines())
        if n == 0 or i == a.tries - 1:
            break
        print(f"idle window {i + 1}: {n} lines written (other traffic); again", file=sys.stderr)
    emit({"kind": "idle", "seconds": a.seconds, "cpu": d, "lines_written": n, "windows": i + 1,
          "foreign": foreign, "wakeups_per_s": d["vol_cs"] / a.seconds,
          "cpu_ms_per_s": d["cpu_ns"] / 1e6 / a.seconds})


def cmd_settle(a):
    print(f"settled in {wait_settled(a.agent_pid, a.max_wait):.2f} s", file=sys.stderr)


def cmd_quiet(a):
    """Wait (bounded) while other smtpwatch agents are loaded; print the seconds waited."""
    t0 = time.monotonic()
    n = foreign_agents()
    while n and time.monotonic() - t0 < a.max_wait:
        time.sleep(0.5)
        n = foreign_agents()
    print(f"{time.monotonic() - t0:.0f} {n}")


def smtp_exchange(port, helo, timeout):
    """One short SMTP session; returns the wall-clock time of the close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        f = s.makefile("rb")

        def reply():
            for _ in range(50):  # a reply has at most a few lines
                line = f.readline()
                if not line or line[3:4] != b"-":
                    return line
            return b""

        reply()  # banner
        s.sendall(b"EHLO " + helo.encode() + b"\r\n")
        reply()
        s.sendall(b"QUIT\r\n")
        reply()
        f.close()
    finally:
        s.close()
    return time.time()


def rfc3339(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def pct(v, q):
    v = sorted(v)
    if not v:
        return None
    k = min(len(v) - 1, max(0, int(round(q / 100 * len(v) + 0.5)) - 1))
    return v[k]


def cmd_latency(a):
    """Sessions at a steady pace; a poller notes when each one's line appears."""
    tag = f"bench-lat-{os.getpid()}-"
    tail = Tail(a.output)
    closed, seen, ends = {}, {}, {}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            now = time.time()
            for e in sessions_in(tail.lines()):
                h = e.get("smtp", {}).get("helo") or ""
                if h.startswith(tag) and h not in seen:
                    seen[h] = now
                    ends[h] = e.get("event", {}).get("end")
            time.sleep(a.poll)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    errors = 0
    t_next = time.monotonic()
    for i in range(a.sessions):
        t_next += a.interval
        try:
            closed[f"{tag}{i}"] = smtp_exchange(a.port, f"{tag}{i}", 5)
        except OSError:
            errors += 1
        time.sleep(max(0, t_next - time.monotonic()))
    deadline = time.monotonic() + a.wait
    while len(seen) < len(closed) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    th.join(timeout=5)
    from_kernel, from_close = [], []
    for h, t in seen.items():
        if ends.get(h):
            from_kernel.append((t - rfc3339(ends[h])) * 1e3)
        if h in closed:
            from_close.append((t - closed[h]) * 1e3)
    emit({"kind": "latency", "sessions": a.sessions, "errors": errors, "seen": len(seen),
          "poll_ms": a.poll * 1e3,
          "kernel_to_line_ms": {"p50": pct(from_kernel, 50), "p99": pct(from_kernel, 99),
                                "max": max(from_kernel, default=None)},
          "close_to_line_ms": {"p50": pct(from_close, 50), "p99": pct(from_close, 99),
                               "max": max(from_close, default=None)}})


def cmd_record(a):
    """A free-form record from run.sh: key=value pairs (numbers where they parse)."""
    rec = {}
    for kv in a.pairs:
        k, _, v = kv.partition("=")
        try:
            rec[k] = json.loads(v)
        except ValueError:
            rec[k] = v
    emit(rec)


def cmd_agentinfo(a):
    st = status(a.socket)
    p = proc_sample(a.agent_pid)
    emit({"kind": "agentinfo", "tag": a.tag, "mode": "on", "rep": a.rep, "losses": losses(st),
          "vmhwm_kb": p.get("vmhwm_kb"), "counters": (st or {}).get("counters")})


# ---- report -------------------------------------------------------------------------

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def paired_ratios(recs, key, **match):
    """Median over reps of (with agent / without), pairing the same rep."""
    on, off = {}, {}
    for r in recs:
        if all(r.get(k) == v for k, v in match.items()) and r.get(key) is not None:
            (on if r["mode"] == "on" else off)[r["rep"]] = r[key]
    ratios = [on[k] / off[k] for k in sorted(on) if k in off and off[k]]
    return (med(ratios), ratios)


def fig(name, value, unit, goal, ok, **extra):
    f = {"name": name, "value": value, "unit": unit, "goal": goal, "ok": ok}
    f.update(extra)
    return f


def missing(name, unit, goal, reason):
    return fig(name, None, unit, goal, None, reason=reason)


def cmd_report(a):
    raw = []
    if os.path.exists(a.raw):
        with open(a.raw) as f:
            for line in f:
                try:
                    raw.append(json.loads(line))
                except ValueError:
                    pass
    skips = {r["fig"]: r["reason"] for r in raw if r.get("kind") == "skip"}
    figs = []

    def rnd(v, n=3):
        return None if v is None else round(v, n)

    # 1. test_run costs
    tc = None
    if a.tc and os.path.exists(a.tc):
        try:
            with open(a.tc) as f:
                tc = {c["name"]: c for c in json.load(f)["cases"]}
        except (ValueError, KeyError):
            tc = None
    rows = [("tc_tcp_other", "tc: non-SMTP TCP packet, minus empty", "<= 3 ns", 3),
            ("tc_udp", "tc: UDP packet, minus empty", "<= 3 ns", 3),
            ("tc_smtp_capture", "tc: SMTP payload packet (capture), minus empty", "<= 120 ns", 120),
            ("tc_smtp_untracked", "tc: port-25 segment of an untracked flow, minus empty", "info", None),
            ("cgroup_skb_tcp_other", "cgroup_skb: non-SMTP TCP packet, minus empty", "info", None),
            ("cgroup_skb_udp", "cgroup_skb: UDP packet, minus empty", "info", None)]
    for key, name, goal, limit in rows:
        c = (tc or {}).get(key)
        if not c:
            figs.append(missing(name, "ns", goal, skips.get("tc", "bench_tc did not run; see build/bench/run.log")))
            continue
        v = c["delta_ns"]
        figs.append(fig(name, rnd(v, 1), "ns", goal, (v <= limit) if limit is not None else None,
                        note=f"median of per-round differences; range {c['delta_min_ns']:.1f}..{c['delta_max_ns']:.1f} ns; "
                             f"kernel-timer median {c['delta_kernel_ns']:.1f} ns" +
                             ("" if limit is not None else "; no budget in issue 6")))
    if tc and "tc_empty" in tc:
        figs.append(fig("tc: empty program (test_run floor)", rnd(tc["tc_empty"]["median_ns"], 1), "ns",
                        "info", None, note="the floor every figure above is taken from"))

    def others(recs):
        """How many runs had other smtpwatch agents loaded, as a note suffix."""
        n = sum(1 for r in recs if r.get("foreign"))
        return f"; other agents loaded in {n} of {len(recs)} runs" if n else ""

    # 2. iperf3
    iperf = [r for r in raw if r.get("kind") == "iperf" and r.get("mode") in ("on", "off")]
    for test, goal, limit in (("bulk", ">= 0.99", 0.99), ("small", ">= 0.97", 0.97)):
        name = f"iperf3 {'bulk' if test == 'bulk' else '64-byte writes, -N'}: throughput with agent / without"
        m, ratios = paired_ratios(iperf, "bps", test=test)
        if m is None:
            figs.append(missing(name, "ratio", goal, skips.get("iperf", "no paired iperf3 runs; see build/bench/run.log")))
        else:
            sel = [r for r in iperf if r.get("test") == test and r.get("bps")]
            gb = [r["bps"] / 1e9 for r in sel]
            pps = [r["lo_packets_per_s"] for r in sel if r.get("lo_packets_per_s")]
            figs.append(fig(name, rnd(m), "ratio", goal, m >= limit,
                            note=f"median of {len(ratios)} paired ratios {[round(x, 3) for x in ratios]}; "
                                 f"{min(gb):.3g}..{max(gb):.3g} Gbit/s"
                                 + (f"; lo packets/s per run {[round(x) for x in pps]}" if pps else "")
                                 + ("; loopback merges 64-byte writes into large segments whenever the writer "
                                    "outruns the path, so this mostly measures the write path" if test == "small" else "")
                                 + others(sel)))
    for test in ("bulk", "small"):
        name = f"iperf3 {'bulk' if test == 'bulk' else '64-byte writes'}: CPU share in the agent's BPF programs"
        sh = [r for r in raw if r.get("kind") == "iperf" and r.get("mode") == "stats" and r.get("test") == test
              and r.get("share") is not None]
        if not sh:
            figs.append(missing(name, "%", "info", skips.get("iperf", "no bpf_stats run; see build/bench/run.log")))
        else:
            r = sh[0]
            top = sorted(r["by_prog"].items(), key=lambda kv: -kv[1])[:4]
            figs.append(fig(name, rnd(r["share"] * 100, 2), "%", "info", None,
                            note=f"run_time_ns {r['bpf_ns']} / ({r['wall']:.1f} s x {r['ncpu']} CPUs), "
                                 f"{r['bpf_runs']} runs ({r['bpf_ns'] / max(1, r['bpf_runs']):.0f} ns each), "
                                 f"{r.get('lo_packets_per_s', 0):.0f} lo packets/s; by program: " +
                                 ", ".join(f"{k} {v / 1e6:.0f} ms" for k, v in top) +
                                 "; bpf_stats adds its own clock reads; no budget in issue 6" + others(sh)))

    # 3. connect rate
    conn = [r for r in raw if r.get("kind") == "connect" and not r.get("error")]
    for port, label, goal, limit in ((2525, "watched :2525", ">= 0.98", 0.98),
                                     (8025, "unwatched :8025", ">= 0.99", 0.99)):
        name = f"connect+accept+close rate, {label}: with agent / without"
        m, ratios = paired_ratios(conn, "rate", port=port)
        if m is None:
            figs.append(missing(name, "ratio", goal, "no paired connect runs; see build/bench/run.log"))
        else:
            sel = [r for r in conn if r.get("port") == port]
            on_r = [r["rate"] for r in sel if r["mode"] == "on"]
            off_r = [r["rate"] for r in sel if r["mode"] == "off"]
            cpu = [r["agent_cpu_us_per_conn"] for r in sel if r.get("agent_cpu_us_per_conn") is not None]
            wk = [r["agent_wakeups_per_conn"] for r in sel if r.get("agent_wakeups_per_conn") is not None]
            figs.append(fig(name, rnd(m), "ratio", goal, m >= limit,
                            note=f"median of {len(ratios)} paired ratios {[round(x, 3) for x in ratios]}; "
                                 f"median {med(on_r):.0f}/s with, {med(off_r):.0f}/s without; 10,000 each"
                                 + (f"; agent CPU {med(cpu):.1f} us and {med(wk):.2f} wakeups per connection"
                                    if cpu else "") + others(sel)))

    # 4. flood
    fl = [r for r in raw if r.get("kind") == "flood" and r.get("tag") == "main"]
    on = [r for r in fl if r["mode"] == "on"]
    name = "SMTP flood (smtp-source -s 20): sessions/s with agent / without"
    m, ratios = paired_ratios(fl, "rate")
    if m is None:
        figs.append(missing(name, "ratio", ">= 0.97", skips.get("flood", "no paired floods; see build/bench/run.log")))
    else:
        figs.append(fig(name, rnd(m), "ratio", ">= 0.97", m >= 0.97,
                        note=f"median of {len(ratios)} paired ratios {[round(x, 3) for x in ratios]}; median "
                             f"{med([r['rate'] for r in on]):.0f}/s with, "
                             f"{med([r['rate'] for r in fl if r['mode'] == 'off']):.0f}/s without; 5,000 sessions each" + others(fl)))
    if on:
        sent = sum(r["sent"] for r in on)
        rep = sum(r.get("reported", 0) for r in on)
        anyp = sum(r.get("reported_any_pid", 0) for r in on)
        figs.append(fig("SMTP flood: sessions reported / sessions sent", rnd(rep / sent, 4), "ratio", "= 1.0",
                        rep == sent, note=f"{rep} of {sent} smtp_session lines with smtp-source's pid "
                                          f"({anyp} to :2525 with any pid); per flood "
                                          f"{[r.get('reported') for r in on]} of {on[0]['sent']}"))
        kl = [sum((r.get("losses") or {}).get(k, 0) for k in KERNEL_LOSSES) for r in on]
        detail = {k: sum((r.get("losses") or {}).get(k, 0) for r in on) for k in KERNEL_LOSSES + AGENT_LOSSES}
        figs.append(fig("SMTP flood: kernel-side losses", sum(kl), "records", "= 0", sum(kl) == 0,
                        note=f"per flood {kl}; all counters over {len(on)} floods: " +
                             ", ".join(f"{k} {v}" for k, v in detail.items() if v) if sum(detail.values())
                        else f"ring_full, flow_map_full, wire_map_full, exec_map_full all 0 over {len(on)} floods; "
                             f"agent-side losses 0"))
        cpu = [r["cpu"]["cpu_ns"] / 1e6 / (r["sent"] / 1000) for r in on if r.get("cpu")]
        ticks = [r["cpu"]["ticks"] * 1000 / r["cpu"]["tick_hz"] / (r["sent"] / 1000) for r in on if r.get("cpu")]
        if cpu:
            v = med(cpu)
            figs.append(fig("SMTP flood: agent CPU per 1,000 sessions", rnd(v, 1), "ms", "<= 15", v <= 15,
                            note=f"median; schedstat from the flood's start to its last line written; per flood "
                                 f"{[round(x, 1) for x in cpu]}; utime+stime agrees: {[round(x) for x in ticks]}; "
                                 f"{med([r['cpu']['vol_cs'] / r['sent'] for r in on if r.get('cpu')]):.2f} "
                                 f"consumer wakeups per session"))
        mem = [r["mem"] for r in on if r.get("mem")]
        if mem:
            peak = max(mem, key=lambda x: x["vmhwm_kb"])
            v = peak["vmhwm_kb"] * 1024 / 1e6
            st = [r["start_mem"] for r in on if r.get("start_mem")]
            reset = all(r.get("hwm_reset") for r in on if r.get("mem"))
            ring_kb = peak["bpf_map_rss_kb"] or 0
            figs.append(fig("SMTP flood: agent peak RSS during the flood (VmHWM)", rnd(v, 1), "MB", "<= 12", v <= 12,
                            note=f"10^6 bytes, fresh agent per flood, "
                                 + ("VmHWM reset just before the flood (so the BPF load is not in it); " if reset else
                                    "VmHWM NOT reset (includes the BPF load); ")
                                 + f"after the flood: VmRSS {peak['vmrss_kb']} kB of which the mmapped ring buffer "
                                 f"{ring_kb} kB (libbpf maps its data pages twice, so they count twice: "
                                 f"{(peak['vmhwm_kb'] - ring_kb // 2) * 1024 / 1e6:.1f} MB counting them once) "
                                 f"and RssAnon {peak['rssanon_kb']} kB; at load time VmHWM reached "
                                 f"{max(x['vmhwm_kb'] for x in st) if st else '?'} kB (libbpf reads the kernel's BTF)"))
    else:
        for n, u, g in (("SMTP flood: sessions reported / sessions sent", "ratio", "= 1.0"),
                        ("SMTP flood: kernel-side losses", "records", "= 0"),
                        ("SMTP flood: agent CPU per 1,000 sessions", "ms", "<= 15"),
                        ("SMTP flood: agent peak RSS during the flood (VmHWM)", "MB", "<= 12")):
            figs.append(missing(n, u, g, skips.get("flood", "no flood with the agent; see build/bench/run.log")))

    # 5. idle
    idle = [r for r in raw if r.get("kind") == "idle"]
    if idle:
        r = idle[0]
        clean = r["lines_written"] == 0
        figs.append(fig("idle: consumer wakeups", rnd(r["wakeups_per_s"], 2), "per s", "<= 1",
                        (r["wakeups_per_s"] <= 1) if clean else None,
                        note=f"voluntary context switches over {r['seconds']:.0f} s, window {r.get('windows', 1)}"
                             + ("; no event was written meanwhile" if clean else
                                f"; NOT IDLE: {r['lines_written']} lines were written meanwhile (other processes' SMTP "
                                f"traffic: the cgroup hooks see every netns), so no verdict"),
                        **({} if clean else {"reason": "the machine was not idle of SMTP traffic in any window"})))
        figs.append(fig("idle: agent CPU", rnd(r["cpu_ms_per_s"], 3), "ms/s", "info", None,
                        note="schedstat; no budget in issue 6" + ("" if clean else "; includes others' sessions")))
    else:
        figs.append(missing("idle: consumer wakeups", "per s", "<= 1", skips.get("idle", "not measured; see build/bench/run.log")))
        figs.append(missing("idle: agent CPU", "ms/s", "info", skips.get("idle", "not measured")))

    # 6. tcpdump
    td = [r for r in raw if r.get("kind") == "flood" and r.get("tag") == "tcpdump" and r.get("cpu")]
    ag = [r for r in raw if r.get("kind") == "flood" and r.get("tag") == "vs-tcpdump" and r.get("cpu")]
    name = "agent CPU / tcpdump -i any -w CPU, same flood"
    if td and ag:
        tcpd = med([r["cpu"]["cpu_ns"] / r["sent"] for r in td])
        agent_total = med([(r["cpu"]["cpu_ns"] + r.get("bpf_ns", 0)) / r["sent"] for r in ag])
        agent_proc = med([r["cpu"]["cpu_ns"] / r["sent"] for r in ag])
        v = agent_total / tcpd if tcpd else None
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        sysw = {}
        for tag, rs in (("none", [r for r in fl if r["mode"] == "off"]), ("tcpdump", td), ("agent", on)):
            vals = [r["sys_busy_ticks"] * tick_ns / r["sent"] for r in rs if r.get("sys_busy_ticks") is not None]
            sysw[tag] = med(vals)
        sysnote = ""
        if all(sysw.values()):
            sysnote = (f"; whole machine busy CPU per session: nothing {sysw['none'] / 1e3:.0f} us, tcpdump "
                       f"{sysw['tcpdump'] / 1e3:.0f} us, agent {sysw['agent'] / 1e3:.0f} us (includes softirq work; "
                       f"noisy when other work runs)")
        figs.append(fig(name, rnd(v, 2), "ratio", "<= 0.2", (v <= 0.2) if v is not None else None,
                        note=f"median per session: tcpdump process {tcpd / 1e3:.1f} us; agent {agent_total / 1e3:.1f} us = "
                             f"process {agent_proc / 1e3:.1f} + BPF run time (bpf_stats on in those runs); tcpdump's "
                             f"packet copies run in softirq and are not in its figure{sysnote}; tcpdump attributes "
                             f"nothing: no process, user, container or HELO" + others(td + ag)))
    else:
        figs.append(missing(name, "ratio", "<= 0.2", skips.get("tcpdump", "not measured; see build/bench/run.log")))

    # 7. ramp and latency
    ramp = [r for r in raw if r.get("kind") == "flood" and r.get("tag") == "ramp"]
    agent_floods = [r for r in raw if r.get("kind") == "flood" and r.get("mode") == "on" and r.get("losses") is not None]

    def lost(r):
        return sum(r["losses"].get(k, 0) for k in KERNEL_LOSSES) or (r.get("reported") != r["sent"])

    if ramp:
        best = max((r["rate"] for r in agent_floods if not lost(r)), default=None)
        lossy = [r for r in agent_floods if lost(r)]
        steps = "; ".join(f"-s {r['parallel']}: {r['rate']:.0f}/s, {r.get('reported')}/{r['sent']} reported, "
                          f"kernel losses {sum(r['losses'].get(k, 0) for k in KERNEL_LOSSES)}"
                          for r in ramp if r.get("losses") is not None)
        lossnote = ("; floods that lost: " + ", ".join(
            f"{r['tag']} at {r['rate']:.0f}/s ({sum(r['losses'].get(k, 0) for k in KERNEL_LOSSES)} records, "
            f"{r.get('reported')}/{r['sent']} reported)" for r in lossy)) if lossy else \
            "; no flood with the agent lost anything: the rate is the machine's limit, a lower bound for the ring"
        figs.append(fig("highest session rate with zero losses (default 2 MiB ring)", rnd(best, 0), "sessions/s",
                        "no loss at any rate", not lossy,
                        note=f"over all {len(agent_floods)} floods with the agent; ramp: {steps}{lossnote}"))
    else:
        figs.append(missing("highest session rate with zero losses (default 2 MiB ring)", "sessions/s",
                            "no loss at any rate", "ramp not run; see build/bench/run.log"))
    lat = [r for r in raw if r.get("kind") == "latency"]
    name = "delay kernel close timestamp -> line in the file, p99"
    if lat and lat[0]["kernel_to_line_ms"]["p99"] is not None:
        r = lat[0]
        v = r["kernel_to_line_ms"]["p99"]
        figs.append(fig(name, rnd(v, 1), "ms", "<= 2000", v <= 2000,
                        note=f"goal from DESIGN.md (session line within 2 s of the close); "
                             f"{r['seen']} of {r['sessions']} sessions seen (EHLO, QUIT, one every 20 ms); each line's "
                             f"appearance found by polling the file every {r['poll_ms']:.0f} ms, minus its event.end "
                             f"(the kernel's close timestamp in wall-clock time); p50 "
                             f"{r['kernel_to_line_ms']['p50']:.1f} ms, max {r['kernel_to_line_ms']['max']:.1f} ms; "
                             f"from the client's close(): p99 {r['close_to_line_ms']['p99']:.1f} ms"))
    else:
        figs.append(missing(name, "ms", "<= 2000", "latency not measured; see build/bench/run.log"))

    doc = {"figures": figs, "kernel": os.uname().release, "cpu": cpu_desc(),
           "runtime_s": a.runtime, "notes": [r["text"] for r in raw if r.get("kind") == "note"]}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print_table(doc)


def cpu_desc():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"


def print_table(doc):
    def val(f):
        v = f["value"]
        return "-" if v is None else (f"{v:g}" if isinstance(v, (int, float)) else str(v))

    def ok(f):
        return {True: "ok", False: "FAIL", None: "n/a"}[f["ok"]]

    w = max(len(f["name"]) for f in doc["figures"])
    g = max(len(f["goal"]) for f in doc["figures"])
    print(f"\nsmtpwatch bench: kernel {doc['kernel']}, {doc['cpu']}, {doc['runtime_s']} s")
    print(f"{'figure':<{w}}  {'value':>8}  {'unit':<10}  {'goal':<{g}}  ok")
    print("-" * (w + g + 30))
    for f in doc["figures"]:
        print(f"{f['name']:<{w}}  {val(f):>8}  {f['unit']:<10}  {f['goal']:<{g}}  {ok(f)}")
        why = f.get("reason")
        if why:
            print(f"{'':<{w}}    not measured: {why}")
    for n in doc["notes"]:
        print(f"note: {n}")
    fails = [f["name"] for f in doc["figures"] if f["ok"] is False]
    print(f"\n{len(doc['figures'])} figures, {sum(1 for f in doc['figures'] if f['ok'])} within budget, "
          f"{len(fails)} over, {sum(1 for f in doc['figures'] if f['ok'] is None)} without a budget or not measured; "
          f"details in build/bench.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("flood")
    p.add_argument("--tag", default="main")
    p.add_argument("--mode", default="off")
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--parallel", type=int, default=20)
    p.add_argument("--timeout", type=int, default=120)
    p.add_argument("--flush", type=float, default=5.0)
    p.add_argument("--agent-pid", type=int)
    p.add_argument("--cpu-pid", type=int)
    p.add_argument("--output")
    p.add_argument("--socket")
    p.add_argument("--bpf-stats", action="store_true")
    p.set_defaults(fn=cmd_flood)

    p = sub.add_parser("connect")
    p.add_argument("--mode", default="off")
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--agent-pid", type=int)
    p.set_defaults(fn=cmd_connect)

    p = sub.add_parser("iperf")
    p.add_argument("--mode", default="off")
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--test", choices=("bulk", "small"), required=True)
    p.add_argument("--port", type=int, default=5201)
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--agent-pid", type=int)
    p.add_argument("--bpf-stats", action="store_true")
    p.set_defaults(fn=cmd_iperf)

    p = sub.add_parser("idle")
    p.add_argument("--agent-pid", type=int, required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--tries", type=int, default=3)
    p.set_defaults(fn=cmd_idle)

    p = sub.add_parser("settle")
    p.add_argument("--agent-pid", type=int, required=True)
    p.add_argument("--max-wait", type=float, default=8)
    p.set_defaults(fn=cmd_settle)

    p = sub.add_parser("quiet")
    p.add_argument("--max-wait", type=float, default=15)
    p.set_defaults(fn=cmd_quiet)

    p = sub.add_parser("latency")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--output", required=True)
    p.add_argument("--sessions", type=int, default=300)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--poll", type=float, default=0.002)
    p.add_argument("--wait", type=float, default=5)
    p.set_defaults(fn=cmd_latency)

    p = sub.add_parser("agentinfo")
    p.add_argument("--agent-pid", type=int, required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--tag", default="main")
    p.add_argument("--rep", type=int, default=0)
    p.set_defaults(fn=cmd_agentinfo)

    p = sub.add_parser("record")
    p.add_argument("pairs", nargs="*")
    p.set_defaults(fn=cmd_record)

    p = sub.add_parser("report")
    p.add_argument("--raw", required=True)
    p.add_argument("--tc")
    p.add_argument("--json", required=True)
    p.add_argument("--runtime", type=int, default=0)
    p.set_defaults(fn=cmd_report)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
