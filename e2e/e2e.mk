# Local Kubernetes control plane for the e2e suites (see e2e/cluster/README.md).
# Included by the top-level Makefile, which defines ROOT := $(abspath .).
#
#   make cluster-build   build .e2e/bin/gemma-plane (+ kubectl link) if stale
#   make helm            install the pinned helm into .e2e/bin
#   make cluster-up      start (or reuse) the plane; prints the two export lines
#   make cluster-down    stop everything it started and remove the state dir
#
# In a shell: eval "$(e2e/cluster/up)"  then kubectl / helm talk to the plane.

E2E_CLUSTER := $(ROOT)/e2e/cluster

.PHONY: cluster-build cluster-up cluster-down helm

cluster-build:
	@$(E2E_CLUSTER)/build --no-helm

helm:
	@$(E2E_CLUSTER)/install-helm $(ROOT)/.e2e/bin

cluster-up:
	@$(E2E_CLUSTER)/up

cluster-down:
	@$(E2E_CLUSTER)/down
