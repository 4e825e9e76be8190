# cluster.mk — build knobs and local-cluster targets (included by Makefile).
#
# Knobs (override on the command line, e.g. `make MODE=debug SAN=1`):
#   MODE        release | debug        debug turns on N_DASSERT expensive checks
#   SAN         0 | 1                  ASan + UBSan build (jemalloc is then not linked)
#   FAULTS      0 | 1                  compile fault-injection points (tests turn it on)
#   BUILD       build                  output folder (use another one per parallel build)
#
# Not knobs: every transport is always compiled (TCP; RDMA, which falls back
# to TCP with one message when no device exists; the in-process test
# transport), and the services are packaged as cooperative tasks in one
# process per node ("singleproc"; ClustRa's "multiproc" is not built).
MODE       ?= release
SAN        ?= 0
FAULTS     ?= 1
BUILD      ?= build

# Local cluster: 4 nodes, 2 sites, loopback.
CLUSTER_CONF ?= tools/local4.conf
CLUSTER_DIR  ?= $(BUILD)/cluster

.PHONY: cluster-start cluster-stop cluster-status
cluster-start: all
	@tools/cluster.sh start $(BUILD) $(CLUSTER_CONF) $(CLUSTER_DIR)
cluster-stop:
	@tools/cluster.sh stop $(BUILD) $(CLUSTER_CONF) $(CLUSTER_DIR)
cluster-status: all
	@$(BUILD)/bin/ninesctl --config $(CLUSTER_CONF) status
