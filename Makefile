# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# smtpwatch: libbpf-bootstrap style build. Everything lands in build/.
OUTPUT := build
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= bpftool
CC ?= cc
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX := vmlinux/$(ARCH)
PKGS := libbpf libelf zlib libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -Iinclude -Iagent -I$(OUTPUT) $(PKG_CFLAGS)
# The record layout's fingerprint: pinned state is reused only by a build with the same one.
SW_ABI := $(shell sha256sum include/smtpwatch/events.h | cut -c1-16)
CFLAGS += -DSW_ABI_HASH=0x$(SW_ABI)ULL
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Iinclude -I$(VMLINUX) -Ibpf
LDLIBS := $(PKG_LIBS)

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))

# Pure userspace logic: no BPF, unit-tested without root.
PURE_SRCS := agent/behaviour.c agent/smtp.c agent/community_id.c agent/textsafe.c agent/jsonw.c agent/util.c agent/replies.c agent/helo_rules.c agent/timeparse.c agent/metrics.c agent/sdnotify.c agent/fileperm.c
AGENT_SRCS := $(filter-out $(PURE_SRCS),$(wildcard agent/*.c))
PURE_OBJS := $(patsubst agent/%.c,$(OUTPUT)/agent/%.o,$(PURE_SRCS))
AGENT_OBJS := $(patsubst agent/%.c,$(OUTPUT)/agent/%.o,$(AGENT_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(OUTPUT)/tests/%,$(BPFT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUTPUT)/tests/%,$(TOOL_SRCS))

.DELETE_ON_ERROR:
# Keep the BPF object and skeleton: they are inputs of several targets.
.SECONDARY:
.PHONY: all deps run test test-unit test-kernels fuzz clean vmlinux

all: $(OUTPUT)/smtpwatch

deps:
	$(Q)scripts/install-deps.sh

$(OUTPUT) $(OUTPUT)/agent $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) include/smtpwatch/events.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ # DWARF only: BTF stays for CO-RE

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<))_bpf > $@

$(OUTPUT)/agent/%.o: agent/%.c $(wildcard agent/*.h) include/smtpwatch/events.h $(SKELS) | $(OUTPUT)/agent
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/smtpwatch: $(AGENT_OBJS) $(PURE_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# The agent again with ASan and UBSan, for a second pass of the integration suite.
ASAN_OBJS := $(patsubst agent/%.c,$(OUTPUT)/asan/%.o,$(AGENT_SRCS) $(PURE_SRCS))
$(OUTPUT)/asan/%.o: agent/%.c $(wildcard agent/*.h) include/smtpwatch/events.h $(SKELS)
	$(call msg,CC-ASAN,$@)
	$(Q)mkdir -p $(OUTPUT)/asan
	$(Q)$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(OUTPUT)/asan/smtpwatch: $(ASAN_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(LDLIBS) -o $@

# Unit tests link the pure objects, built again with sanitizers.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(PURE_SRCS) $(wildcard agent/*.h) tests/unit/check.h | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit $< $(PURE_SRCS) $(LDLIBS) -o $@

$(OUTPUT)/tests/test_%: tests/bpf/test_%.c $(SKELS) tests/unit/check.h | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(LDLIBS) -o $@

$(OUTPUT)/tests/%: tests/tools/%.c | $(OUTPUT)/tests
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# syslog_send drives agent/syslog_out.c in tests/integration/test_syslog.py: linked
# with it, and with the sanitizers, so the tests also catch its memory errors.
$(OUTPUT)/tests/syslog_send: tests/tools/syslog_send.c agent/syslog_out.c agent/syslog_out.h | $(OUTPUT)/tests
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN) $< agent/syslog_out.c -o $@

# libFuzzer targets: the parsers and writers that take untrusted bytes.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIBSRC := $(PURE_SRCS) agent/config.c agent/evidence.c agent/procinfo.c agent/session.c
FUZZ_SECONDS ?= 60
$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIBSRC) $(wildcard agent/*.h)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(OUTPUT)/fuzz
	$(Q)$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iinclude -Iagent $< $(FUZZ_LIBSRC) $(LDLIBS) -o $@

fuzz: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh fuzz

tests-build: $(OUTPUT)/smtpwatch $(OUTPUT)/asan/smtpwatch $(UNIT_BINS) $(BPFT_BINS) $(TOOL_BINS) $(FUZZ_BINS)

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(OUTPUT)/smtpwatch run --output -

test: deps
	$(Q)$(MAKE) --no-print-directory tests-build
	$(Q)tests/run.sh

test-unit: $(UNIT_BINS)
	$(Q)tests/run.sh unit

test-kernels: deps
	$(Q)$(MAKE) --no-print-directory tests-build
	$(Q)tests/run.sh kernels

# The flood of test_faults.py at full size: a million short connections, with the
# agent's RSS before, during and after (a few minutes; not part of make test).
STRESS_CONNECTIONS ?= 1000000
.PHONY: stress
stress: deps
	$(Q)$(MAKE) --no-print-directory $(OUTPUT)/smtpwatch $(OUTPUT)/tests/conn_flood
	$(Q)SMTPWATCH_FLOOD=$(STRESS_CONNECTIONS) /usr/bin/python3 tests/integration/test_faults.py \
		test_flood_of_short_connections

vmlinux:
	$(Q)scripts/gen-vmlinux.sh

clean:
	$(Q)rm -rf $(OUTPUT)

# `make bench` (issue 6): performance figures measured side by side in one run,
# written to build/bench.json. Not part of `make test`: it takes minutes.
BENCH_BINS := $(OUTPUT)/bench/bench_tc $(OUTPUT)/bench/bench_connect
.PHONY: bench bench-build

$(OUTPUT)/bench:
	$(Q)mkdir -p $@

$(OUTPUT)/bench/bench_tc: tests/bench/bench_tc.c $(SKELS) include/smtpwatch/events.h | $(OUTPUT)/bench
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

$(OUTPUT)/bench/bench_connect: tests/bench/bench_connect.c | $(OUTPUT)/bench
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CFLAGS) -pthread $< -o $@

bench-build: $(OUTPUT)/smtpwatch $(BENCH_BINS)

bench: deps
	$(Q)$(MAKE) --no-print-directory bench-build
	$(Q)scripts/bench/run.sh

# `make install` and `make deb` (issue 8). DESTDIR and prefix as usual; the unit
# and the configuration go where systemd and the agent look for them.
prefix ?= /usr
sbindir ?= $(prefix)/sbin
unitdir ?= $(prefix)/lib/systemd/system
mandir ?= $(prefix)/share/man
docdir ?= $(prefix)/share/doc/smtpwatch
sysconfdir ?= /etc
VERSION := $(shell sed -n 's/^\#define SW_VERSION "\(.*\)"/\1/p' agent/agent.h)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB := $(OUTPUT)/smtpwatch_$(VERSION)_$(DEB_ARCH).deb
DEB_ROOT := $(OUTPUT)/deb-root
DEB_INPUTS := $(OUTPUT)/smtpwatch scripts/deb/control scripts/deb/conffiles scripts/deb/postinst scripts/deb/prerm \
	scripts/deb/smtpwatch.service scripts/deb/smtpwatch.json docs/smtpwatch.8 README.md \
	$(wildcard docs/*.md) docs/event.schema.json
.PHONY: install deb test-package

install: $(OUTPUT)/smtpwatch
	$(call msg,INSTALL,$(DESTDIR)$(prefix))
	$(Q)install -D -m 0755 $(OUTPUT)/smtpwatch $(DESTDIR)$(sbindir)/smtpwatch
	$(Q)install -d $(DESTDIR)$(unitdir) $(DESTDIR)$(mandir)/man8 $(DESTDIR)$(docdir) \
		$(DESTDIR)$(sysconfdir)/smtpwatch
	$(Q)sed 's|/usr/sbin/smtpwatch|$(sbindir)/smtpwatch|g' scripts/deb/smtpwatch.service \
		> $(DESTDIR)$(unitdir)/smtpwatch.service
	$(Q)chmod 0644 $(DESTDIR)$(unitdir)/smtpwatch.service
	$(Q)gzip -9n -c docs/smtpwatch.8 > $(DESTDIR)$(mandir)/man8/smtpwatch.8.gz
	$(Q)install -m 0644 scripts/deb/smtpwatch.json $(DESTDIR)$(sysconfdir)/smtpwatch/smtpwatch.json
	$(Q)install -m 0644 README.md docs/*.md docs/event.schema.json $(DESTDIR)$(docdir)/
	$(Q)printf '%s\n' 'smtpwatch' 'License: LGPL-2.1 OR BSD-2-Clause (SPDX), kernel programs Dual BSD/GPL.' \
		'On Debian systems the LGPL-2.1 is in /usr/share/common-licenses/LGPL-2.1.' \
		> $(DESTDIR)$(docdir)/copyright

deb: $(DEB)

$(DEB): $(DEB_INPUTS)
	$(call msg,DEB,$@)
	$(Q)rm -rf $(DEB_ROOT)
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) prefix=/usr sysconfdir=/etc
	$(Q)strip --strip-unneeded $(DEB_ROOT)/usr/sbin/smtpwatch
	$(Q)install -d $(DEB_ROOT)/DEBIAN
	$(Q)sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@SIZE@/$$(du -sk $(DEB_ROOT) | cut -f1)/" scripts/deb/control > $(DEB_ROOT)/DEBIAN/control
	$(Q)install -m 0644 scripts/deb/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	$(Q)install -m 0755 scripts/deb/postinst $(DEB_ROOT)/DEBIAN/postinst
	$(Q)install -m 0755 scripts/deb/prerm $(DEB_ROOT)/DEBIAN/prerm
	$(Q)cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | \
		xargs -0 md5sum > DEBIAN/md5sums
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $@ >/dev/null

# The package installed with dpkg into a fresh Debian root (debootstrap, cached in build/).
test-package: deps
	$(Q)$(MAKE) --no-print-directory deb
	$(Q)/usr/bin/python3 tests/integration/test_package.py

