# libFuzzer targets (clang), called from the top directory by the main
# Makefile as $(MAKE) -f tests/fuzz/fuzz.mk <target>:
#
#   fuzz-build   build every target into $(FUZZ_BUILD)/
#   fuzz         build, then run each target for FUZZ_SECONDS (default 60), one
#                after the other (one process: the machines have two cores);
#                new inputs go to $(FUZZ_BUILD)/corpus/<target>/, crashes to
#                $(FUZZ_BUILD)/artifacts/<target>/: copy a crasher into
#                tests/fuzz/regressions/<target>/ once it is fixed
#   fuzz-smoke   for make test: build, replay the seed corpus and the
#                regressions, run each target ~FUZZ_SMOKE_SECONDS; TAP
#                (tests/fuzz/smoke.sh)
#   fuzz-clean
#
# The daemon targets compile sessions/sessiond.c itself (#include, with
# -Dmain=sessiond_main) to reach its static handlers: see fuzz_daemon.h.

FUZZ_CC		?= clang
FUZZ_BUILD	?= build-fuzz
FUZZ_SECONDS	?= 60
FUZZ_SMOKE_SECONDS ?= 10
# Extra libFuzzer flags for `make fuzz`, e.g. FUZZ_ARGS=-only_ascii=1
FUZZ_ARGS	?=

FUZZ_TARGETS	= fuzz_request fuzz_daemon_conn fuzz_daemon_child

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wswitch-enum
JSON_CFLAGS := $(shell pkg-config --cflags json-c 2>/dev/null)
JSON_LIBS := $(shell pkg-config --libs json-c 2>/dev/null)
SAN	 = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=gnu11 -O1 -g -fno-omit-frame-pointer $(SAN) $(WARN) \
	   -D_GNU_SOURCE -Icommon -Isessions -Isandbox -Ifcgi_app

fuzz_request_SRCS	= fcgi_app/fcgi_req.c fcgi_app/fcgi_json.c sessions/proto.c
fuzz_request_FLAGS	= $(JSON_CFLAGS)
fuzz_request_LIBS	= $(JSON_LIBS)
fuzz_request_MAXLEN	= 4096
fuzz_request_RUNARGS	= -dict=tests/fuzz/json.dict

DAEMON_SRCS	= tests/fuzz/fuzz_log.c common/cfg.c common/proc.c sessions/proto.c \
		  sessions/sess_cgroup.c
# Compiled into the target by #include, so only dependencies.
DAEMON_DEPS	= sessions/sessiond.c common/log.c
fuzz_daemon_conn_SRCS	= $(DAEMON_SRCS)
fuzz_daemon_conn_FLAGS	= -Dmain=sessiond_main
fuzz_daemon_conn_MAXLEN	= 8192
fuzz_daemon_child_SRCS	= $(DAEMON_SRCS)
fuzz_daemon_child_FLAGS	= -Dmain=sessiond_main
fuzz_daemon_child_MAXLEN = 8192

FUZZ_BINS = $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
FUZZ_HDRS = $(wildcard common/*.h sessions/*.h fcgi_app/*.h tests/fuzz/*.h)

fuzz-build: $(FUZZ_BINS)

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_daemon_%: $(DAEMON_DEPS)

$(FUZZ_BUILD)/%: tests/fuzz/%.c $$($$*_SRCS) $(FUZZ_HDRS) tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $($*_FLAGS) -o $@ $< $($*_SRCS) $($*_LIBS)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		case $$t in \
		fuzz_request) max=$(fuzz_request_MAXLEN); extra="$(fuzz_request_RUNARGS)";; \
		fuzz_daemon_conn) max=$(fuzz_daemon_conn_MAXLEN); extra=;; \
		fuzz_daemon_child) max=$(fuzz_daemon_child_MAXLEN); extra=;; \
		esac; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
		echo "== $$t: $(FUZZ_SECONDS) s, -max_len=$$max"; \
		$(FUZZ_BUILD)/$$t -max_len=$$max -max_total_time=$(FUZZ_SECONDS) \
		    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ $$extra $(FUZZ_ARGS) \
		    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
		    $$(test -d tests/fuzz/regressions/$$t && echo tests/fuzz/regressions/$$t); \
	done

fuzz-smoke:
	@FUZZ_CC=$(FUZZ_CC) FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) \
	    tests/fuzz/smoke.sh

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean
