# ckptd — plain Makefile. Build output goes to build/.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR    ?=

VERSION    := 0.1.0
CC         ?= gcc
PKGS       := libsystemd libconfig json-c
# Asked of pkg-config when first used, that is after the deps step below has
# installed what was missing.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)
CHECK_LIBS = $(eval CHECK_LIBS := $$(shell pkg-config --libs check 2>/dev/null))$(CHECK_LIBS)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) $(if $(WERROR),-Werror) -D_GNU_SOURCE \
            -DCKPTD_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

ifeq ($(SANITIZE),1)
B        := build/san
# CKPTD_CROSSCHECK: every decision from a run's memo is checked against the
# whole run's decision (daemon/retention.c), so the whole suite tests it.
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DCKPTD_CROSSCHECK
LDFLAGS  += -fsanitize=address,undefined
else
B        := build
endif

LIB_SRC    := $(wildcard lib/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(B)/%.o)
DAEMON_SRC := $(wildcard daemon/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)
UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(B)/%.o)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

all: $(B)/ckptd

# Missing packages first: before anything is compiled, scripts/deps.sh
# --auto checks the set the goals need (build; demo; unit for check_unit;
# test for check) and, as root, installs what is missing; otherwise it
# names the packages in one line and the build stops. DEPS=no skips it
# (package builds, other distributions).
DEPS     ?= auto
DEPS_SET := $(if $(filter fresh-test deb,$(MAKECMDGOALS)),pkg,$(if $(filter check,$(MAKECMDGOALS)),test,$(if $(filter %check_unit,$(MAKECMDGOALS)),unit,$(if $(filter demo,$(MAKECMDGOALS)),demo,build))))
DEPS_SET += $(if $(filter bench,$(MAKECMDGOALS)),bench) $(if $(filter lint,$(MAKECMDGOALS)),lint) \
            $(if $(filter fuzz fuzz-build,$(MAKECMDGOALS)),fuzz)

deps-auto:
ifneq ($(DEPS),no)
	@bash scripts/deps.sh --auto $(strip $(DEPS_SET))
endif

