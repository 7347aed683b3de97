#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Install from Debian what the build and the tests need. Idempotent, quiet when all is there.
set -euo pipefail
pkgs=(clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev libcjson-dev
      iproute2 nftables rsyslog debootstrap tcpdump iperf3 postfix swaks curl python3 python3-aiosmtpd python3-jsonschema tmux
      qemu-system-x86 busybox-static linux-image-cloud-amd64 cpio kmod zstd xz-utils e2fsprogs)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages (${missing[*]}); run as root or install them" >&2
	exit 77
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# postfix is only wanted for smtp-sink/smtp-source: never configure a running MTA.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
