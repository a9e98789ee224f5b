"""One way to start a local Ray for tests: private (never a cluster another process started), quiet (no
dashboard, no usage stats, worker logs kept off the test output), with a small object store, and always shut
down."""

from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def local_ray(num_cpus: int, num_gpus: int = 0, object_store_mib: int = 256):
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR", object_store_memory=object_store_mib * 2**20)
    try:
        yield
    finally:
        ray.shutdown()
