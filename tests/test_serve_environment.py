"""Serve's switches are set by whoever starts Ray, never by importing the package."""

import os
import subprocess
import sys

from sam2_ray.serve.environment import DRAIN_ENV, FAST_REQUEST_PATH_ENV, HAPROXY_ENV, prepare, serve_environment
from tests.support.paths import REPO


def test_importing_the_client_and_the_app_leaves_the_environment_alone():
    code = ("import os; before = dict(os.environ); import sam2_ray.serve.client, sam2_ray.serve.app; "
            "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)); "
            "print(changed)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_prepare_keeps_what_the_user_set_but_an_explicit_haproxy_wins(monkeypatch):
    for name in serve_environment(drain_s=0, haproxy=True):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(FAST_REQUEST_PATH_ENV, "0")
    monkeypatch.setenv(HAPROXY_ENV, "0")
    prepare(drain_s=2, haproxy=True)
    assert (os.environ[FAST_REQUEST_PATH_ENV], os.environ[DRAIN_ENV], os.environ[HAPROXY_ENV]) == ("0", "2", "1")


def test_a_cluster_gets_no_drain_and_no_haproxy_unless_asked():
    assert DRAIN_ENV not in serve_environment() and HAPROXY_ENV not in serve_environment()
    assert serve_environment(drain_s=0.5)[DRAIN_ENV] == "0.5"
