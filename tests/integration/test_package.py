# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""make install, make deb, and the package installed with dpkg into a fresh Debian root.

The root comes from debootstrap (minbase, bookworm, from the mirror apt uses here),
with the package's dependencies and systemd; it is cached in build/debootstrap/
and each run installs into an overlay of it, so reruns take seconds. When
debootstrap cannot fetch, the cases that need the root SKIP and say why.
"""
import fcntl
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import AGENT, ROOT, Skip, expect, expect_eq, need_root, run_cases, sh

SUITE = "bookworm"
DEPENDS = ["libbpf1", "libelf1", "zlib1g", "libcjson1"]
# systemd and procps only so that the installed unit can be verified in the root.
INCLUDE = DEPENDS + ["systemd", "procps"]
CACHE = os.path.join(ROOT, "build", "debootstrap")
DEBOOTSTRAP_TIMEOUT = 240


def version():
    with open(os.path.join(ROOT, "agent", "agent.h")) as f:
        return re.search(r'#define SW_VERSION "([^"]+)"', f.read()).group(1)


def arch():
    return sh("dpkg --print-architecture").strip()


_deb = None


def build_deb():
    """make deb, once per run; the path of the package."""
    global _deb
    if _deb is None:
        r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "deb"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError(f"make deb failed: {(r.stdout + r.stderr)[-800:]}")
        _deb = os.path.join(ROOT, "build", f"smtpwatch_{version()}_{arch()}.deb")
        expect(os.path.isfile(_deb), f"make deb did not write {_deb}")
    return _deb


def mirror():
    """The Debian mirror apt is configured with here (deb822 or one-line sources)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if SUITE in fields.get("Suites", "").split() and \
                        "deb" in fields.get("Types", "").split():
                    return fields["URIs"].split()[0]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
                    if m:
                        return m.group(1)
        except FileNotFoundError:
            pass
    raise Skip(f"apt has no source for Debian {SUITE} here (/etc/apt/sources.list*): "
               "nothing to debootstrap from")


