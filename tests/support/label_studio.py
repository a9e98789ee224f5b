"""A real Label Studio server for the integration tests, run from its own virtualenv
(.venv-labelstudio, made by scripts/setup.sh): headless, an admin with a known legacy token,
local files served from a media folder, local ML backends allowed, prediction validation on, and
nothing that reaches the network.

The first start migrates an empty database (~40 s); the migrated data dir is kept under .cache/
as a template and copied for each test session, so later sessions start in seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.paths import REPO
from tests.support.serve_app import free_port

VENV = REPO / ".venv-labelstudio"
TEMPLATE = REPO / ".cache" / "label-studio-1.23.2-data"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
USER, PASSWORD = "admin@example.com", "admin12345"


def environment(data_dir: Path, media_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "VIRTUAL_ENV"))}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": USER, "LABEL_STUDIO_PASSWORD": PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": TOKEN, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(media_root),
        "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",  # our ML backend runs on 127.0.0.1
        "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false",  # ... and so does the webhook LS creates for it
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false", "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_CONVERTER_DOWNLOAD_RESOURCES": "false", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "fflag_feat_utc_210_prediction_validation_15082025": "true",  # every prediction checked against the config
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
    })
    return env


class LabelStudioServer:
    def __init__(self, data_dir: Path, media_root: Path, log: Path) -> None:
        if not (VENV / "bin" / "label-studio").is_file():
            raise RuntimeError(f"{VENV} has no label-studio: run scripts/setup.sh")
        self.data_dir, self.media_root, self.log = data_dir, media_root, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
                 "--port", str(self.port)],
                env=environment(self.data_dir, self.media_root), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Label Studio did not answer /health within {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        """Stop the server we started (its own process group: the dev server and its children)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start_server(root: Path) -> LabelStudioServer:
    """A server on a free port, its data dir a copy of the migrated template (made on first use)."""
    media_root = root / "media"
    media_root.mkdir(parents=True, exist_ok=True)
    if not (TEMPLATE / "label_studio.sqlite3").is_file():
        TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
        staging = TEMPLATE.with_name(TEMPLATE.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        server = LabelStudioServer(staging, media_root, root / "label-studio-template.log")
        server.start(timeout_s=240)
        server.stop()
        shutil.rmtree(staging / "media", ignore_errors=True)
        staging.replace(TEMPLATE)
    shutil.copytree(TEMPLATE, root / "data")
    server = LabelStudioServer(root / "data", media_root, root / "label-studio.log")
    server.start()
    return server
