"""Fixtures several test files share. Each starts its server once per module (or session) that asks for it;
heavy imports wait until a fixture is used, so files that use none start no faster or slower."""

from __future__ import annotations

import pytest

# The files that take minutes, longest first (measured on 2 busy cores; test_video_parity's full-size run and
# test_model_sizes lead stage 2). They are collected first, and scripts/test.sh keeps that order for xdist
# (--no-loadscope-reorder): each worker takes the next file when it is free, so long files at the end would
# leave one worker running alone while the other idles.
LONG_FILES = ("test_serve.py", "test_label_studio.py", "test_serve_cli.py", "test_autolabel.py", "test_video_parity.py",
              "test_model_sizes.py", "test_scheduler.py", "test_training.py", "test_fiftyone_propagate.py",
              "test_autolabel_prompt_free.py", "test_image_parity.py", "test_video_predictor.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable: the others keep their order


@pytest.fixture(scope="session")
def fo():
    """FiftyOne on a private MongoDB (tests/support/fiftyone_db.py)."""
    from tests.support.fiftyone_db import fiftyone_test_database

    return fiftyone_test_database()


@pytest.fixture(scope="module")
def ray_cluster():
    """A private local Ray with two CPUs for the module."""
    from tests.support.ray_local import local_ray

    with local_ray(num_cpus=2, object_store_mib=128):
        yield


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Label Studio (tests/support/label_studio.py) for the module."""
    from tests.support.label_studio import start_server

    ls = start_server(tmp_path_factory.mktemp("label-studio"))
    yield ls
    ls.stop()


@pytest.fixture(scope="module")
def sdk(server):
    """Label Studio's own client, logged in to `server`."""
    from label_studio_sdk import LabelStudio

    from tests.support.label_studio import TOKEN

    return LabelStudio(base_url=server.url, api_key=TOKEN)
