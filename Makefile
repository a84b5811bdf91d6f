# Portico build. `make help` lists the targets.
#
# Every .c under src/ is part of the program; tests/unit/test_X.c links against all of them but
# src/server/main.c. Release objects go to build/release, sanitizer ones to build/asan, fuzzers
# (clang + libFuzzer) to build/fuzz.

CC       ?= cc
PKGS     := yaml-0.1 libpcre2-8 libssl libcrypto jansson libcares libmaxminddb libsystemd libnghttp2 zlib libbrotlienc libzstd modsecurity
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
              -DPT_LIBSYSTEMD_VERSION='"$(shell pkg-config --modversion libsystemd 2>/dev/null)"'
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wimplicit-fallthrough -Wvla -Wpointer-arith -Wundef -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fwrapv -pthread $(WARN) -Isrc $(PKG_CFLAGS) -MMD -MP
REL_CFLAGS  := $(BASE_CFLAGS) -O2 -g
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -DPT_SANITIZE=1
LDLIBS   := $(PKG_LIBS) -lsqlite3 -lcrypt -pthread -lm

SRCS     := $(sort $(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/server/main.c,$(SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

REL_OBJS  := $(SRCS:%.c=build/release/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
REL_LIB   := $(LIB_SRCS:%.c=build/release/%.o)
ASAN_LIB  := $(LIB_SRCS:%.c=build/asan/%.o)
FUZZ_LIB  := $(LIB_SRCS:%.c=build/fuzz/%.o)
UNIT_REL  := $(UNIT_SRCS:tests/unit/%.c=build/release/tests/%)
UNIT_ASAN := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
FUZZERS   := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)

FUZZ_SECONDS ?= 30
PYTEST   := /usr/bin/python3 -m pytest

# Installation (GNU conventions): `make install PREFIX=/usr DESTDIR=/tmp/stage`.
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/portico
INSTALL  ?= install
INSTALL_BIN ?= build/portico
DOCS     := README.md docs/config.md docs/operations.md docs/netlify.md

.PHONY: all asan test test-only unit unit-asan e2e e2e-asan fuzz fuzz-smoke bench bench-h2 bench-compress bench-cache bench-waf waf-sets bench-routes bench-live-apply bench-cache-purge bench-cache-memory \
        bench-ratelimit bench-ratelimit-keys bench-guards bench-slowhttp deps \
        deps-test run jamstack clean format format-check ban-check layer-check help man install uninstall FORCE

all: build/portico

# Objects built through pattern rules are intermediates to make; keep them between runs.
.SECONDARY:

help:
	@echo "make            build build/portico (release, -O2 -g)"
	@echo "make asan       build build/asan/portico (AddressSanitizer + UBSan)"
	@echo "make test       install the test tools (make deps-test), then make test-only"
	@echo "make test-only  format, banned-function and layer checks, unit, end-to-end (release and"
	@echo "                sanitizer builds) and a bounded fuzz run of every fuzzer"
	@echo "make fuzz       build the libFuzzer targets into build/fuzz/"
	@echo "make bench      side-by-side benchmark against nginx (bench/run.sh)"
	@echo "make bench-h2   the same for HTTP/2 over TLS, h2load -c16 -m4 (bench/h2.sh)"
	@echo "make bench-compress  gzip level 6 of a 64 KiB JSON response vs nginx gzip (bench/compress.sh)"
	@echo "make bench-cache  cache hits and gzip against nginx proxy_cache and gzip (bench/cache.sh)"
	@echo "make bench-waf  WAF CPU/request, Portico vs nginx + ModSecurity, same CRS (bench/waf.sh)"
	@echo "make waf-sets   the WAF request sets against nginx + ModSecurity (tests/waf/nginx_sets.sh)"
	@echo "make bench-routes  callgrind Ir/request with 10 vs 1,000 routes (bench/route_scale.sh)"
	@echo "make bench-slowhttp  slowhttptest -H/-B/-X at 10,000 connections with probes (bench/slowhttp.sh)"
	@echo "make bench-cache-purge  time of a cache purge by tag of 10,000 of 100,000 objects"
	@echo "make bench-cache-memory  the cache's memory after 1,000,000 distinct keys (bench/cache_memory.sh)"
	@echo "make bench-ratelimit  admitted vs allowed at 1,000 req/s against 100/s, 2 workers (bench/ratelimit.sh)"
	@echo "make bench-ratelimit-keys  RSS and evictions after 1,000,000 distinct rate-limit keys"
	@echo "make bench-guards  callgrind Ir/request of each guard, and of none vs the build before them"
	@echo "make deps       install the Debian packages needed to build and run"
	@echo "make deps-test  install those and the test and benchmark tools"
	@echo "make run        build and run examples/quickstart.yaml"
	@echo "make man        build the manual page build/portico.1 from docs/portico.1.md"
	@echo "make install    install the binary, portico(1), the docs and an example config under"
	@echo "                PREFIX (default /usr/local); DESTDIR=DIR stages it there instead"
	@echo "make uninstall  remove what make install installed (same PREFIX and DESTDIR)"

build/portico: $(REL_OBJS)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LDLIBS)

build/asan/portico: $(ASAN_OBJS)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

asan: build/asan/portico

build/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

# The dashboard's page, script and style sheet are embedded by .incbin in dashboard.c (gcc's -MMD does not
# see them): editing either rebuilds the object.
DASH_FILES := src/admin/dashboard.html src/admin/dashboard.js src/admin/dashboard.css
build/release/src/admin/dashboard.o build/asan/src/admin/dashboard.o \
build/fuzz/src/admin/dashboard.o: $(DASH_FILES)

# The WAF's default profile is embedded the same way in waf.c (.incbin of waf/*.conf).
WAF_FILES := waf/profile-api-before.conf waf/profile-api-after.conf
build/release/src/guard/waf.o build/asan/src/guard/waf.o build/fuzz/src/guard/waf.o: $(WAF_FILES)

build/release/tests/%: tests/unit/%.c $(REL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -Wno-missing-prototypes -o $@ $^ $(LDLIBS) -lcmocka

build/asan/tests/%: tests/unit/%.c $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Wno-missing-prototypes -o $@ $^ $(LDLIBS) -lcmocka

# Fuzzers: clang with libFuzzer, ASan and UBSan.
FUZZ_CC     := clang
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -fwrapv -pthread -Isrc $(PKG_CFLAGS) -g -O1 \
               -fsanitize=fuzzer-no-link,address,undefined -DPT_SANITIZE=1 -DPT_FUZZING=1 -MMD -MP

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZERS)

# A bounded run of each fuzzer over its committed corpus (new finds go to a scratch dir),
# FUZZ_JOBS at a time: each fuzzer is one process on one core, so two run side by side on a
# 2-core machine in the time of one. Every target runs; any failure fails the whole.
FUZZ_JOBS ?= 2
fuzz-smoke: $(FUZZERS)
	@printf '%s\n' $(FUZZERS) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
	  f={}; n=$$(basename $$f); mkdir -p build/fuzz/new/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
	      build/fuzz/new/$$n tests/fuzz/corpus/$$n >build/fuzz/$$n.log 2>&1 \
	      || { echo "fuzz: $$n FAILED"; tail -50 build/fuzz/$$n.log; exit 1; }'
	@echo "fuzz: all targets clean"

unit: $(UNIT_REL)
	@set -e; for t in $(UNIT_REL); do echo "unit: $$t"; $$t; done

unit-asan: $(UNIT_ASAN)
	@set -e; for t in $(UNIT_ASAN); do echo "unit (asan): $$t"; $$t; done

# End-to-end tests run E2E_JOBS at a time (pytest-xdist): most of their time is spent waiting
# on sockets and timers, so two share a 2-core machine well. E2E_JOBS=0 runs them one by one.
E2E_JOBS ?= 2
E2E_ARGS := $(if $(filter-out 0,$(E2E_JOBS)),-n $(E2E_JOBS),)

e2e: build/portico
	PORTICO_BIN=$(CURDIR)/build/portico $(PYTEST) -q $(E2E_ARGS) tests/e2e

e2e-asan: build/asan/portico
	PORTICO_BIN=$(CURDIR)/build/asan/portico PORTICO_SANITIZE=1 $(PYTEST) -q $(E2E_ARGS) tests/e2e

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS) $(FUZZ_SRCS)

format-check:
	@clang-format --dry-run --Werror $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS) $(FUZZ_SRCS) \
	  && echo "format: clean"

