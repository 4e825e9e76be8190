# cluster.mk — build knobs and local-cluster targets (included by Makefile).
#
# Knobs (override on the command line, e.g. `make MODE=debug SAN=1`):
#   MODE        release | debug        debug turns on N_DASSERT expensive checks
#   SAN         0 | 1                  ASan + UBSan build (jemalloc is then not linked)
#   TRANSPORTS  tcp rdma test          transports compiled in (tcp is always required)
#   PACKAGING   singleproc             services as cooperative tasks in one process
#                                      (multiproc is not built yet, see supervisor/README.md)
#   FAULTS      0 | 1                  compile fault-injection points (tests turn it on)
#   BUILD       build                  output folder (use another one per parallel build)
MODE       ?= release
SAN        ?= 0
TRANSPORTS ?= tcp rdma test
PACKAGING  ?= singleproc
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
