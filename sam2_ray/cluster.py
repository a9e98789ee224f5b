"""Where jobs run: a private local Ray on this machine by default, or an existing cluster by address.

Ray's own default (`ray.init()` with no address) joins whatever cluster RAY_ADDRESS or the machine's
current-cluster file names, i.e. one another process started, and hangs when that cluster has gone
away; so no address means `address="local"` here: a Ray of this process's own, shut down with it.
"""

from __future__ import annotations

import os


def connect(address: str | None = None) -> None:
    """Join the cluster at `address` ("auto": the one RAY_ADDRESS or `ray start` on this machine
    names; "HOST:PORT" or "ray://HEAD:10001"), else start a private local Ray; nothing when this
    process is already connected."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="ERROR")
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
