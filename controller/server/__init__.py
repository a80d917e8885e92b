"""The management server (`gitops serve`): the loop, the relay, and what it shows the world.

`app` composes the server from the modules here: `fleet` (config, inputs, the safe-mode
gate, published outputs), `streams` (the server's halves of the relay streams), and the
HTTP side, a library wired up at start-up: `view` (the read-only `ServerView` the
endpoints see), `http` (the health and API starlette apps), `metrics` (one Prometheus
registry per server, and its app) and `listeners` (uvicorn servers on background threads,
bound ports, `ports.json`). DESIGN.md sections 8 and 11; `docs/endpoints.md` for users.
"""
