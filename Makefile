# withlock's front door.
#   make               build the static binary (target/x86_64-unknown-linux-musl/release/withlock)
#   make TARGET=T      the same for T: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
#                      armv7-unknown-linux-musleabihf or i686-unknown-linux-musl (target/T/release/)
#   make install       install binary, man page and shell completions under $(DESTDIR)$(PREFIX)
#   make uninstall     remove exactly what install installed
#   make release       dist/: a static binary and a Debian package for each of the four
#                      targets, SHA256SUMS; checks each one's size
#   make check-size    the local-only build (FEATURES=) against the 64 KB goal; the full build's size
#   make FEATURES=     build without --status, --replace, the etcd engine, --syslog and --jitter (the smallest binary, e.g. for an initramfs)
#   make PIE=1         a static-pie binary instead, its code address-randomized (x86_64 only;
#                      target/pie/T/release/; see README, "Hardening of the static binary")
#   make test          set up what the tests need, then run the whole suite (every target's binary)
#   make bench         per-run cost, hand-off latency and idle waiters, beside flock(1)
#   make bench-etcd    etcd mode beside `etcdctl lock`: a locked run, failover after a kill or a cut

TARGET  ?= x86_64-unknown-linux-musl
# What `make release` builds, and each one's Debian architecture.
TARGETS := x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf i686-unknown-linux-musl
DEB_ARCH_x86_64-unknown-linux-musl      := amd64
DEB_ARCH_aarch64-unknown-linux-musl     := arm64
DEB_ARCH_armv7-unknown-linux-musleabihf := armhf
DEB_ARCH_i686-unknown-linux-musl        := i386
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
# Where each shell looks for completions by itself (given this PREFIX).
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
CARGO   ?= cargo
DIST    ?= dist

# Optional parts compiled in: `status` (--status, --json), `etcd` (locks in an
# etcd cluster), `replace` (--replace), `syslog` (--syslog) and `jitter`
# (--jitter). `make FEATURES=` leaves them out.
FEATURES ?= etcd status replace syslog jitter
CARGO_FEATURES := --no-default-features --features '$(FEATURES)'

# rustup serves no standard library for armv7: its `core` is built from source by the
# pinned nightly toolchain (ci/ensure-target.sh finds or installs it).
ifeq ($(TARGET),armv7-unknown-linux-musleabihf)
TOOLCHAIN = +$(shell sh ci/ensure-target.sh --toolchain $(TARGET))
BUILD_STD := -Zbuild-std=core
endif
CARGO_BUILD = $(CARGO) $(TOOLCHAIN) build --release --locked --target $(TARGET) $(BUILD_STD)

# The size goal for the static binary without optional parts (FEATURES=), in bytes,
# and a bound for the full build (the etcd engine is ~45 KB of HTTP, JSON and etcd;
# --replace's checks 3 KB; --syslog 5 KB and --jitter 1 KB).
SIZE_GOAL := 65536
FULL_SIZE_BOUND := 131072
# That build, beside the usual one (its own target directory, so neither rebuilds the other).
LOCAL_BIN := target/local-only/$(TARGET)/release/withlock

VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
BIN     := target/$(TARGET)/release/withlock

# PIE=1: static-pie instead of the default fixed-address executable: ~5 us more per
# run, 6 KB larger (README, "Hardening of the static binary"). rustc links static-pie
# for x86_64 only (for the other musl targets it quietly links a fixed-address
# executable). Built apart, so that neither build passes for the other.
ifeq ($(PIE),1)
ifneq ($(TARGET),x86_64-unknown-linux-musl)
$(error PIE=1: rustc builds static-pie only for x86_64-unknown-linux-musl, not $(TARGET))
endif
PIE_BUILD := --target-dir target/pie --config 'target.$(TARGET).rustflags=["-C", "relocation-model=pie"]'
BIN     := target/pie/$(TARGET)/release/withlock
endif
SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock build.rs src/static.ld .cargo/config.toml

# Exactly the files `install` creates (and `uninstall` removes).
INSTALLED := $(BINDIR)/withlock $(MANDIR)/man1/withlock.1 $(BASHCOMPDIR)/withlock \
	$(ZSHCOMPDIR)/_withlock $(FISHCOMPDIR)/withlock.fish

