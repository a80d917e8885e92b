"""mesh-gitops core: pure translation of Gloo Platform config into per-cluster Istio config.

No I/O, no clock, no randomness (an import-linter contract keeps it so). The runtime
shell in `controller/` reads repositories and snapshots into `Tree`s and calls:

    loading.load(tree) -> Bundle                       # stage 1: read and validate config
    discovery.load_cluster(cluster, tree) -> ClusterInputs
    translate.translate(bundle, inputs) -> Translation # stage 2: fleet-wide, then
    translation.render(cluster) -> ClusterOutput       #   one cluster at a time
    reports.build(bundle, workspace_of, diagnostics)   # one verdict per resource
    rendering.write_all(objects, write)                # deterministic YAML

`pipeline.run(tree, snapshots, sink)` chains them for `gitops validate`/`render`.
Import modules, not names: `from gitops import loading; loading.load(tree)`.
"""
