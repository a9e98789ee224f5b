"""What a plain `pip install` gets: a wheel built from this tree carries every file of the packages (the
YAML configs, the bundled weights, the FiftyOne plugin manifest), and once installed outside the checkout
the command finds them there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(300)

PACKAGES = ("sam2", "sam2_ray", "integrations", "pipelines", "configs")  # [tool.setuptools.packages.find]


def _package_files() -> set[str]:
    """Every file under the package folders (posix paths from the repo root), bytecode aside."""
    return {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so that setuptools' build/ and *.egg-info stay out of the repo."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in PACKAGES:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    # Without build isolation: the venv's setuptools (a dev dependency), no download.
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr
    (built,) = (tmp / "dist").glob("*.whl")
    return built


def test_the_wheel_carries_every_file_of_the_packages(wheel):
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    assert "pipelines/plugins/fiftyone/fiftyone.yml" in shipped
    assert not _package_files() - shipped, sorted(_package_files() - shipped)


def test_the_installed_wheel_finds_its_plugin_configs_and_weights_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=240)
    assert install.returncode == 0, install.stderr
    # The installed copy comes first on sys.path (before the editable install); run from another folder.
    probe = ("import contextlib, io, json\n"
             "from pipelines import cli, train\n"
             "from sam2.checkpoint import bundled_weights\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out):\n"
             "    cli.main(['fiftyone', 'plugins'])\n"
             "print(json.dumps({'plugins': out.getvalue().strip(), 'train_config': str(train.DEFAULT_CONFIG),\n"
             "                  'weights': str(bundled_weights('sam2.1_hiera_mini'))}))\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stderr
    paths = {key: Path(value) for key, value in json.loads(run.stdout.strip().splitlines()[-1]).items()}
    for path in paths.values():
        assert path.is_relative_to(site), paths
    assert (paths["plugins"] / "fiftyone" / "fiftyone.yml").is_file()
    assert "propagate_masks" in (paths["plugins"] / "fiftyone" / "fiftyone.yml").read_text()
    assert paths["train_config"].is_file() and paths["weights"].is_file()