$(B)/%.o: %.c $(wildcard lib/*.h daemon/*.h) | deps-auto
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libckptd.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

ifeq ($(SANITIZE),1)
DAEMON_OBJ += $(B)/tests/sanitize.o
endif

$(B)/ckptd: $(DAEMON_OBJ) $(B)/libckptd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ckptd with the removal seam the tests block and kill it at
# (tests/hook/hook.c, CKPTD_TEST_HOOK); never installed.
$(B)/ckptd-hooked: $(DAEMON_OBJ) $(B)/tests/hook/hook.o $(B)/libckptd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The fault-injection shim (tests/fault/): plain flags, never sanitized, since
# it is preloaded into whichever ckptd is under test.
build/fault.so: tests/fault/fault.c | deps-auto
	@mkdir -p build
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra $(if $(WERROR),-Werror) -shared -fPIC -o $@ $< -ldl

$(B)/check_unit: $(UNIT_OBJ) $(filter-out $(B)/daemon/main.o,$(DAEMON_OBJ)) $(B)/libckptd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# Unit tests, then integration tests on real directories and filesystems.
# tests/run.sh prints the final "N passed, N failed" line.
check: $(B)/ckptd $(B)/ckptd-hooked $(B)/check_unit build/fault.so
	@CKPTD=$(abspath $(B)/ckptd) CKPTD_HOOKED=$(abspath $(B)/ckptd-hooked) \
		CHECK_UNIT=$(abspath $(B)/check_unit) \
		FAULT_SO=$(abspath build/fault.so) \
		bash tests/run.sh

# make demo from a fresh tree: the build uses every core, so that the
# whole command stays well under 30 s.
ifneq ($(filter demo,$(MAKECMDGOALS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
demo: $(B)/ckptd
	@CKPTD=$(abspath $(B)/ckptd) bash scripts/demo.sh

# make demo then make check as root on a bare Debian 12 made with
# debootstrap (cached in /var/tmp/ckptd-fresh); minutes, needs the mirror.
fresh-test: | deps-auto
	bash tests/packaging/fresh.sh

# Build the .deb from a copy of the tree and check it with lintian and
# hardening-check (tests/packaging/deb.sh); the .deb stays in build/deb/.
deb: | deps-auto
	bash tests/packaging/deb.sh

# The system calls of the safety contract alone, timed per operation
# (bench/kfloor.c): built for make bench only, not by all or check.
build/kfloor: bench/kfloor.c | deps-auto
	@mkdir -p build
	$(CC) -O2 -g -std=gnu11 $(WARN) $(if $(WERROR),-Werror) -D_GNU_SOURCE -pthread -o $@ $<

bench: $(B)/ckptd build/kfloor
	@CKPTD=$(abspath $(B)/ckptd) KFLOOR=$(abspath build/kfloor) bash bench/run.sh

# libFuzzer targets (clang): every tests/fuzz/fuzz_<name>.c, linked with
# the whole library built again by clang with ASan+UBSan and coverage
# (-fsanitize=fuzzer-no-link), so a new harness needs no rule of its own.
# `make fuzz` runs each for FUZZ_SECONDS on its committed seeds in
# tests/fuzz/corpus/<name>/ (read only: what it finds goes to
# build/fuzz/corpus/<name>/, a crash to build/fuzz/crash-*, its output to
# build/fuzz/<name>.log), with tests/fuzz/<name>.dict as dictionary and
# tests/fuzz/<name>.options as more flags where they exist, and the leak
# suppressions of tests/fuzz/lsan.supp (leaks inside libconfig).
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FZ           := build/fuzz
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
                -std=gnu11 $(WARN) -Wno-format-nonliteral -D_GNU_SOURCE -DCKPTD_VERSION='"$(VERSION)"' -Ilib $(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FZ)/%.o)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FZ)/%)

$(FZ)/lib/%.o: lib/%.c $(wildcard lib/*.h) | deps-auto
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FZ)/libckptd.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c $(FZ)/libckptd.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FZ)/libckptd.a $(PKG_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@set -e; for bin in $(FUZZ_BIN); do \
		name=$${bin#$(FZ)/fuzz_}; seeds=tests/fuzz/corpus/$$name; \
		mkdir -p $(FZ)/corpus/$$name; \
		dict=; [ ! -f tests/fuzz/$$name.dict ] || dict=-dict=tests/fuzz/$$name.dict; \
		opts=$$(cat tests/fuzz/$$name.options 2>/dev/null || true); \
		echo "== fuzz_$$name, $(FUZZ_SECONDS) s"; \
		LSAN_OPTIONS=suppressions=$(abspath tests/fuzz/lsan.supp) \
		$$bin -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FZ)/ $$dict $$opts $(FZ)/corpus/$$name $$([ -d $$seeds ] && echo $$seeds) \
			>$(FZ)/$$name.log 2>&1 || { tail -n 60 $(FZ)/$$name.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done ' $(FZ)/$$name.log | tr '\n' ' '; echo; \
	done

# cppcheck cannot see __attribute__((cleanup)): leaks are LeakSanitizer's job
# (make check SANITIZE=1).
lint: | deps-auto
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=memleak -Ilib lib daemon
	clang-format --dry-run --Werror lib/*.c lib/*.h daemon/*.c daemon/*.h
	mandoc -Tlint -W warning man/*.[58]
	shellcheck -S warning scripts/*.sh tests/*.sh tests/*/*.sh .ci/run
	@# the binary is not installed here; anything else it says is a finding
	@out=$$(systemd-analyze verify --man=no systemd/ckptd.service systemd/ckptd@.service 2>&1 | \
		grep -v 'Command /usr/bin/ckptd is not executable'); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi

# Everything: build, demo, unit and integration tests, bench, lint, fuzz,
# packaging. `bash scripts/deps.sh SET` installs one set (see its head).
deps:
	bash scripts/deps.sh

# install/uninstall. Unit, catalog and completion directories are where
# systemd and bash-completion look, whatever PREFIX is: from pkg-config, else
# the Debian paths. The shipped units start /usr/bin/ckptd (what the Debian
# package installs); install rewrites that to $(BINDIR)/ckptd, so a
# default PREFIX=/usr/local install starts /usr/local/bin/ckptd. The example
# config never replaces an existing /etc/ckptd/ckptd.conf, and uninstall
# leaves the config alone.
SYSTEMDUNITDIR     ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
SYSTEMDUSERUNITDIR ?= $(or $(shell pkg-config --variable=systemduserunitdir systemd 2>/dev/null),/usr/lib/systemd/user)
CATALOGDIR         ?= $(or $(shell pkg-config --variable=catalogdir systemd 2>/dev/null),/usr/lib/systemd/catalog)
BASHCOMPDIR        ?= $(or $(shell pkg-config --variable=completionsdir bash-completion 2>/dev/null),/usr/share/bash-completion/completions)
UNIT_SED           := sed 's|/usr/bin/ckptd|$(BINDIR)/ckptd|g'

install: $(B)/ckptd
	install -Dm755 $(B)/ckptd $(DESTDIR)$(BINDIR)/ckptd
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSTEMDUSERUNITDIR)
	$(UNIT_SED) systemd/ckptd.service >$(DESTDIR)$(SYSTEMDUNITDIR)/ckptd.service
	$(UNIT_SED) systemd/ckptd@.service >$(DESTDIR)$(SYSTEMDUNITDIR)/ckptd@.service
	$(UNIT_SED) systemd/user/ckptd.service >$(DESTDIR)$(SYSTEMDUSERUNITDIR)/ckptd.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/ckptd.service $(DESTDIR)$(SYSTEMDUNITDIR)/ckptd@.service \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR)/ckptd.service
	install -Dm644 systemd/ckptd.catalog $(DESTDIR)$(CATALOGDIR)/ckptd.catalog
	install -Dm644 contrib/bash-completion/ckptd $(DESTDIR)$(BASHCOMPDIR)/ckptd
	install -Dm644 man/ckptd.8 $(DESTDIR)$(MANDIR)/man8/ckptd.8
	install -Dm644 man/ckptd.conf.5 $(DESTDIR)$(MANDIR)/man5/ckptd.conf.5
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/ckptd/ckptd.conf ]; then \
		echo "install -Dm644 config/ckptd.conf $(DESTDIR)$(SYSCONFDIR)/ckptd/ckptd.conf"; \
		install -Dm644 config/ckptd.conf $(DESTDIR)$(SYSCONFDIR)/ckptd/ckptd.conf; \
	else echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/ckptd/ckptd.conf"; fi
	@echo "note: run 'systemctl daemon-reload' and 'journalctl --update-catalog';"
	@echo "      add the watch paths with 'systemctl edit ckptd' (ReadWritePaths=), see ckptd(8)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ckptd \
		$(DESTDIR)$(SYSTEMDUNITDIR)/ckptd.service $(DESTDIR)$(SYSTEMDUNITDIR)/ckptd@.service \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR)/ckptd.service $(DESTDIR)$(CATALOGDIR)/ckptd.catalog \
		$(DESTDIR)$(BASHCOMPDIR)/ckptd \
		$(DESTDIR)$(MANDIR)/man8/ckptd.8 $(DESTDIR)$(MANDIR)/man5/ckptd.conf.5
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/ckptd/ckptd.conf; run 'journalctl --update-catalog'"

clean:
	rm -rf build

.PHONY: all check demo fresh-test deb bench fuzz fuzz-build lint deps deps-auto install uninstall clean
