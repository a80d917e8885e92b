"""The runtime shell: everything that touches the world.

`gitops/` is the pure core (load, translate, plan, report); this package feeds it and
carries its results out: repository sources (`controller.sources`), the Redis store, the
relay server and agent, cluster backends, the reconcile loop, status writers and the CLI.
Nothing in `gitops/` may import from here.
"""
