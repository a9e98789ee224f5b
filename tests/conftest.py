"""Fixtures several test files share. Each starts its server once per module (or session) that asks for it;
heavy imports wait until a fixture is used, so files that use none start no faster or slower."""

from __future__ import annotations

import pytest


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
