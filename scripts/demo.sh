#!/usr/bin/env bash
# The README's `make demo`: two pods in their own network namespaces, a node
# agent that installs the redirect rules and hands the netns over ZDS, and a
# node proxy carrying pod A's plain TCP to pod B over HBONE mTLS.
#
# The node agent and node proxy programs that join the layers are not written
# yet, so this says so instead of faking it.
set -euo pipefail
build=${1:-build}
ctl=$build/examples/ambientctl/ambientctl
"$ctl" version
cat <<'MSG'

The end-to-end demo (two pods, node agent, node proxy, HBONE between them) is
not built yet: the example node agent and node proxy that join the layers are
still to be written. Each layer works on its own today; try them with
  ambientctl spiffe --help    SPIFFE IDs and X509-SVID verification
  ambientctl rules --help     istio-cni's redirect rules: render, apply, check, delete
  ambientctl zds --help       the ZDS netns handoff, node-agent and node-proxy ends
  ambientctl hbone --help     HBONE tunnels: serve, connect, forward
README.md's status table says what works today. Nothing above was faked.
MSG
