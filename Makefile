# ninesdb top-level Makefile. Knobs live in cluster.mk.
.DEFAULT_GOAL := all
include cluster.mk
# cluster.mk defines targets first; a bare `make` builds, it does not start a cluster.
.DEFAULT_GOAL := all

CC      ?= cc
PKGS    := libprotobuf-c libssl libcrypto
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -g -pthread -I. -Iinclude -Icommon -Itests -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lpg_query -libverbs -pthread -lm
ifeq ($(MODE),debug)
CFLAGS  += -O0 -DNINES_DEBUG=1
else
CFLAGS  += -O2
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -DNINES_TSAN=1
LDFLAGS += -fsanitize=thread
else
LDLIBS  += -ljemalloc
CFLAGS  += -DNINES_JEMALLOC=1
endif
ifeq ($(FAULTS),1)
CFLAGS  += -DNINES_FAULTS=1
endif

# V=1 shows full command lines.
Q := $(if $(filter 1,$(V)),,@)

# Modules in dependency order (later may use earlier). Each becomes lib<mod>.a,
# a sub-folder module with its slash flattened (kernel/svc -> libkernel_svc.a).
MODULES := common net arbitrator kernel dict conv runtime updchan kernel/svc dict/svc txctl supervisor client sql tools
PROTOS  := $(wildcard proto/*.proto)
GEN_C   := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H   := $(GEN_C:.c=.h)

# Library sources: every .c in a module folder except *_main.c.
lib_srcs = $(filter-out %_main.c,$(wildcard $(1)/*.c))
lib_name = lib$(subst /,_,$(1)).a
LIBS    := $(foreach m,$(MODULES),$(if $(call lib_srcs,$(m)),$(BUILD)/lib/$(call lib_name,$(m))))
GENLIB  := $(if $(GEN_C),$(BUILD)/lib/libproto.a)
ALL_LIBS = $(LIBS) $(GENLIB)
LINK     = @echo "  LINK  $@"; $(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) -Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(LDLIBS)

BINS    := $(BUILD)/bin/ninesd $(BUILD)/bin/ninesctl $(BUILD)/bin/ninesarb \
           $(patsubst bench/%_main.c,$(BUILD)/bin/%,$(wildcard bench/*_main.c)) \
           $(patsubst tools/drill/%_main.c,$(BUILD)/bin/%,$(wildcard tools/drill/*_main.c))
UNIT_SRCS  := $(wildcard tests/unit/*_test.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
CLUST_SRCS := $(wildcard tests/cluster/*_test.c)
CLUST_BINS := $(patsubst tests/cluster/%.c,$(BUILD)/tests/%,$(CLUST_SRCS))

.PHONY: all test unit-test cluster-test run bench clean deps-check asan-test tsan-test drills \
        bench-takeover bench-repair bench-pgbench
all: $(BINS)

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/lib/libproto.a: $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

define module_lib
$(BUILD)/lib/$(call lib_name,$(1)): $(patsubst %.c,$(BUILD)/obj/%.o,$(call lib_srcs,$(1)))
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_lib,$(m))))

$(BUILD)/bin/ninesd: $(BUILD)/obj/supervisor/ninesd_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
$(BUILD)/bin/ninesctl: $(BUILD)/obj/tools/ninesctl_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
$(BUILD)/bin/ninesarb: $(BUILD)/obj/arbitrator/arb_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
$(BUILD)/bin/%: $(BUILD)/obj/bench/%_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
# The failure drills' checker (tools/drill/README.md).
$(BUILD)/bin/%: $(BUILD)/obj/tools/drill/%_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
# Only the SQL front end's tests link libpq (they drive it as a client).
$(BUILD)/obj/tests/unit/pgw_test.o: CFLAGS += $(shell pkg-config --cflags libpq)
$(BUILD)/tests/pgw_test: LDLIBS += $(shell pkg-config --libs libpq)
$(BUILD)/obj/tests/cluster/sql_cluster_test.o: CFLAGS += $(shell pkg-config --cflags libpq)
$(BUILD)/tests/sql_cluster_test: LDLIBS += $(shell pkg-config --libs libpq)
# Only the LMDB comparison benchmark links LMDB.
$(BUILD)/bin/kern_vs_lmdb: LDLIBS += -llmdb
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/cu_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -lcunit
$(BUILD)/tests/%: $(BUILD)/obj/tests/cluster/%.o $(BUILD)/obj/tests/cu_main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -lcunit

# ---- fuzzing (fuzz/README.md) ----
# The harness bodies (fuzz/*.c but the libFuzzer wrapper and the seed
# writer) link into the replay unit test of the default run; `make fuzz`
# builds one libFuzzer binary per harness with clang-14 in build-fuzz/ and
# runs each FUZZ_SECONDS on fuzz/corpus/<name> (new inputs go to
# build-fuzz/corpus/<name>, crashes to build-fuzz/crash-<name>-*; fuzz/<name>.dict,
# when there is one, is its libFuzzer dictionary).
FUZZ_SRCS    := $(filter-out fuzz/lf_main.c fuzz/%_main.c,$(wildcard fuzz/*.c))
FUZZ_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(FUZZ_SRCS))
FUZZ_NAMES   := frame conf dict ckpt redo nsf gcpfile rcbound manifest client arbrec sqlstmt \
                pgwmsg
FUZZ_BINS    := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
$(BUILD)/tests/fuzz_replay_test: $(FUZZ_OBJS)
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link
endif
$(BUILD)/obj/fuzz/lf_%.o: fuzz/lf_main.c fuzz/fuzz.h
	@mkdir -p $(dir $@)
	@echo "  CC    $< ($*)"
	$(Q)$(CC) $(CFLAGS) -DFUZZ_ENTRY=fuzz_$* -c -o $@ $<
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/fuzz/lf_%.o $(FUZZ_OBJS) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -fsanitize=fuzzer
# The seed corpora's writer (fuzz/seeds_main.c): `make fuzz-seeds`.
$(BUILD)/bin/fuzz_seeds: $(BUILD)/obj/fuzz/seeds_main.o $(FUZZ_OBJS) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(LINK)
.PHONY: fuzz fuzz-bins fuzz-seeds
fuzz-seeds: $(BUILD)/bin/fuzz_seeds
	@$(BUILD)/bin/fuzz_seeds fuzz/corpus && mkdir -p fuzz/corpus/conf && cp tools/*.conf fuzz/corpus/conf/
fuzz-bins: $(FUZZ_BINS)
fuzz:
	@$(MAKE) --no-print-directory CC=clang-14 SAN=1 FUZZ=1 BUILD=$(FUZZ_BUILD) \
	    $(patsubst %,$(FUZZ_BUILD)/fuzz/fuzz_%,$(or $(FUZZ_ONLY),$(FUZZ_NAMES)))
	@for n in $(or $(FUZZ_ONLY),$(FUZZ_NAMES)); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n fuzz/regress/$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        $$(test -f fuzz/$$n.dict && echo -dict=fuzz/$$n.dict) \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	        $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n fuzz/regress/$$n \
	        >$(FUZZ_BUILD)/fuzz_$$n.log 2>&1 || { tail -n 40 $(FUZZ_BUILD)/fuzz_$$n.log; exit 1; }; \
	    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units' $(FUZZ_BUILD)/fuzz_$$n.log; \
	done

# The README's test command runs this: dependency check, then (built in
# parallel, run one after another) unit suites, cluster tests, and both again
# under ASan/UBSan (nodes included) in their own build folder.
test: deps-check
	@$(MAKE) --no-print-directory $(BINS) $(UNIT_BINS) $(CLUST_BINS)
	@tests/run.sh $(UNIT_BINS)
	@NINES_BIN=$(BUILD)/bin tests/run.sh $(CLUST_BINS)
	@$(MAKE) --no-print-directory asan-test
unit-test: $(UNIT_BINS)
	@tests/run.sh $(UNIT_BINS)
cluster-test: $(BINS) $(CLUST_BINS)
	@NINES_BIN=$(BUILD)/bin tests/run.sh $(CLUST_BINS)
asan-test:
	@$(MAKE) --no-print-directory SAN=1 MODE=debug BUILD=build-asan unit-test cluster-test
# ThreadSanitizer (issue 12 item 6): unit and cluster tests, nodes included,
# in their own build folder. Every process writes its reports to
# build-tsan/reports/tsan.PID; any report fails the target.
tsan-test:
	@rm -rf build-tsan/reports && mkdir -p build-tsan/reports
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66 log_path=$(CURDIR)/build-tsan/reports/tsan $${TSAN_OPTIONS:-}" \
	    $(MAKE) --no-print-directory SAN=thread MODE=debug BUILD=build-tsan unit-test cluster-test
	@if ls build-tsan/reports/tsan.* >/dev/null 2>&1; then \
	    echo "tsan-test: ThreadSanitizer reports in build-tsan/reports:"; \
	    head -n 40 build-tsan/reports/tsan.*; exit 1; fi
deps-check:
	@tools/deps-check.sh

run: all
	@tools/run-main.sh $(BUILD) $(CLUSTER_CONF) $(CLUSTER_DIR)
bench: all
	@tools/run-bench.sh $(BUILD)
# Every failure drill at full length (tools/drill/README.md); DRILLS=names picks some.
drills: all
	@NINES_BIN=$(BUILD)/bin LOAD_S=$${LOAD_S:-3} AFTER_S=$${AFTER_S:-6} tools/drill/drill.sh $(or $(DRILLS),all)
# Takeover gap over ROUNDS kills, then MODE=suspicions for false suspicions (bench/README.md).
bench-takeover: all
	@NINES_BIN=$(BUILD)/bin bench/takeover.sh $(or $(TAKEOVER_MODE),kill)
# Self-repair at TPC-B scale 10 (bench/README.md "Self-repair").
bench-repair: all
	@NINES_BIN=$(BUILD)/bin bench/repair.sh
# pgbench against ninesdb's SQL front end and a PostgreSQL primary with a synchronous
# standby, side by side (bench/README.md "pgbench side by side with PostgreSQL (issue 11)").
bench-pgbench: all
	@NINES_BIN=$(BUILD)/bin bench/pgbench-compare.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Keep objects between runs (they are not intermediate files to delete).
.SECONDARY:
