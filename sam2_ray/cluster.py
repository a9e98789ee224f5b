"""Where jobs run: a local Ray on this machine by default, or an existing cluster by address."""

from __future__ import annotations

import os


def connect(address: str | None = None) -> None:
    """Join the cluster at `address` (e.g. "ray://head:10001" or "auto"), else start a local Ray;
    nothing when this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="ERROR")
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
