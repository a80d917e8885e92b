"""Small valid config documents shared by tests that need "one good object" beside bad ones."""

from __future__ import annotations

#: A valid sidecar RouteTable (networking.gloo.solo.io/v2) for bookinfo reviews.
REVIEWS_ROUTE_TABLE = """\
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {name: reviews, namespace: bookinfo-backends}
spec:
  hosts: [reviews.bookinfo-backends.svc.cluster.local]
  http:
  - name: reviews
    matchers: [{uri: {prefix: /}}]
    forwardTo:
      destinations: [{ref: {name: reviews, namespace: bookinfo-backends}, port: {number: 9080}}]
"""
