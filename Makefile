# withlock's front door.
#   make               build the static binary (target/x86_64-unknown-linux-musl/release/withlock)
#   make install       install binary and man page under $(DESTDIR)$(PREFIX)
#   make uninstall     remove exactly what install installed
#   make test          set up what the tests need, then run the whole suite
#   make bench         per-run cost, hand-off latency and idle waiters, beside flock(1)

TARGET  ?= x86_64-unknown-linux-musl
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
CARGO   ?= cargo

BIN := target/$(TARGET)/release/withlock

.PHONY: all build install uninstall test bench check-size clean

all: build

build:
	@sh ci/ensure-target.sh $(TARGET)
	$(CARGO) build --release --locked --target $(TARGET)
	@ls -l $(BIN) | awk '{print "built " $$9 " (" $$5 " bytes)"}'

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/withlock
	install -m 0644 man/withlock.1 $(DESTDIR)$(MANDIR)/man1/withlock.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/withlock $(DESTDIR)$(MANDIR)/man1/withlock.1

test:
	bash ci/test.sh

bench: build
	bash ci/bench.sh $(BIN)

clean:
	$(CARGO) clean