ban-check:
	@scripts/ban-check.sh

layer-check: build/portico
	@scripts/layer-check.sh

# The test tools are installed first, by a separate step: a prerequisite could run in parallel
# with the checks under -j, and the sub-make reads pkg-config only once everything is there.
test:
	scripts/deps.sh --test
	$(MAKE) test-only

test-only: format-check ban-check layer-check unit unit-asan e2e e2e-asan fuzz-smoke

bench:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/run.sh

bench-routes:
	$(MAKE) build/portico
	bench/route_scale.sh

# slowhttptest's three modes at 10,000 connections with a probe every 100 ms (issue 13);
# SLOWHTTP_QUICK=1 for a short run while developing.
bench-slowhttp:
	$(MAKE) build/portico
	bench/slowhttp.sh

# How long an admin API change takes to reach traffic (issue 11: within 100 ms): 50 changes
# through the API, each timed from the API's answer to the first request the new rule serves;
# prints the median and the maximum.
bench-live-apply:
	$(MAKE) build/portico
	PORTICO_BIN=$(CURDIR)/build/portico PORTICO_LIVE_APPLY_ROUNDS=50 $(PYTEST) -q -s \
	  tests/e2e/test_rules_apply.py -k go_live | grep -E 'live apply|passed|failed'

# The time of a purge by tag of 10,000 objects among 100,000 in the cache store (issue 12:
# within 100 ms).
bench-cache-purge: build/release/tests/test_cache_store
	PT_BENCH_PURGE=1 build/release/tests/test_cache_store