def debian_root():
    """A minbase root with the dependencies, made once and cached; read-only after."""
    need_root()
    if not shutil.which("debootstrap"):
        raise Skip("debootstrap is not installed (Debian package debootstrap)")
    url = mirror()
    key = hashlib.sha1(f"{SUITE} {url} {' '.join(INCLUDE)}".encode()).hexdigest()[:12]
    target = os.path.join(CACHE, f"{SUITE}-{key}")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs do not debootstrap at once
        if os.path.exists(os.path.join(target, ".complete")):
            return target
        shutil.rmtree(target, ignore_errors=True)
        log = os.path.join(CACHE, f"{SUITE}-{key}.log")
        start = time.time()
        try:
            with open(log, "w") as out:
                r = subprocess.run(["debootstrap", "--variant=minbase",
                                    "--include=" + ",".join(INCLUDE), SUITE, target, url],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   timeout=DEBOOTSTRAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            shutil.rmtree(target, ignore_errors=True)
            raise Skip(f"debootstrap from {url} did not finish within {DEBOOTSTRAP_TIMEOUT} s")
        if r.returncode != 0:
            with open(log) as f:
                tail = " | ".join(f.read().strip().splitlines()[-2:])
            shutil.rmtree(target, ignore_errors=True)
            raise Skip(f"debootstrap could not build a {SUITE} root from {url}: {tail[-300:]}")
        open(os.path.join(target, ".complete"), "w").close()
        print(f"    (debootstrap of {SUITE} from {url}: {time.time() - start:.0f} s, "
              f"cached in {target})", flush=True)
        return target


class FreshRoot:
    """An overlay on the cached root: what dpkg writes goes away with it."""

    def __init__(self, lower):
        self.lower = lower

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpwatch-root-", dir=os.path.join(ROOT, "build"))
        self.path = os.path.join(self.tmp, "root")
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.tmp, d))
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={self.lower},upperdir={self.tmp}/upper,"
                            f"workdir={self.tmp}/work", self.path], capture_output=True)
        self.mounted = r.returncode == 0
        if not self.mounted:  # no overlayfs here: a copy, slower
            os.rmdir(self.path)
            shutil.copytree(self.lower, self.path, symlinks=True)
        return self

    def __exit__(self, *a):
        if self.mounted:
            subprocess.run(["umount", self.path], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, *args, check=True):
        r = subprocess.run(["chroot", self.path] + list(args), capture_output=True, text=True,
                           timeout=120, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                             "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
        if check and r.returncode != 0:
            raise AssertionError(f"in the root, {' '.join(args)} exited {r.returncode}: "
                                 f"{(r.stdout + r.stderr).strip()[-500:]}")
        return r


def control_fields(deb):
    out = sh(f"dpkg-deb -f {deb}")
    return dict(re.findall(r"^(\S+): (.*(?:\n .*)*)", out, re.M))


EXPECTED_FILES = {
    "./usr/sbin/smtpwatch": "-rwxr-xr-x",
    "./usr/lib/systemd/system/smtpwatch.service": "-rw-r--r--",
    "./usr/share/man/man8/smtpwatch.8.gz": "-rw-r--r--",
    "./etc/smtpwatch/smtpwatch.json": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/README.md": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/copyright": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/schema.md": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/config.md": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/deploy.md": "-rw-r--r--",
    "./usr/share/doc/smtpwatch/event.schema.json": "-rw-r--r--",
}


def test_deb_contents():
    deb = build_deb()
    listing = {}
    for line in sh(f"dpkg-deb -c {deb}").splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        listing[path] = (perms, owner)
    for path, perms in EXPECTED_FILES.items():
        expect(path in listing, f"{path} is not in the package")
        expect_eq(listing[path][0], perms, f"mode of {path}")
    bad_owner = [p for p, (_, o) in listing.items() if o != "root/root"]
    expect(not bad_owner, f"files not owned by root/root: {bad_owner[:3]}")
    stray = [p for p in listing if not p.endswith("/") and p not in EXPECTED_FILES
             and not p.startswith("./usr/share/doc/smtpwatch/")]
    expect(not stray, f"files nobody expects in the package: {stray}")

    f = control_fields(deb)
    expect_eq(f.get("Package"), "smtpwatch", "Package")
    expect_eq(f.get("Version"), version(), "Version (SW_VERSION in agent/agent.h)")
    expect_eq(f.get("Architecture"), arch(), "Architecture")
    deps = [d.strip().split()[0] for d in f.get("Depends", "").split(",")]
    for d in DEPENDS:
        expect(d in deps, f"Depends lacks {d}: {f.get('Depends')}")
    expect(int(f.get("Installed-Size", "0")) > 100, f"Installed-Size {f.get('Installed-Size')}")
    info = sh(f"dpkg-deb -I {deb}")
    for member in ("conffiles", "md5sums", "postinst", "prerm", "control"):
        expect(re.search(rf"\s{member}\s", info), f"control archive lacks {member}")
    with tempfile.TemporaryDirectory() as d:
        sh(f"dpkg-deb -e {deb} {d}/DEBIAN && dpkg-deb -x {deb} {d}/root")
        with open(f"{d}/DEBIAN/conffiles") as c:
            expect_eq(c.read().split(), ["/etc/smtpwatch/smtpwatch.json"], "conffiles")
        # md5sums covers every file, and matches it.
        sums = sh(f"cd {d}/root && md5sum -c ../DEBIAN/md5sums")
        expect_eq(sums.count(": OK"), sum(1 for p in listing if not p.endswith("/")),
                  "files checked by md5sums")
        expect(os.access(f"{d}/DEBIAN/postinst", os.X_OK), "postinst is executable")
        # The postinst touches nothing but systemd's view of units.
        with open(f"{d}/DEBIAN/postinst") as p:
            cmds = re.findall(r"^\s*(\w[\w-]*)\s", p.read(), re.M)
        expect(set(cmds) <= {"set", "case", "configure", "if", "systemctl", "fi", "esac", "exit"},
               f"postinst runs more than systemctl: {sorted(set(cmds))}")
        # The prerm stops the unit and removes what --pin left, on removal only.
        expect(os.access(f"{d}/DEBIAN/prerm", os.X_OK), "prerm is executable")
        with open(f"{d}/DEBIAN/prerm") as p:
            prerm = p.read()
        expect(re.search(r"^remove\|deconfigure\)", prerm, re.M) and "upgrade" not in
               prerm.split("case", 1)[1].split("esac")[0].replace("on upgrade", ""),
               "prerm acts on remove/deconfigure only")
        expect("/usr/sbin/smtpwatch cleanup" in prerm, "prerm runs smtpwatch cleanup")
        with gzip.open(f"{d}/root/usr/share/man/man8/smtpwatch.8.gz", "rb") as m, \
                open(os.path.join(ROOT, "docs", "smtpwatch.8"), "rb") as src:
            expect_eq(m.read(), src.read(), "the installed man page")
        with open(f"{d}/root/usr/lib/systemd/system/smtpwatch.service") as u, \
                open(os.path.join(ROOT, "scripts", "deb", "smtpwatch.service")) as src:
            expect_eq(u.read(), src.read(), "the installed unit")
        r = subprocess.run([f"{d}/root/usr/sbin/smtpwatch", "--version"], capture_output=True,
                           text=True)
        expect_eq(r.stdout.strip(), f"smtpwatch {version()}", "the packaged binary's version")


def test_make_install_destdir():
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "install",
                            f"DESTDIR={d}", "prefix=/usr/local"], capture_output=True, text=True,
                           timeout=600)
        expect_eq(r.returncode, 0, f"make install ({r.stderr.strip()[-300:]})")
        for p in ("usr/local/sbin/smtpwatch", "usr/local/lib/systemd/system/smtpwatch.service",
                  "usr/local/share/man/man8/smtpwatch.8.gz", "etc/smtpwatch/smtpwatch.json",
                  "usr/local/share/doc/smtpwatch/README.md"):
            expect(os.path.isfile(os.path.join(d, p)), f"make install did not write {p}")
        with open(os.path.join(d, "usr/local/lib/systemd/system/smtpwatch.service")) as u:
            unit = u.read()
        expect("ExecStart=/usr/local/sbin/smtpwatch run " in unit,
               "the unit starts the binary where prefix put it")


