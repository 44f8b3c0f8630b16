# gatehouse build. Sources are discovered by directory, so adding a module
# never needs an edit here:
#   spoa/lib/*.c          -> build/libagent.a (the agent library)
#   spoa/src/*.c          -> build/gatehouse-spoa (all but main.c also in build/libspoa.a)
#   mailproxy/src/*.c     -> build/gatehouse-mailproxy (all but main.c also in
#                            build/libmailproxy.a)
#   tools/gatehouse/*.c   -> build/gatehouse (operator CLI)
#   tests/unit/test_*.c   -> build/tests/test_* (cmocka, linked with libagent.a; a test
#                            of a daemon's own file also with that daemon's archive)
#   tests/fuzz/fuzz_*.c   -> build/fuzz/fuzz_* (libFuzzer, clang; library sources plus
#                            the daemons' pure parser files)
#   tools/bench/*.c       -> build/bench/* (benchmark drivers, linked with libagent.a)
#
# BUILD selects the output directory; `make check-asan` uses build-asan/.

BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3
SAN      ?=
OPT      ?= -O2 -g

WARN := -std=c11 -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
        -Wmissing-declarations -Wshadow -Wpointer-arith -Wsign-compare \
        -Wcast-qual -Wformat=2 -Wno-format-nonliteral
CPPFLAGS += -D_GNU_SOURCE -Ispoa/include -MMD -MP
CFLAGS   += $(OPT) $(WARN) $(SAN) -pthread -fno-strict-aliasing
LDFLAGS  += $(SAN) -pthread
LIBS     := -lldap -llber -lmemcached -lcurl -lev -lssl -lcrypto -linih -lbsd
MP_LIBS  := -lgssapi_krb5

