#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Regenerate vmlinux/<arch>/vmlinux.h from a kernel's BTF. CO-RE relocates field offsets
# at load time, so one header serves every kernel; regenerate only to reach new types.
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
arch=${2:-x86}
out="$(dirname "$0")/../vmlinux/$arch/vmlinux.h"
[ -r "$btf" ] || { echo "gen-vmlinux: cannot read BTF at $btf" >&2; exit 69; }
mkdir -p "$(dirname "$out")"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out from $btf"
