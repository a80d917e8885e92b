"""mesh-gitops core: pure translation of Gloo Platform config into per-cluster Istio config.

No I/O, no clock, no randomness (an import-linter contract keeps it so). The runtime
shell in `controller/` reads repositories and snapshots and calls these stages:

    loading.load(tree) -> Bundle
    discovery.load_cluster(cluster, files) -> ClusterInputs
    translating.translate(bundle, fleet) -> per-cluster output + reports

Import modules, not names: `from gitops import loading; loading.load(tree)`.
"""
