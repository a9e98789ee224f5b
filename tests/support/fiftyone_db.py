"""FiftyOne pointed at a private mongod, started once per test process, in a database of its own.

FiftyOne reads its database settings once, at its first connection, so one server serves every
FiftyOne test module of a session. The server is stopped at exit after FiftyOne has disconnected:
FiftyOne's own exit hook otherwise waits about 30 s for the vanished server.
"""

from __future__ import annotations

import atexit
import os
import sys

from tests.support.mongod import PrivateMongod

_server: PrivateMongod | None = None


def _stop(server: PrivateMongod) -> None:
    if "fiftyone" in sys.modules:
        import fiftyone.core.odm.database as database

        database._disconnect()  # private, but the only way to make FiftyOne's exit hook skip the server
    server.__exit__()


def fiftyone_test_database():
    """The `fiftyone` module, connected to this session's private server."""
    global _server
    if _server is None:
        server = PrivateMongod().__enter__()
        atexit.register(_stop, server)
        settings = {
            "FIFTYONE_DATABASE_URI": server.uri,
            "FIFTYONE_DATABASE_NAME": f"sam2-ray-tests-{os.getpid()}",
            "FIFTYONE_DATABASE_VALIDATION": "false",  # mongod 6.0 is supported; skip the oldest-version notice
            "FIFTYONE_DO_NOT_TRACK": "true",  # no network
        }
        os.environ.update(settings)
        import fiftyone as fo

        # In case fiftyone was imported before this (its config is read at import).
        fo.config.database_uri = server.uri
        fo.config.database_name = settings["FIFTYONE_DATABASE_NAME"]
        fo.config.database_validation = False
        fo.config.do_not_track = True
        _server = server
    import fiftyone as fo

    return fo
