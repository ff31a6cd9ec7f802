# tpwallet - build, test, run.  `make help` lists the targets.
#
# Object sets follow the layers in docs/architecture.md: a unit test named
# tests/unit/test_<layer>_*.c links only its layer and those below it, so a
# layer can be built and tested on its own.

BUILD   ?= build
CC      ?= cc
SAN     ?=
PKGS    := libmicrohttpd jansson libsodium nettle libcurl gnutls libpq \
           librabbitmq libnats

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer; SAN=thread:
# ThreadSanitizer (make tsan).  Both with clang.
ifeq ($(SAN),1)
CC      := clang
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=all
LDSAN   := -fsanitize=address,undefined
else ifeq ($(SAN),thread)
CC      := clang
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDSAN   := -fsanitize=thread
else
OPT     ?= -O2 -g
LDSAN   :=
endif

# Hardening in every build: stack canaries, position-independent code,
# full RELRO (the GOT read-only once loaded).  _FORTIFY_SOURCE needs the
# optimiser and is left out of sanitizer builds, whose interceptors it
# would bypass.  LDSAN carries the build kind's link flags.
HARDEN  := -fstack-protector-strong -fPIE
ifeq ($(SAN),)
ifneq ($(filter -O1 -O2 -O3 -Os,$(OPT)),)
HARDEN  += -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
endif
endif
LDSAN   += -pie -Wl,-z,relro,-z,now

WARN    := -Wall -Wextra -Werror -Wvla -Wstrict-prototypes \
           -Wmissing-prototypes -Wshadow -Wpointer-arith -Wformat=2 \
           -Wundef -Wcast-align -Wwrite-strings -Wimplicit-fallthrough
# p11-kit-1: only its PKCS#11 header (log/pkcs11.c loads the module
# named by a setting with dlopen; nothing links libp11-kit).
CPPFLAGS := -D_GNU_SOURCE -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
           $(shell pkg-config --cflags p11-kit-1 2>/dev/null)
CFLAGS  := -std=c17 $(WARN) $(OPT) $(HARDEN) -pthread -fno-strict-aliasing \
           $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm -ldl
# The log layer's store (src/log/store.c) is on RocksDB: whatever links
# the log layer links it too (plain -l if pkg-config does not know it).
ROCKSDB_LIBS := $(shell pkg-config --libs rocksdb 2>/dev/null || echo -lrocksdb)