bench-h2:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/h2.sh

bench-compress:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/compress.sh

bench-cache:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/cache.sh

# The WAF's CPU per request against nginx + libnginx-mod-http-modsecurity running the same CRS
# and default profile (issue 13); BENCH_QUICK=1 for a short smoke run. Runs the nginx half alone
# while build/portico has no WAF.
bench-waf:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/waf.sh

# The WAF request sets of tests/waf/ (attack, clean, false_positive) against nginx + ModSecurity
# with the stock CRS and with Portico's default profile (waf/profile-api-*.conf), paranoia 1.
waf-sets:
	tests/waf/nginx_sets.sh

# The cache's memory with a 64 MiB cap after 1,000,000 distinct keys (issue 12: within the cap
# plus the documented overhead).
bench-cache-memory:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/cache_memory.sh

# Rate-limit accuracy (issue 13): 1,000 req/s for 10 s against 100/s, burst 20, over two
# workers: admitted within +-5% of 1,020. BENCH_QUICK=1: 3 s.
bench-ratelimit:
	$(MAKE) build/portico
	bench/ratelimit.sh

# The rate-limit table under 1,000,000 distinct keys: peak RSS, table size, evictions.
bench-ratelimit-keys:
	scripts/deps.sh --test
	$(MAKE) build/portico
	bench/ratelimit_keys.sh

# Each guard's cost, and no guard against the build before the guard layer (+-1%), in
# callgrind instructions per request (BASE_REF to choose the baseline; BENCH_QUICK=1).
bench-guards:
	$(MAKE) build/portico
	bench/guards.sh

deps:
	scripts/deps.sh

deps-test:
	scripts/deps.sh --test

run: build/portico
	build/portico run -c examples/quickstart.yaml

jamstack: build/portico
	examples/jamstack/run.sh

# The manual page: docs/portico.1.md and the sections of docs/operations.md it includes, turned
# into roff by a POSIX sh + awk script (no new build dependency).
# The page names installed paths: build/prefix changes (and the page is remade) with PREFIX.
build/portico.1: docs/portico.1.md docs/operations.md scripts/mkman.sh src/server/main.c \
                 build/prefix
	scripts/mkman.sh -p $(PREFIX) docs/portico.1.md >$@.tmp && mv $@.tmp $@

build/prefix: FORCE
	@mkdir -p $(dir $@)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' >$@

FORCE:

man: build/portico.1

# The example configuration goes to DOCDIR, not /etc: the administrator copies it to
# /etc/portico/portico.yaml (the path of the systemd unit in docs/operations.md), so an
# installation never overwrites a live configuration.
# INSTALL_BIN names the binary to install (the tests pass the one they test).
install: $(INSTALL_BIN) build/portico.1
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/portico
	$(INSTALL) -m 0644 build/portico.1 $(DESTDIR)$(MANDIR)/man1/portico.1
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 examples/portico.yaml $(DESTDIR)$(DOCDIR)/portico.yaml.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/portico $(DESTDIR)$(MANDIR)/man1/portico.1 \
	      $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)) portico.yaml.example)
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -rf build

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_LIB:.o=.d)