# The Debian package of $(TARGET)'s binary: a static binary needs no Depends. Debian's
# zsh reads vendor-completions, not site-functions, under /usr.
DEB_ARCH        := $(DEB_ARCH_$(TARGET))
DEB_VERSION     ?= $(VERSION)
DEB_MAINTAINER  ?= withlock maintainers <maintainers@users.noreply.r-seed-382a6ac8.example>
DEB_ROOT        := target/deb/withlock_$(DEB_VERSION)_$(DEB_ARCH)
DEB             := $(DIST)/withlock_$(DEB_VERSION)_$(DEB_ARCH).deb
RELEASE_BIN     := $(DIST)/withlock-$(VERSION)-$(TARGET)
# File dates in the package: the last commit's, so that the same commit gives the same .deb.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

.PHONY: all build install install-files uninstall release release-target check-size test bench bench-etcd clean

all: build

# The unwind tables and the linker's notes are left out by the linker script (src/static.ld).
build:
	@sh ci/ensure-target.sh $(TARGET)
	$(CARGO_BUILD) $(CARGO_FEATURES) $(PIE_BUILD)
	@ls -l $(BIN) | awk '{print "built " $$9 " (" $$5 " bytes)"}'

# install needs the binary, not a fresh cargo run: `make && sudo make install` works
# without a Rust toolchain for root.
$(BIN): $(SOURCES)
	@$(MAKE) --no-print-directory build

install: $(BIN) install-files

# Copy what is built; build nothing (the .deb is staged with it, too).
install-files:
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/withlock
	install -m 0644 man/withlock.1 $(DESTDIR)$(MANDIR)/man1/withlock.1
	install -m 0644 man/completions/withlock.bash $(DESTDIR)$(BASHCOMPDIR)/withlock
	install -m 0644 man/completions/_withlock $(DESTDIR)$(ZSHCOMPDIR)/_withlock
	install -m 0644 man/completions/withlock.fish $(DESTDIR)$(FISHCOMPDIR)/withlock.fish

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

check-size: $(BIN)
	@sh ci/ensure-target.sh $(TARGET)
	$(CARGO_BUILD) --quiet --no-default-features --target-dir target/local-only
	@size=$$(wc -c < $(LOCAL_BIN)); full=$$(wc -c < $(BIN)); \
	awk -v s=$$size -v f=$$full -v g=$(SIZE_GOAL) -v feat='$(FEATURES)' -v t=$(TARGET) 'BEGIN { \
		printf "%s: size without optional parts: %d bytes (%.1f KiB); goal: at most %d (%.0f KiB)\n", t, s, s / 1024, g, g / 1024; \
		printf "%s: size with FEATURES=%s: %d bytes (%.1f KiB)\n", t, feat, f, f / 1024 }'; \
	if [ "$$size" -gt $(SIZE_GOAL) ]; then echo "FAIL: the static binary without optional parts grew past the 64 KB goal" >&2; exit 1; fi; \
	if [ "$$full" -gt $(FULL_SIZE_BOUND) ]; then echo "FAIL: the full static binary grew past 128 KB" >&2; exit 1; fi

# Every target's binary and .deb, each checked for size, and one SHA256SUMS over them all.
release:
	rm -rf $(DIST)
	mkdir -p $(DIST)
	@set -e; for target in $(TARGETS); do \
		$(MAKE) --no-print-directory TARGET=$$target release-target check-size; \
	done
	cd $(DIST) && LC_ALL=C ls withlock* | xargs sha256sum > SHA256SUMS
	@echo "release: $(DIST)/"; ls -l $(DIST) | sed 1d | awk '{print "  " $$9 "  " $$5 " bytes"}'

