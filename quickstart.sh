#!/usr/bin/env bash
# The main job on its embedded defaults: translate the example config repository for the
# two demo clusters, then run the whole product once (`gitops demo --once`: a Git repository,
# the management server with its built-in Redis, two agents on folder-backed clusters) and
# show each cluster synced.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-system.sh
scripts/ensure-venv.sh
out=${1:-out}
.venv/bin/gitops validate examples-repo --snapshot deploy/demo/clusters
.venv/bin/gitops render examples-repo --snapshot deploy/demo/clusters -o "$out"
echo "Istio config per cluster written to $out/ (e.g. $out/cluster1.yaml)"
.venv/bin/gitops demo --once
echo "Run '.venv/bin/gitops demo' to keep it running and try changes (it prints what to try)."
