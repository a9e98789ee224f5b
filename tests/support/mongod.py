"""A throw-away mongod on a free loopback port, for tests that need FiftyOne's database.

Start it before FiftyOne connects and point FiftyOne at it with FIFTYONE_DATABASE_URI
(recipe A of the FiftyOne guide): FiftyOne then spawns no server of its own. Stop it only
after the FiftyOne processes using it have exited: FiftyOne's atexit cleanup otherwise waits
about 30 s for the vanished server.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def find_mongod() -> Path:
    """$SAM2_RAY_MONGOD, else the binary scripts/setup.sh installs into the venv, else PATH."""
    candidates = [
        os.environ.get("SAM2_RAY_MONGOD"),
        os.path.join(sys.prefix, "opt", "fodb", "fiftyone", "db", "bin", "mongod"),
        shutil.which("mongod"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise FileNotFoundError(f"no mongod found (run scripts/setup.sh); tried {candidates}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateMongod:
    """`with PrivateMongod() as db: env["FIFTYONE_DATABASE_URI"] = db.uri`."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.port = _free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self._dbpath = tempfile.mkdtemp(prefix="sam2-ray-mongod-")
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "PrivateMongod":
        log = Path(self._dbpath, "mongod.log")
        self._proc = subprocess.Popen(
            [
                str(find_mongod()),
                *("--dbpath", self._dbpath, "--logpath", str(log)),
                *("--port", str(self.port), "--bind_ip", "127.0.0.1", "--nounixsocket"),
                *("--wiredTigerCacheSizeGB", "0.25"),  # small footprint on a 2-core CI box
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.__exit__()
                raise RuntimeError(f"mongod exited with {self._proc.returncode}:\n{tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise TimeoutError(f"mongod did not accept connections within {self.timeout} s")

    def __exit__(self, *exc_info) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: mongod shuts down cleanly
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._dbpath, ignore_errors=True)
