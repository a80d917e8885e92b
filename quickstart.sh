#!/usr/bin/env bash
# The main job on its embedded defaults: translate the example config repository for the
# two demo clusters and show what each cluster would get.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh
out=${1:-out}
.venv/bin/gitops validate examples-repo --snapshot deploy/demo/clusters
.venv/bin/gitops render examples-repo --snapshot deploy/demo/clusters -o "$out"
echo "Istio config per cluster written to $out/ (e.g. $out/cluster1.yaml)"