def test_config_is_the_defaults_and_loads():
    path = os.path.join(ROOT, "scripts", "deb", "smtpwatch.json")
    with open(path) as f:
        cfg = json.load(f)
    with open(os.path.join(ROOT, "docs", "config.md")) as f:
        doc = f.read()
    for key in cfg:
        expect(f"`{key}`" in doc or f"`{key}." in doc, f"{key} is not documented in docs/config.md")
    expect_eq(cfg["mode"], "monitor", "the packaged mode: a new install never refuses mail")
    expect_eq(cfg["ports"], [25, 465, 587, 2525], "ports")
    expect_eq(cfg["allow"]["destinations"], ["127.0.0.0/8", "::1/128"], "allow.destinations")
    need_root()
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "sw.sock")
        err = open(os.path.join(d, "err"), "w+")
        p = subprocess.Popen([AGENT, "run", "--config", path, "--output", os.path.join(d, "ev"),
                              "--socket", sock], stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.time() + 15
            while time.time() < deadline and p.poll() is None:
                st = subprocess.run([AGENT, "status", "--socket", sock], capture_output=True,
                                    text=True)
                if st.returncode == 0:
                    expect_eq(json.loads(st.stdout)["agent"]["config"], path, "config in status")
                    break
                time.sleep(0.1)
            else:
                err.seek(0)
                raise AssertionError(f"the agent did not run with the packaged configuration "
                                     f"(exit {p.poll()}): {err.read()[-400:]}")
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=15)
        expect_eq(rc, 0, "the agent's exit code on SIGTERM")


