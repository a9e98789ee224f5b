"""A real Ray Serve app on this machine for the serving tests: one local Ray and one Serve instance per test
module, apps deployed under their own route prefixes, torn down at the end.

The local Ray gets the app's Serve environment with no drain period for stopping replicas (nothing balances a
test's load): with Serve's 30 s, `serve.shutdown()` took 30 s per module, without 5 s."""

from __future__ import annotations

import socket
from contextlib import contextmanager

from sam2_ray.serve import environment

environment.prepare(drain_s=0)  # before the imports below bring in ray.serve, and before Ray starts

from sam2_ray.serve.app import build_app  # noqa: E402
from sam2_ray.serve.settings import ServeSettings  # noqa: E402
from tests.support.ray_local import local_ray  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_instance(num_cpus: int = 8):
    """Start a local Ray and Serve's HTTP proxy on a free loopback port; yield the base URL."""
    from ray import serve

    with local_ray(num_cpus):
        port = free_port()
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            yield f"http://127.0.0.1:{port}"
        finally:
            serve.shutdown()


def deploy(base_url: str, name: str, settings: dict | ServeSettings) -> str:
    """Deploy the app under /<name>; return its URL."""
    from ray import serve

    settings = settings if isinstance(settings, ServeSettings) else ServeSettings.parse(settings)
    serve.run(build_app(settings), name=name, route_prefix=f"/{name}")
    return f"{base_url}/{name}"