CORE_SRC   := $(wildcard src/core/*.c)
CRYPTO_SRC := $(wildcard src/crypto/*.c)
LOG_SRC    := $(wildcard src/log/*.c)
NET_SRC    := $(wildcard src/net/*.c)
ENGINE_SRC := $(wildcard src/engine/*.c)
API_SRC    := $(wildcard src/api/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
CORE_OBJ   := $(call obj,$(CORE_SRC) $(CRYPTO_SRC))
LOG_OBJ    := $(CORE_OBJ) $(call obj,$(LOG_SRC))
NET_OBJ    := $(CORE_OBJ) $(call obj,$(NET_SRC))
ENGINE_OBJ := $(LOG_OBJ) $(call obj,$(NET_SRC) $(ENGINE_SRC))
API_OBJ    := $(ENGINE_OBJ) $(call obj,$(API_SRC))
ALL_OBJ    := $(API_OBJ) $(call obj,$(CLI_SRC))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: FORCE release all install deb run test unit e2e crash soak sanitize tsan check-test fuzz fuzz-run check format bench bench-build clean help deps deps-build fresh

all: $(BUILD)/tpwallet $(BUILD)/man/man1/tpwallet.1

# The man pages, written from the binary's own help (scripts/man.sh):
# tpwallet(1) and tpwallet-CMD(1) for each command.
$(BUILD)/man/man1/tpwallet.1: $(BUILD)/tpwallet scripts/man.sh
	@echo "  MAN     $(BUILD)/man/man1"
	@rm -rf $(BUILD)/man/man1
	@scripts/man.sh $(BUILD)/tpwallet $(BUILD)/man/man1

# make install [DESTDIR=...] [PREFIX=/usr/local]: the binary and its man
# pages (make deb adds the service's files: scripts/deb.sh).
PREFIX  ?= /usr/local
install: all
	install -D -m 0755 $(BUILD)/tpwallet $(DESTDIR)$(PREFIX)/bin/tpwallet
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(BUILD)/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

# make deb: BUILD/tpwallet_<version>_<arch>.deb (scripts/deb.sh says what
# it installs; tests/e2e/test_deb.py installs and removes it).
deb: all
	@scripts/deb.sh $(BUILD)

help:
	@echo "make run       install deps, build, serve on 127.0.0.1:8080 (data in ./data)"
	@echo "make test      build and run every test, then again under ASan+UBSan and TSan"
	@echo "make tsan      unit and e2e tests under ThreadSanitizer (build/tsan)"
	@echo "make crash     the crash explorer: every crash point of its workloads"
	@echo "make bench-build  build the benchmarks (build/bench) without running them"
	@echo "make check     static checks (clang-format, cppcheck)"
	@echo "make install   the binary and man pages under PREFIX (/usr/local)"
	@echo "make deb       the Debian package: binary, man pages, systemd unit"
	@echo "make fuzz      build libFuzzer harnesses; make fuzz-run runs them"
	@echo "make bench     run the benchmarks that print figures"

# What the tests need too; deps-build only what building and serving need.
# The flags above come from pkg-config when this file is read, so a build
# right after an install runs in a new make (it reads them again): run and
# test install first, then build in a sub-make.
deps:
	@scripts/deps.sh test

deps-build:
	@scripts/deps.sh build

# The commit and RocksDB's version for src/api/buildinfo.c, written again
# at every build but replaced only when they changed.
GEN := $(BUILD)/gen
$(GEN)/buildinfo_gen.h: FORCE
	@mkdir -p $(GEN)
	@scripts/buildinfo.sh >$@.tmp && \
	  { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }
$(BUILD)/src/api/buildinfo.o: $(GEN)/buildinfo_gen.h
$(BUILD)/src/api/buildinfo.o: CPPFLAGS += -I$(GEN)
FORCE:

# The operator's console (console/*, docs/console.md) compiled into the
# binary: src/api/console_routes.c serves the arrays this header holds.
CONSOLE_FILES := $(sort $(wildcard console/*))
$(GEN)/console_gen.h: $(CONSOLE_FILES) scripts/console-embed.sh
	@mkdir -p $(GEN)
	@echo "  EMBED   console/"
	@scripts/console-embed.sh $(CONSOLE_FILES) >$@.tmp && mv $@.tmp $@
$(BUILD)/src/api/console_routes.o: $(GEN)/console_gen.h
$(BUILD)/src/api/console_routes.o: CPPFLAGS += -I$(GEN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tpwallet: $(ALL_OBJ)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

# Unit tests: the layer in the file name picks the objects to link.
$(BUILD)/tests/test_core_%: tests/unit/test_core_%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka
# CLI tests include the one cli/*.c file they test (it needs only core).
$(BUILD)/tests/test_cli_%: tests/unit/test_cli_%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/test_log_%: tests/unit/test_log_%.c $(LOG_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka $(ROCKSDB_LIBS)
$(BUILD)/tests/test_net_%: tests/unit/test_net_%.c $(NET_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/test_engine_%: tests/unit/test_engine_%.c $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka $(ROCKSDB_LIBS)
$(BUILD)/tests/test_api_%: tests/unit/test_api_%.c $(API_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka $(ROCKSDB_LIBS)

# The e2e suite's driver of log/pgjournal (tests/cluster, test_cluster.py).
$(BUILD)/tests/pgjournal_probe: tests/cluster/pgjournal_probe.c $(LOG_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

# The crash explorer's recording shim (tests/crash/recfs.c, an LD_PRELOAD
# library) and the binary with a planted bug the explorer must find
# (docs/crash-model.md): the journal's segment creation without its
# directory fsync.  Only journal.c is compiled again for it.
$(BUILD)/tests/recfs.so: tests/crash/recfs.c
	@mkdir -p $(dir $@)
	@echo "  SHIM    $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -shared -o $@ $< -ldl -lpthread

$(BUILD)/planted/src/log/journal.o: src/log/journal.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (planted: TPW_PLANT_NO_SEGMENT_DIRSYNC)"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -DTPW_PLANT_NO_SEGMENT_DIRSYNC -c $< -o $@

$(BUILD)/tests/tpwallet-planted: $(filter-out $(BUILD)/src/log/journal.o,$(ALL_OBJ)) $(BUILD)/planted/src/log/journal.o
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

# The second planted bug: the archive's move (journal retention) without
# the directory fsync after its rename.
$(BUILD)/planted/src/log/archive.o: src/log/archive.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (planted: TPW_PLANT_NO_ARCHIVE_DIRSYNC)"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -DTPW_PLANT_NO_ARCHIVE_DIRSYNC -c $< -o $@

$(BUILD)/tests/tpwallet-planted-archive: $(filter-out $(BUILD)/src/log/archive.o,$(ALL_OBJ)) $(BUILD)/planted/src/log/archive.o
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

# Benchmarks (bench/*.c), built with the project's warnings and linked
# against the layers below the CLI, so they cannot rot; make test builds
# them, make bench runs them.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

$(BUILD)/bench/%: bench/%.c $(API_OBJ)
	@mkdir -p $(dir $@)
	@echo "  BENCH   $@"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(LDSAN) -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

# bench_merkle compares libsodium's SHA-256 with nettle's (a package here).
$(BUILD)/bench/bench_merkle: CPPFLAGS += -DHAVE_NETTLE

# bench_store measures RocksDB against LMDB (issue 12); both are in
# scripts/deps.sh's build packages.  Debian ships rocksdb.pc and lmdb.pc;
# plain -l flags if pkg-config does not know them.
STORE_LIBS = $(shell pkg-config --libs rocksdb lmdb 2>/dev/null || echo -lrocksdb -llmdb)
$(BUILD)/bench/bench_store: LDLIBS += $(STORE_LIBS)

bench-build: $(BENCH_BIN)

unit: $(UNIT_BIN)
	@tests/count.sh tests/run-unit.sh $(BUILD)/tests

# E2E_JOBS: processes the e2e suites run in (tests/e2e/run.py --jobs).
E2E_JOBS ?= 2

e2e: $(BUILD)/tpwallet $(BUILD)/bench/bench_store $(BUILD)/tests/pgjournal_probe
	@tests/count.sh python3 tests/e2e/run.py --binary $(BUILD)/tpwallet \
	  --jobs $(E2E_JOBS)

# The crash explorer (issue 20, docs/crash-model.md): every crash point
# of its workloads recovered and checked, and the planted bug found.  Its
# own stage of make test, with the plain build only (it runs thousands
# of recoveries; the sanitizer passes would take it past minutes).
crash: $(BUILD)/tpwallet $(BUILD)/tests/tpwallet-planted \
       $(BUILD)/tests/tpwallet-planted-archive $(BUILD)/tests/recfs.so
	@tests/count.sh tests/crash/run.sh $(BUILD)/tpwallet \
	  $(BUILD)/tests/tpwallet-planted $(BUILD)/tests/recfs.so \
	  $(BUILD)/tests/tpwallet-planted-archive

# Release artifacts (docs/releases.md): the binary (and a .deb when one
# was built), SHA256SUMS and, with RELEASE_SECRET_KEY (a minisign secret
# key file), a signature of each.
RELEASE_DIR ?= build/release
release: $(BUILD)/tpwallet
	@scripts/release.sh $(BUILD)/tpwallet $(RELEASE_DIR)

# The soak alone (issue 20, docs/crash-model.md "Soak"): SOAK_S seconds
# (an hour by default) of mixed load with restarts and rotations; the
# report and its plot (soak.json, soak.svg) in SOAK_OUT.
SOAK_S ?= 3600
SOAK_OUT ?= build/soak
soak: $(BUILD)/tpwallet
	@mkdir -p $(SOAK_OUT)
	python3 tests/soak/soak.py --binary $(BUILD)/tpwallet \
	  --duration-s $(SOAK_S) --out $(SOAK_OUT)

# The whole suite: deps, normal build, unit + e2e; then the same under
# AddressSanitizer and UndefinedBehaviorSanitizer; then the fuzzers over
# their seed corpora.
# The closing line totals every suite: "make test: N passed, M failed".
test: export TPW_COUNTS = $(CURDIR)/build/test-counts
test: deps
	@mkdir -p build && rm -f $(TPW_COUNTS) $(TPW_COUNTS).times
	@tests/stage.sh build+unit $(MAKE) --no-print-directory all unit
	@tests/stage.sh fresh $(MAKE) --no-print-directory fresh
	@tests/stage.sh e2e $(MAKE) --no-print-directory e2e
	@tests/stage.sh crash $(MAKE) --no-print-directory crash
	@tests/stage.sh sanitize $(MAKE) --no-print-directory sanitize
	@tests/stage.sh tsan $(MAKE) --no-print-directory tsan
	@tests/stage.sh check $(MAKE) --no-print-directory bench-build check-test
	@tests/stage.sh fuzz $(MAKE) --no-print-directory fuzz-regress
	@awk '{printf "%s %ss, ", $$1, $$2; t+=$$2} END {printf "in all %d s\n", t}' $(TPW_COUNTS).times
	@awk '{p+=$$1; f+=$$2} END {printf "make test: %d passed, %d failed\n", p, f; exit f>0}' $(TPW_COUNTS)

# `make run` as the first command on a machine without the packages: a
# copy of the tree whose pkg-config knows them only once its deps.sh ran.
fresh:
	@tests/count.sh tests/fresh/first-make.sh

sanitize:
	$(MAKE) --no-print-directory BUILD=build/san SAN=1 all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  tests/count.sh python3 tests/e2e/run.py --binary build/san/tpwallet --sanitized \
	    --skip-heavy --jobs $(E2E_JOBS)

# ThreadSanitizer: the unit tests and the e2e suite against a clang
# -fsanitize=thread build.  halt_on_error: the first report stops the
# process and fails the test (the harness also looks for reports in every
# server log): a race is a bug even when the answers came out right.
# All suites but the eight client-policy tests, which spend their time in
# Node.js and in parsing one policy document per request (single-request
# paths the other suites cover): on two cores the whole suite took 7 min,
# this selection about 5.
tsan:
	$(MAKE) --no-print-directory BUILD=build/tsan SAN=thread all unit
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  tests/count.sh python3 tests/e2e/run.py --binary build/tsan/tpwallet \
	    --sanitized --skip-heavy --jobs $(E2E_JOBS) -k '^(?!test_client_policy_)'

# make check refuses an upward include and a banned call (tests/check).
check-test:
	@tests/count.sh tests/check/run.sh

# libFuzzer harnesses (clang).  Seeds live in tests/fuzz/corpus/<name>/.
# The library is compiled once with coverage instrumentation
# (fuzzer-no-link); each harness links it with libFuzzer's main.
FUZZ_BUILD := build/fuzz
FUZZ_SAN   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
FUZZ_LIB_SRC := $(CORE_SRC) $(CRYPTO_SRC) $(LOG_SRC) $(NET_SRC) $(ENGINE_SRC) $(API_SRC)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC/FUZZ $<"
	@clang $(CPPFLAGS) -std=c17 $(WARN) -pthread $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(CPPFLAGS) -std=c17 $(WARN) -pthread $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) $(ROCKSDB_LIBS)

.SECONDARY: $(FUZZ_LIB_OBJ)
$(FUZZ_BUILD)/obj/src/api/buildinfo.o: $(GEN)/buildinfo_gen.h
$(FUZZ_BUILD)/obj/src/api/buildinfo.o: CPPFLAGS += -I$(GEN)
$(FUZZ_BUILD)/obj/src/api/console_routes.o: $(GEN)/console_gen.h
$(FUZZ_BUILD)/obj/src/api/console_routes.o: CPPFLAGS += -I$(GEN)


fuzz: $(FUZZ_BIN)

# Replay the seed corpora (fast; part of make test).
fuzz-regress: $(FUZZ_BIN)
	@p=0; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  $$f -runs=0 tests/fuzz/corpus/$${n#fuzz_} >/dev/null 2>&1 || \
	  { echo "fuzz regress $$n FAILED"; $$f -runs=0 tests/fuzz/corpus/$${n#fuzz_}; \
	    [ -n "$$TPW_COUNTS" ] && echo "$$p 1" >>"$$TPW_COUNTS"; exit 1; }; \
	  p=$$((p + 1)); done; \
	  echo "fuzz corpora: $$p passed, 0 failed"; \
	  [ -z "$$TPW_COUNTS" ] || echo "$$p 0" >>"$$TPW_COUNTS"

# Explore: FUZZ_SECONDS each (default 60).
FUZZ_SECONDS ?= 60
fuzz-run: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -dict=tests/fuzz/$${n#fuzz_}.dict \
	      build/fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

check:
	@scripts/check.sh

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')

run: deps-build
	@$(MAKE) --no-print-directory all
	@$(if $(CONFIG),TPWALLET_CONFIG="$(CONFIG)") scripts/run.sh $(BUILD)/tpwallet

bench: all
	@bench/run.sh $(BUILD)/tpwallet

clean:
	rm -rf build

-include $(shell find $(BUILD) $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
