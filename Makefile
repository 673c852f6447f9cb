# pyexec: run untrusted Python for HTTP clients.  See README.md.
#
#   make              build build/pyexec-sessiond and build/pyexec-fcgi
#   make run          install what is missing, build, serve on 127.0.0.1:8000
#   make start PORT=N / make stop PORT=N   the same stack in the background
#   make test         unit tests, fuzz smoke, then the integration suite against
#                     each web server (nginx, Apache, lighttpd); ends "N passed, N failed"
#   make bench        the performance table of the README
#   make soak         a mixed workload for SOAK_SECONDS, then invariants
#   make test-cgroup2 the daemon on cgroup v2, in a QEMU guest
#   make fuzz         the libFuzzer targets, FUZZ_SECONDS each
#   make asan         the same programs with AddressSanitizer + UBSan (build-asan/)
#   make install      PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
DESTDIR	?=
PORT	?= 8000
BUILD	?= build

CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wswitch-enum
# The interpreter is Debian's python3.11, found through pkg-config: never
# through the python3 first on PATH, which may be another build.
PY_CFLAGS := $(shell pkg-config --cflags python3-embed 2>/dev/null)
PY_LIBS	  := $(shell pkg-config --libs python3-embed 2>/dev/null)
PY_HOME	  := $(shell pkg-config --variable=prefix python3-embed 2>/dev/null)
PY_VER	  := $(shell pkg-config --modversion python3-embed 2>/dev/null)
JSON_CFLAGS := $(shell pkg-config --cflags json-c 2>/dev/null)
JSON_LIBS := $(shell pkg-config --libs json-c 2>/dev/null)
SECCOMP_LIBS := $(shell pkg-config --libs libseccomp 2>/dev/null)
CAP_LIBS  := $(shell pkg-config --libs libcap 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -Icommon -Isessions -Isandbox -Ifcgi_app \
	    -DPYEXEC_PY_HOME='"$(PY_HOME)"' \
	    -DPYEXEC_PY_STDLIB='"$(PY_HOME)/lib/python$(PY_VER)"' \
	    -DPYEXEC_PY_SITE='"$(PY_HOME)/lib/python3/dist-packages"'
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(CPPFLAGS)

COMMON_SRCS  = common/log.c common/cfg.c common/proc.c
SANDBOX_SRCS = $(wildcard sandbox/*.c)
SESSIOND_SRCS = $(COMMON_SRCS) sessions/proto.c sessions/sess_cgroup.c \
		sessions/sessiond.c sessions/zygote.c sessions/child.c $(SANDBOX_SRCS)
FCGI_SRCS    = $(COMMON_SRCS) sessions/proto.c sessions/sess_client.c \
		fcgi_app/fcgi_json.c fcgi_app/fcgi_req.c fcgi_app/fcgi_main.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROGS = $(BUILD)/pyexec-sessiond $(BUILD)/pyexec-fcgi

all: $(PROGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PY_CFLAGS) $(JSON_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pyexec-sessiond: $(call obj,$(SESSIOND_SRCS))
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PY_LIBS) $(SECCOMP_LIBS) $(CAP_LIBS)

$(BUILD)/pyexec-fcgi: $(call obj,$(FCGI_SRCS))
	$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $^ -lfcgi $(JSON_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- unit tests: each links the module it tests and nothing else ----
UNIT = test_proto test_sess_client test_fcgi_req test_cfg test_sandbox test_proc
test_proto_SRCS	    = sessions/proto.c
test_sess_client_SRCS = sessions/sess_client.c sessions/proto.c common/log.c
test_fcgi_req_SRCS  = fcgi_app/fcgi_req.c fcgi_app/fcgi_json.c sessions/proto.c
test_fcgi_req_LIBS  = $(JSON_LIBS)
test_cfg_SRCS	    = common/cfg.c common/log.c
test_proc_SRCS	    = common/proc.c common/log.c
test_sandbox_SRCS   = $(SANDBOX_SRCS)
test_sandbox_LIBS   = $(SECCOMP_LIBS) $(CAP_LIBS)

UNIT_BINS = $(addprefix $(BUILD)/tests/,$(UNIT))

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call obj,$$($$*_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(JSON_CFLAGS) -Itests/unit -o $@ $^ $($*_LIBS) -pthread

# The benchmark's clients (tests/bench/), built with the unit tests so that
# every test run compiles them.
BENCH_BINS = $(BUILD)/bench/pxbench $(BUILD)/bench/pxdirect

$(BUILD)/bench/pxbench: tests/bench/pxbench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $< -pthread

$(BUILD)/bench/pxdirect: tests/bench/pxdirect.c \
		$(call obj,common/log.c sessions/proto.c sessions/sess_client.c)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Icommon -Isessions $(LDFLAGS) -o $@ $^

unit: $(UNIT_BINS) $(BENCH_BINS)

# ---- the development stack ----
# The build runs in a sub-make: on a fresh machine the pkg-config variables
# above are only right once deps has installed the packages.
# The /docs page's renderer comes from the npm registry (deploy/www/vendor/).
deps:
	@deploy/install-deps.sh
	@deploy/www/fetch-vendor.sh >/dev/null || echo "warning: /docs needs deploy/www/fetch-vendor.sh" >&2

deps-test:
	@deploy/install-deps.sh test
	@deploy/www/fetch-vendor.sh >/dev/null || echo "warning: /docs needs deploy/www/fetch-vendor.sh" >&2

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/stack.sh run $(PORT)

start: deps
	@$(MAKE) --no-print-directory all
	@deploy/stack.sh start $(PORT)

stop:
	@deploy/stack.sh stop $(PORT)

# make test: build, then every test; the last line is "N passed, N failed[, N skipped]".
test: deps-test
	@$(MAKE) --no-print-directory all unit
	@tests/run.sh $(BUILD)

# A mixed workload for SOAK_SECONDS (default 120), then invariants (tests/soak/).
soak: deps-test
	@$(MAKE) --no-print-directory all
	@PYEXEC_BUILD=$(CURDIR)/$(BUILD) bash tests/soak/soak.sh

# The daemon on cgroup v2 (this machine's may be v1): a QEMU guest with
# Debian's kernel and this machine's root, read-only (about 2 minutes, root).
test-cgroup2: deps-test
	@$(MAKE) --no-print-directory all
	@tests/vm/run.sh -- env PYEXEC_BUILD=$(CURDIR)/$(BUILD) bash tests/vm/cgroup-v2.sh

# The benchmark of the README's "Performance" (about 2 minutes, root).
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@tests/bench/run.sh $(BUILD)

# libFuzzer targets (clang): `make fuzz FUZZ_SECONDS=600` runs each as long as asked.
fuzz:
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk fuzz

fuzz-smoke:
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk fuzz-smoke

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" all unit

# make install: PREFIX (/usr/local) and DESTDIR honoured.  An existing
# /etc/pyexec/pyexec.conf is never overwritten: the new default goes beside it
# as pyexec.conf.dist.  Units name the programs under $(PREFIX)/sbin.
SBINDIR	   ?= $(PREFIX)/sbin
MANDIR	   ?= $(PREFIX)/share/man
DATADIR	   ?= $(PREFIX)/share/pyexec
SYSCONFDIR ?= /etc
UNITDIR	   ?= $(PREFIX)/lib/systemd/system

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/pyexec \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(DATADIR)/www $(DESTDIR)$(DATADIR)/apache/errors \
		$(DESTDIR)$(DATADIR)/lighttpd/errors $(DESTDIR)$(DATADIR)/nginx \
		$(DESTDIR)$(DATADIR)/balancer/errors
	install -m 0755 $(BUILD)/pyexec-sessiond $(BUILD)/pyexec-fcgi $(DESTDIR)$(SBINDIR)/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/pyexec/pyexec.conf ]; then \
		install -m 0644 deploy/pyexec.conf $(DESTDIR)$(SYSCONFDIR)/pyexec/pyexec.conf.dist; \
		echo "install: kept $(DESTDIR)$(SYSCONFDIR)/pyexec/pyexec.conf; the new default is pyexec.conf.dist"; \
	else \
		install -m 0644 deploy/pyexec.conf $(DESTDIR)$(SYSCONFDIR)/pyexec/pyexec.conf; \
	fi
	install -m 0644 deploy/man/pyexec.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 deploy/man/pyexec-sessiond.8 deploy/man/pyexec-fcgi.8 $(DESTDIR)$(MANDIR)/man8/
	for u in pyexec-sessiond.service pyexec-fcgi.socket pyexec-fcgi.service; do \
		sed -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/etc/pyexec|$(SYSCONFDIR)/pyexec|g' \
			deploy/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	if [ -d deploy/www ]; then \
		tar -C deploy/www --exclude=./node_modules --exclude='./package*.json' --exclude='./*.sh' \
			-cf - . | tar -C $(DESTDIR)$(DATADIR)/www --no-same-owner -xf -; \
	fi
	for f in apache/pyexec.conf lighttpd/pyexec.conf lighttpd/pyexec-common.conf \
	    lighttpd/pyexec-spawn-fcgi.conf nginx/pyexec.conf balancer/pyexec-haproxy.cfg; do \
		sed -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/usr/local/share/pyexec|$(DATADIR)|g' \
			deploy/$$f > $(DESTDIR)$(DATADIR)/$$f && chmod 0644 $(DESTDIR)$(DATADIR)/$$f; \
	done
	install -m 0644 deploy/apache/errors/*.asis $(DESTDIR)$(DATADIR)/apache/errors/
	install -m 0755 deploy/lighttpd/pyexec-error.sh $(DESTDIR)$(DATADIR)/lighttpd/
	install -m 0644 deploy/lighttpd/errors/* $(DESTDIR)$(DATADIR)/lighttpd/errors/
	install -m 0644 deploy/balancer/errors/*.http $(DESTDIR)$(DATADIR)/balancer/errors/

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all unit deps deps-test run start stop test soak test-cgroup2 bench fuzz fuzz-smoke asan install clean
