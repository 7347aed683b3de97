# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A container behind a veth pair and NAT, the wire view, and clean attach/detach.

Topology (all addresses exist only in the test's own namespaces and veths):
  netns swt-ctr 10.213.1.2 --veth-- host 10.213.1.1 | host 10.213.2.1 --veth-- netns swt-mx 10.213.2.25
The host forwards and masquerades (a table of the test's own), as a container
runtime does: the MX sees the host's address, and the host veth towards it sees
the SYN after NAT with no socket attached.
"""
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (check_schema, AGENT, PY, Agent, Netns, Skip, SmtpSink, cgroup2_root, expect, expect_eq,
                     get, need_root, run_cases, session_of, sh)

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_client.py")
CTR_ID = "5f1d0e6a" * 8  # 64 hex digits, as docker names its scopes
NFT_TABLE = "smtpwatch_test"


class Topology:
    def __enter__(self):
        self.forward = open("/proc/sys/net/ipv4/ip_forward").read().strip()
        self.cg = None
        try:
            return self._build()
        except BaseException:
            self.__exit__()
            raise

    def _build(self):
        self.ctr = Netns("swt-ctr").__enter__()
        self.mx = Netns("swt-mx").__enter__()
        for host_if, peer_if, ns, hnet, paddr in (("swh-ctr", "eth0", "swt-ctr", "10.213.1.1", "10.213.1.2"),
                                                   ("swh-mx", "eth0", "swt-mx", "10.213.2.1", "10.213.2.25")):
            sh(f"ip link del {host_if}", check=False)
            sh(f"ip link add {host_if} type veth peer name {peer_if} netns {ns}")
            sh(f"ip addr add {hnet}/24 dev {host_if}")
            sh(f"ip link set {host_if} up")
            sh(f"ip -n {ns} addr add {paddr}/24 dev {peer_if}")
            sh(f"ip -n {ns} link set {peer_if} up")
            sh(f"ip -n {ns} route add default via {hnet}")
        sh("sysctl -qw net.ipv4.ip_forward=1")
        sh(f"nft delete table ip {NFT_TABLE}", check=False)
        sh(f"nft add table ip {NFT_TABLE}")
        sh(f"nft 'add chain ip {NFT_TABLE} post {{ type nat hook postrouting priority 100; }}'")
        sh(f"nft add rule ip {NFT_TABLE} post oifname swh-mx ip saddr 10.213.1.0/24 masquerade")
        # Allow the forwarded test traffic even where a host policy drops forwarding.
        sh(f"nft 'add chain ip {NFT_TABLE} forward_test {{ type filter hook forward priority -10; }}'")
        sh(f"nft add rule ip {NFT_TABLE} forward_test iifname {{ swh-ctr, swh-mx }} accept")
        self.cg = os.path.join(cgroup2_root(), "smtpwatch-test.slice", f"docker-{CTR_ID}.scope")
        os.makedirs(self.cg, exist_ok=True)
        return self

    def __exit__(self, *a):
        sh(f"nft delete table ip {NFT_TABLE}", check=False)
        sh(f"sysctl -qw net.ipv4.ip_forward={self.forward}", check=False)
        sh("ip link del swh-ctr", check=False)
        sh("ip link del swh-mx", check=False)
        for n in (getattr(self, "ctr", None), getattr(self, "mx", None)):
            if n:
                n.__exit__()
        for d in ((self.cg, os.path.dirname(self.cg)) if self.cg else ()):
            try:
                os.rmdir(d)
            except OSError:
                pass


topo = None
agent = None


def in_container(args):
    """Start args in the container's cgroup and netns (a shell moves itself, then execs)."""
    script = f'echo $$ > {topo.cg}/cgroup.procs && exec ip netns exec swt-ctr "$@"'
    return subprocess.Popen(["sh", "-c", script, "sh"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_container_behind_veth_and_nat():
    p = in_container([PY, CLIENT, "smtplib", "10.213.2.25", "25", "container.test.example"])
    out, err = p.communicate(timeout=20)
    expect_eq(p.returncode, 0, f"container client exit ({err.strip()[-200:]})")
    ev = agent.wait_for(session_of(p.pid), what="container smtp_session")
    expect_eq(get(ev, "smtp.helo"), "container.test.example", "smtp.helo")
    expect_eq(get(ev, "container.id"), CTR_ID, "container.id")
    expect_eq(get(ev, "source.ip"), "10.213.1.2", "source.ip (the container's own view)")
    expect_eq(get(ev, "destination.ip"), "10.213.2.25", "destination.ip")
    expect_eq(get(ev, "destination.port"), 25, "destination.port")
    expect_eq(get(ev, "process.executable"), os.path.realpath(PY), "process.executable")
    expect(get(ev, "smtp.banner", "").startswith("smtp-sink"), "banner")
    expect_eq([r["code"] for r in get(ev, "smtp.replies")], [250, 250, 250, 250, 221],
              "reply codes")
    # The NAT'd copy on the host veth is the same flow, not an unattributed one.
    time.sleep(1.0)
    wire = [e for e in agent.read_events() if get(e, "event.action") == "smtp_unattributed"
            and get(e, "destination.ip") == "10.213.2.25" and get(e, "destination.port") == 25]
    expect_eq(wire, [], "unattributed copies of the container's flow")


def tcp_syn(src, dst, sport, dport, seq):
    """An IPv4+TCP SYN with correct checksums, for a raw socket."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))

    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    return tcp


def raw_syn(ns_cmd, src, dst, sport, dport):
    code = ("import socket,sys,binascii;"
            "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP);"
            "s.sendto(binascii.unhexlify(sys.argv[1]),(sys.argv[2],0))")
    pkt = tcp_syn(src, dst, sport, dport, 0x12345678).hex()
    sh(ns_cmd(f"{PY} -c '{code}' {pkt} {dst}"))


def test_raw_socket_syn_is_unattributed():
    # A raw socket opens no connect(): only the wire sees it.
    raw_syn(lambda c: c, "10.213.2.1", "10.213.2.25", 40025, 25)
    ev = agent.wait_for(lambda e: get(e, "event.action") == "smtp_unattributed"
                        and get(e, "source.port") == 40025, timeout=8,
                        what="smtp_unattributed for the raw SYN")
    expect_eq(get(ev, "destination.ip"), "10.213.2.25", "destination.ip")
    expect_eq(get(ev, "destination.port"), 25, "destination.port")
    expect_eq(get(ev, "source.ip"), "10.213.2.1", "source.ip")
    expect_eq(get(ev, "observer.egress.interface.name"), "swh-mx", "interface")
    expect(get(ev, "process") is None, "no process on an unattributed flow")


def test_inbound_smtp_is_not_a_session():
    # This host as the server: a SYN from the MX namespace to the host's port 25.
    raw_syn(topo.mx.cmd, "10.213.2.25", "10.213.2.1", 40026, 25)
    time.sleep(1.5)
    bad = [e for e in agent.read_events()
           if get(e, "source.port") == 40026 or get(e, "destination.port") == 40026]
    expect_eq(bad, [], "events for an inbound SMTP connection")


def attached_state():
    """What of ours is attached anywhere: cgroup programs, links, tc filters, qdiscs."""
    root = cgroup2_root()
    progs = sh(f"bpftool cgroup show {root}", check=False)
    links = sh("bpftool link show", check=False)
    tc = sh("tc filter show dev lo ingress; tc filter show dev lo egress", check=False)
    qdisc = sh("tc qdisc show dev lo", check=False)
    found = []
    for text, what in ((progs, "cgroup"), (links, "link"), (tc, "tc filter")):
        for line in text.splitlines():
            if "sw_" in line:
                found.append(f"{what}: {line.strip()}")
    if "clsact" in qdisc:
        found.append("clsact qdisc on lo")
    return found


def check_clean_cycle(extra):
    before = attached_state()
    expect_eq(before, [], "attachments before the agent starts")
    with Agent(extra) as a:
        during = attached_state()
        expect(any(s.startswith("cgroup") for s in during), f"cgroup programs attached: {during}")
        rc, st = a.status()
        expect_eq(rc, 0, "status exit code")
        expect(st["ok"], "status ok")
        names = [i["name"] for i in st["attach"]["interfaces"] if i["attached"]]
        expect("lo" in names, f"lo attached: {names}")
        expect_eq(a.stop(), 0, "exit code after SIGTERM")
    expect_eq(attached_state(), [], "attachments left after the agent stopped")
    return st


def kernel_has_tcx():
    """tcx came with 6.6: its attach types are then named in the kernel's BTF."""
    try:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            return b"\0BPF_TCX_INGRESS\0" in f.read()
    except OSError as e:
        raise Skip(f"cannot read the kernel's BTF: {e}")


def test_start_stop_leaves_nothing_auto():
    st = check_clean_cycle([])
    want = "tcx" if kernel_has_tcx() else "clsact"
    expect_eq(st["attach"]["tc_mode"], want, "tc mode picked on this kernel")


def test_start_stop_leaves_nothing_clsact():
    st = check_clean_cycle(["--tc-mode", "clsact"])
    expect_eq(st["attach"]["tc_mode"], "clsact", "tc mode")


def test_interface_added_later_is_attached():
    sh("ip link del swt-late0", check=False)
    try:
        sh("ip link add swt-late0 type veth peer name swt-late1")
        sh("ip link set swt-late0 up")
        sh("ip link set swt-late1 up")
        deadline = time.time() + 5
        while time.time() < deadline:
            rc, st = agent.status()
            up = [i["name"] for i in st["attach"]["interfaces"] if i["attached"]]
            if "swt-late0" in up:
                return
            time.sleep(0.1)
        raise AssertionError(f"swt-late0 not attached: {up}")
    finally:
        sh("ip link del swt-late0", check=False)


def test_errors_are_one_sentence():
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "--inh-caps=-all", AGENT, "run", "--socket", "/tmp/swt-nobody.sock"],
                       capture_output=True, text=True, timeout=10)
    expect_eq(r.returncode, 77, "exit code without privileges")
    expect_eq(len(r.stderr.strip().splitlines()), 1, f"one line: {r.stderr!r}")
    expect("root" in r.stderr, f"says what to do: {r.stderr!r}")
    r = subprocess.run([AGENT, "status", "--socket", "/tmp/swt-none.sock"], capture_output=True,
                       text=True, timeout=10)
    expect_eq(r.returncode, 69, "status exit code with no agent")
    expect_eq(len(r.stderr.strip().splitlines()), 1, f"one line: {r.stderr!r}")
    r = subprocess.run([AGENT, "run", "--ports", "99999"], capture_output=True, text=True,
                       timeout=10)
    expect_eq(r.returncode, 64, "exit code for a bad --ports")
    r = subprocess.run([AGENT, "frobnicate"], capture_output=True, text=True, timeout=10)
    expect_eq(r.returncode, 64, "exit code for an unknown command")


def main():
    global topo, agent
    try:
        need_root()
        cgroup2_root()
        if subprocess.run("command -v nft", shell=True, capture_output=True).returncode:
            raise Skip("nft (nftables) is not installed")
    except Skip as e:
        for c in CASES:
            print(f"SKIP {c.__name__}: {e}")
        return 0
    rc = run_cases([test_start_stop_leaves_nothing_auto, test_start_stop_leaves_nothing_clsact,
                    test_errors_are_one_sentence])
    with Topology() as t, SmtpSink(t.mx, "10.213.2.25:25"), Agent() as a:
        topo, agent = t, a
        rc |= run_cases([test_container_behind_veth_and_nat, test_raw_socket_syn_is_unattributed,
                         test_inbound_smtp_is_not_a_session, test_interface_added_later_is_attached])
        expect_eq(a.stop(), 0, "agent exit code after SIGTERM")
        rc |= check_schema(a, "schema_netns")
    return rc


CASES = [test_start_stop_leaves_nothing_auto, test_start_stop_leaves_nothing_clsact,
         test_errors_are_one_sentence, test_container_behind_veth_and_nat,
         test_raw_socket_syn_is_unattributed, test_inbound_smtp_is_not_a_session,
         test_interface_added_later_is_attached]

if __name__ == "__main__":
    sys.exit(main())
