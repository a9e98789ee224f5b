"""With no address every command starts a Ray of its own, whatever cluster the machine names; "auto" or an
address joins one.

The "other" cluster is a private Ray this test process starts; each case connects from a subprocess (a
process connects to Ray once) whose RAY_TMPDIR is a folder of the test's own, so the current-cluster file
it reads is the test's and the machine's /tmp/ray (shared with everyone's Ray) is neither read nor
written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.ray_local import local_ray

GONE = "127.0.0.1:9"  # a cluster that has gone away: nothing listens there

CONNECT = """
import json, sys, ray
from sam2_ray.cluster import connect
connect(sys.argv[1] or None)
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "nodes": len(ray.nodes())}))
ray.shutdown()
"""


@pytest.fixture(scope="module")
def other_cluster() -> str:
    """The GCS address of a running Ray that is not the subprocess's own."""
    import ray

    with local_ray(num_cpus=1):
        yield ray.get_runtime_context().gcs_address


def connect_in_subprocess(address: str, ray_address: str | None = None, current_cluster: str | None = None,
                          timeout: float = 120) -> dict:
    """`connect(address)` in a fresh process whose environment names `ray_address` (RAY_ADDRESS) and whose
    current-cluster file names `current_cluster`; the cluster it ended up on."""
    # Short and private: Ray's session sockets live under it and a Unix socket path has 107 characters.
    tmp = Path(tempfile.mkdtemp(prefix="sam2ray-", dir="/tmp"))
    try:
        if current_cluster is not None:
            (tmp / "ray").mkdir()
            (tmp / "ray" / "ray_current_cluster").write_text(current_cluster)
        env = {**os.environ, "RAY_TMPDIR": str(tmp), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        env.pop("RAY_ADDRESS", None)
        if ray_address is not None:
            env["RAY_ADDRESS"] = ray_address
        run = subprocess.run([sys.executable, "-c", CONNECT, address], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_no_address_starts_a_private_ray_not_the_cluster_the_machine_names(other_cluster):
    joined = connect_in_subprocess("", current_cluster=other_cluster)
    assert joined["gcs"] != other_cluster and joined["nodes"] == 1


def test_no_address_does_not_wait_for_a_cluster_that_has_gone_away():
    # Ray's own default tries to reach the cluster RAY_ADDRESS (else the current-cluster file) names for
    # minutes before it gives up.
    joined = connect_in_subprocess("", ray_address=GONE, timeout=90)
    assert joined["gcs"] != GONE and joined["nodes"] == 1


@pytest.mark.parametrize("address, where", [
    ("auto", "current_cluster"),
    ("auto", "ray_address"),
    ("cluster", None),
])
def test_auto_or_an_address_joins_the_cluster(other_cluster, address, where):
    """"auto" is Ray's: the cluster RAY_ADDRESS names, else the current-cluster file's."""
    joined = connect_in_subprocess(other_cluster if address == "cluster" else address,
                                   **({where: other_cluster} if where else {}))
    assert joined["gcs"] == other_cluster