# $(TARGET)'s part of the release: its binary and its .deb, in dist/. Built by cargo
# whatever the file dates: another cargo run (say, with the default features named
# differently) may have left a binary of other bytes at $(BIN).
release-target: build
	@[ -n "$(DEB_ARCH)" ] || { echo "release: no Debian architecture for $(TARGET)" >&2; exit 1; }
	@# The binary must be static (no interpreter) and stripped (no symbol table).
	@if readelf -lW $(BIN) | grep -q 'INTERP'; then echo "release: $(BIN) is not static" >&2; exit 1; fi
	@if readelf -SW $(BIN) | grep -q '\.symtab'; then echo "release: $(BIN) is not stripped" >&2; exit 1; fi
	rm -rf $(DEB_ROOT)
	mkdir -p $(DIST)
	install -m 0755 $(BIN) $(RELEASE_BIN)
	@# The package tree: the same files as `make install PREFIX=/usr`, the man page gzipped.
	$(MAKE) --no-print-directory install-files DESTDIR=$(DEB_ROOT) PREFIX=/usr \
		ZSHCOMPDIR=/usr/share/zsh/vendor-completions
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/withlock.1
	install -d -m 0755 $(DEB_ROOT)/usr/share/doc/withlock $(DEB_ROOT)/usr/share/lintian/overrides $(DEB_ROOT)/DEBIAN
	gzip -9nc README.md > $(DEB_ROOT)/usr/share/doc/withlock/README.md.gz
	@# copyright, machine-readable (DEP-5): the MIT ("Expat") text of LICENSE.
	{ echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'; \
	  echo 'Upstream-Name: withlock'; \
	  echo; \
	  echo 'Files: *'; \
	  sed -n 's/^Copyright (c) */Copyright: /p' LICENSE; \
	  echo 'License: Expat'; \
	  awk 'body { print ($$0 == "" ? " ." : " " $$0) } /^Copyright/ { body = 1; getline }' LICENSE; \
	} > $(DEB_ROOT)/usr/share/doc/withlock/copyright
	@# A native package's changelog, dated by the commit.
	{ echo 'withlock ($(DEB_VERSION)) unstable; urgency=medium'; \
	  echo; \
	  echo '  * withlock $(VERSION), packaged by make release from its source.'; \
	  echo; \
	  echo " -- $(DEB_MAINTAINER)  $$(LC_ALL=C date -u -R -d @$(SOURCE_DATE_EPOCH))"; \
	} | gzip -9n > $(DEB_ROOT)/usr/share/doc/withlock/changelog.gz
	chmod 0644 $(DEB_ROOT)/usr/share/doc/withlock/*
	{ echo '# withlock is static on purpose: it must run where no shared library is (an'; \
	  echo '# initramfs, a minimal container, a rescue shell), and a static musl binary'; \
	  echo '# starts in a fraction of the time of a dynamic one, in front of every job.'; \
	  echo 'withlock: statically-linked-binary [usr/bin/withlock]'; \
	} > $(DEB_ROOT)/usr/share/lintian/overrides/withlock
	chmod 0644 $(DEB_ROOT)/usr/share/lintian/overrides/withlock
	{ echo 'Package: withlock'; \
	  echo 'Version: $(DEB_VERSION)'; \
	  echo 'Architecture: $(DEB_ARCH)'; \
	  echo 'Maintainer: $(DEB_MAINTAINER)'; \
	  echo "Installed-Size: $$(du -sk $(DEB_ROOT)/usr | cut -f1)"; \
	  echo 'Section: utils'; \
	  echo 'Priority: optional'; \
	  echo 'Description: run a command only if no other copy of it is running'; \
	  echo ' withlock takes an exclusive flock(2) lock on a file and then becomes the'; \
	  echo ' command, so the lock lasts exactly as long as the job, and is released by'; \
	  echo ' the kernel however the job ends. A busy lock exits 75 (0 with -q) and runs'; \
	  echo ' nothing; lock files that other users could hijack are refused; the job'; \
	  echo " gets its signals and keeps its exit status. A small static binary."; \
	} > $(DEB_ROOT)/DEBIAN/control
	cd $(DEB_ROOT) && find usr -type f | LC_ALL=C sort | xargs md5sum > DEBIAN/md5sums
	chmod 0644 $(DEB_ROOT)/DEBIAN/control $(DEB_ROOT)/DEBIAN/md5sums
	find $(DEB_ROOT) -type d -exec chmod 0755 {} +
	find $(DEB_ROOT) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB)

test:
	bash ci/test.sh

bench: build check-size
	bash ci/bench.sh $(BIN) $(LOCAL_BIN)

bench-etcd: build
	bash ci/bench-etcd.sh $(BIN)

clean:
	$(CARGO) clean
	rm -rf $(DIST)