LIB_SRC   := $(sort $(wildcard spoa/lib/*.c))
SPOA_SRC  := $(sort $(wildcard spoa/src/*.c))
MP_SRC    := $(sort $(wildcard mailproxy/src/*.c))
CLI_SRC   := $(sort $(wildcard tools/gatehouse/*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard tools/bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SPOA_OBJ  := $(SPOA_SRC:%.c=$(BUILD)/obj/%.o)
MP_OBJ    := $(MP_SRC:%.c=$(BUILD)/obj/%.o)
SPOA_LIB_OBJ := $(filter-out %/main.o,$(SPOA_OBJ))
MP_LIB_OBJ   := $(filter-out %/main.o,$(MP_OBJ))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCHES   := $(BENCH_SRC:tools/bench/%.c=$(BUILD)/bench/%)

BINS := $(BUILD)/libagent.a
ifneq ($(SPOA_SRC),)
BINS += $(BUILD)/gatehouse-spoa
endif
ifneq ($(MP_SRC),)
BINS += $(BUILD)/gatehouse-mailproxy
endif
ifneq ($(CLI_SRC),)
BINS += $(BUILD)/gatehouse
endif

# Objects are never thrown away as intermediates (tests and benches are
# built from pattern rules).
.SECONDARY:

.PHONY: all deps test unit integration check-asan fuzz bench bench-lookup \
        bench-http bench-mail bench-ops run clean

all: $(BINS) $(TESTS) $(BENCHES)

# The Makefile is a prerequisite: when files move (a header from one folder
# to another), the old dependency files name paths that no longer exist and
# would leave stale objects behind; a changed Makefile rebuilds everything.
$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libagent.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The daemons' own files (all but main.c), for the unit tests of those files.
$(BUILD)/libspoa.a: $(SPOA_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmailproxy.a: $(MP_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/gatehouse-spoa: $(SPOA_OBJ) $(BUILD)/libagent.a
	$(CC) $(LDFLAGS) -o $@ $(SPOA_OBJ) $(BUILD)/libagent.a $(LIBS)

$(BUILD)/gatehouse-mailproxy: $(MP_OBJ) $(BUILD)/libagent.a
	$(CC) $(LDFLAGS) -o $@ $(MP_OBJ) $(BUILD)/libagent.a $(LIBS) $(MP_LIBS)

$(BUILD)/gatehouse: $(CLI_OBJ) $(BUILD)/libagent.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libagent.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libagent.a $(LIBS) -lcmocka

# Tests see the daemons' headers; the library's objects never do.
$(BUILD)/obj/tests/%.o: CPPFLAGS += -Imailproxy/src -Ispoa/src

# Unit tests of a daemon's own files link that daemon's archive.
MP_TESTS   := $(filter $(addprefix $(BUILD)/tests/,test_mp_% test_imapcmd test_pop3cmd \
                test_sasl test_sasl_line test_gssapi),$(TESTS))
SPOA_TESTS := $(filter $(addprefix $(BUILD)/tests/,test_spop test_httpuser test_authsrv),$(TESTS))

$(MP_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libmailproxy.a $(BUILD)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libmailproxy.a $(BUILD)/libagent.a $(LIBS) $(MP_LIBS) -lcmocka

$(SPOA_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libspoa.a $(BUILD)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libspoa.a $(BUILD)/libagent.a $(LIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/tools/bench/%.o $(BUILD)/libagent.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libagent.a $(LIBS)

# Install missing Debian packages (idempotent; a no-op when all are present).
deps:
	@bash tools/deps.sh

unit: $(TESTS)
	@set -e; fails=0; for t in $(TESTS); do \
	  echo "== $$t"; $$t || fails=$$((fails+1)); done; \
	  if [ $$fails -ne 0 ]; then echo "unit: $$fails test program(s) failed"; exit 1; fi

integration: $(BINS)
	GATEHOUSE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) unit
	$(MAKE) integration

# Every test, built and run under AddressSanitizer and UndefinedBehaviorSanitizer.
ASAN_VARS := BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
             SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

check-asan: deps
	$(MAKE) -j$(JOBS) $(ASAN_VARS) all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) $(ASAN_VARS) unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) $(ASAN_VARS) integration

# libFuzzer targets: each links the library sources and the daemons' pure
# parser files (no I/O, no globals), built with clang.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Ispoa/include -Imailproxy/src -Ispoa/src \
              -fsanitize=fuzzer,address,undefined
FUZZ_TIME  ?= 20
FUZZ_PARSERS := $(addprefix mailproxy/src/,imapcmd.c pop3cmd.c sasl.c sasl_line.c gssapi_parse.c) \
                $(addprefix spoa/src/,spop.c httpuser.c authsrv.c)

# one clang call per target: depend on every header used, not a .d file
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(FUZZ_PARSERS) $(wildcard spoa/include/*.h) \
                 $(wildcard $(FUZZ_PARSERS:.c=.h)) mailproxy/src/gssapi.h \
                 $(wildcard mailproxy/src/*-t.h spoa/src/*-t.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRC) $(FUZZ_PARSERS) $(LIBS)

fuzz: deps $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); \
	  mkdir -p $(BUILD)/fuzz/work-$$n; \
	  echo "== $$n ($(FUZZ_TIME)s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -max_len=65536 $(BUILD)/fuzz/work-$$n tests/fuzz/corpus/$$n; done

# each bench target also saves its table as $(BENCH_REPORT)/<bench>.json;
# `make bench` ends with the report of them (report.md + PNGs, report.html)
BENCH_REPORT ?= $(BUILD)/bench-report

bench: bench-lookup bench-http bench-mail bench-ops
	$(PYTHON) tools/bench/report.py $(BENCH_REPORT)

bench-lookup: deps all
	$(PYTHON) tools/bench/bench_lookup.py --build $(abspath $(BUILD)) --report $(BENCH_REPORT)

bench-http: deps all
	$(PYTHON) tools/bench/bench_http.py --build $(abspath $(BUILD)) --report $(BENCH_REPORT)

bench-mail: deps all
	$(PYTHON) tools/bench/bench_mail.py --build $(abspath $(BUILD)) --report $(BENCH_REPORT)

bench-ops: deps all
	$(PYTHON) tools/bench/bench_ops.py --build $(abspath $(BUILD)) --report $(BENCH_REPORT)

# NODES=2 (or more): a cluster of gatehouse nodes on 127.0.0.11, 127.0.0.12, ...
NODES ?= 1

run: deps all
	$(PYTHON) tools/demo/run.py --build $(abspath $(BUILD)) --nodes $(NODES)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Manual pages, generated from README.md and tools/man/*.md into man/ (the
# generated pages are committed: a package build needs no generator).
.PHONY: man
man:
	$(PYTHON) tools/man/mkman.py --out man

# The Debian package (debian/): built by dpkg-buildpackage from a copy of
# the source in $(BUILD)/deb/src (the checkout stays clean), checked with
# lintian (errors and warnings fail; debian/*.lintian-overrides say why for
# the rest); gatehouse_*.deb lands in $(BUILD)/. Needs debhelper and
# lintian (tools/deps.sh).
DEB_DIR := $(BUILD)/deb

.PHONY: deb
deb: deps
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	tar -cf - --exclude=./build --exclude='./build-*' --exclude=./.git \
	    --exclude=./run --exclude=./gatehouse.conf --exclude='*.pem' \
	    --exclude=./certs/.demo-ca --exclude=__pycache__ --exclude=.pytest_cache \
	    . | tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc -J$(JOBS)
	lintian --fail-on error,warning $(DEB_DIR)/*.changes
	rm -f $(BUILD)/gatehouse_*.deb $(BUILD)/gatehouse-dbgsym_*.deb
	mv $(DEB_DIR)/*.deb $(BUILD)/
	@ls -l $(BUILD)/*.deb