def test_man_page():
    page = os.path.join(ROOT, "docs", "smtpwatch.8")
    if not shutil.which("man"):
        raise Skip("man is not installed (Debian package man-db)")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page],
                       capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80", MANROFFSEQ=""))
    expect_eq((r.returncode, r.stderr.strip()), (0, ""), "man --warnings")
    text = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8")).stdout
    text = re.sub(".\b", "", text)  # overstrike bold and underline
    for section in ("NAME", "SYNOPSIS", "COMMANDS", "FILES", "EXIT STATUS", "EXAMPLES"):
        expect(re.search(rf"^{section}$", text, re.M), f"the man page has no {section} section")
    usage = subprocess.run([AGENT, "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  (\S+)\s{2,}", usage.split("Commands:")[1], re.M)
    expect(len(commands) >= 5, f"commands in smtpwatch --help: {commands}")
    for c in commands:
        expect(f"smtpwatch {c}" in text, f"the man page does not describe '{c}'")
    run_opts = set(re.findall(r"(--[a-z-]+)", subprocess.run(
        [AGENT, "run", "--help"], capture_output=True, text=True).stdout))
    missing = sorted(o for o in run_opts if o not in text)
    expect(not missing, f"run options missing from the man page: {missing}")
    for code in ("64", "69", "77", "78"):
        expect(re.search(rf"^\s+{code}\s", text, re.M), f"exit code {code} not in the man page")


def test_install_into_fresh_root():
    deb = build_deb()
    lower = debian_root()
    with FreshRoot(lower) as root:
        shutil.copy(deb, os.path.join(root.path, "tmp", "smtpwatch.deb"))
        root.run("dpkg", "-i", "/tmp/smtpwatch.deb")
        status = root.run("dpkg-query", "-W", "-f=${Status} ${Version}", "smtpwatch").stdout
        expect_eq(status, f"install ok installed {version()}", "dpkg's view of the package")
        r = root.run("smtpwatch", "--version")
        expect_eq(r.stdout.strip(), f"smtpwatch {version()}", "smtpwatch --version in the root")
        r = root.run("smtpwatch", "check-helo", "DESKTOP-X")
        out = json.loads(r.stdout)
        expect_eq(out["helo"], "DESKTOP-X", "check-helo's HELO")
        expect("HELO_NO_DOT" in out["rules"], f"check-helo's rules: {out['rules']}")
        # Every library the binary loads belongs to a package it depends on.
        deps = {d.strip().split()[0]
                for d in control_fields(deb)["Depends"].split(",")}
        for lib in re.findall(r"=> (\S+)", root.run("ldd", "/usr/sbin/smtpwatch").stdout):
            owner = root.run("dpkg", "-S", "*/" + os.path.basename(lib)).stdout.split(":")[0]
            expect(owner in deps, f"{lib} comes from {owner}, which Depends does not name")
        conf = root.run("dpkg-query", "-W", "-f=${Conffiles}", "smtpwatch").stdout
        expect("/etc/smtpwatch/smtpwatch.json" in conf, f"conffile not registered: {conf!r}")
        # Purge leaves nothing behind, the conffile included.
        root.run("dpkg", "--purge", "smtpwatch")
        left = [p for p in ("usr/sbin/smtpwatch", "etc/smtpwatch/smtpwatch.json",
                            "usr/lib/systemd/system/smtpwatch.service")
                if os.path.lexists(os.path.join(root.path, p))]
        expect(not left, f"left after dpkg --purge: {left}")


def test_unit_verifies_and_is_confined():
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze is not installed (Debian package systemd)")
    deb = build_deb()
    lower = debian_root()
    with FreshRoot(lower) as root:
        shutil.copy(deb, os.path.join(root.path, "tmp", "smtpwatch.deb"))
        root.run("dpkg", "-i", "/tmp/smtpwatch.deb")
        r = subprocess.run(["systemd-analyze", "verify", f"--root={root.path}", "--man=no",
                            "smtpwatch.service"], capture_output=True, text=True)
        expect_eq((r.returncode, r.stderr.strip()), (0, ""), "systemd-analyze verify")
        r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                            f"--root={root.path}", "smtpwatch.service"], capture_output=True,
                           text=True)
        m = re.search(r"Overall exposure level for smtpwatch.service: ([\d.]+)", r.stdout)
        expect(m, f"systemd-analyze security gave no score: {(r.stdout + r.stderr)[-300:]}")
        print(f"    (systemd-analyze security: exposure {m.group(1)})", flush=True)
        expect(float(m.group(1)) <= 3.5, f"exposure {m.group(1)} is above 3.5")
    with open(os.path.join(ROOT, "scripts", "deb", "smtpwatch.service")) as f:
        unit = dict(re.findall(r"^(\w+)=(.*)$", f.read(), re.M))
    for key, want in {"Type": "notify", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                      "PrivateTmp": "yes", "RuntimeDirectory": "smtpwatch",
                      "StateDirectory": "smtpwatch", "LogsDirectory": "smtpwatch",
                      "Restart": "always", "ExecReload": "/bin/kill -HUP $MAINPID"}.items():
        expect_eq(unit.get(key), want, key)
    caps = set(unit["CapabilityBoundingSet"].split())
    expect({"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"} <= caps, f"capabilities {caps}")
    expect(not caps & {"CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SYS_MODULE"},
           f"more than least privilege: {caps}")
    expect("WatchdogSec" in unit, "WatchdogSec")


if __name__ == "__main__":
    sys.exit(run_cases([test_deb_contents, test_make_install_destdir,
                        test_config_is_the_defaults_and_loads, test_man_page,
                        test_install_into_fresh_root, test_unit_verifies_and_is_confined]))
