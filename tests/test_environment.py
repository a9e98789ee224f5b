"""The set-up gives what the layers rely on: a working FiftyOne database, a light `sam2`."""

import os
import subprocess
import sys
import textwrap

from tests.support.mongod import PrivateMongod


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_fiftyone_stores_a_sample_in_the_private_mongod(tmp_path):
    with PrivateMongod() as db:
        out = run_python(
            """
            import fiftyone as fo
            dataset = fo.Dataset()
            dataset.add_sample(fo.Sample(filepath="/tmp/frame.png"))
            print(dataset.count(), dataset.persistent)
            """,
            env={
                "FIFTYONE_DATABASE_URI": db.uri,
                "FIFTYONE_DATABASE_VALIDATION": "false",
                "FIFTYONE_DO_NOT_TRACK": "true",
                "HOME": str(tmp_path),  # keeps ~/.fiftyone of the test run out of the real home
            },
        )
    assert out.split() == ["1", "False"]


def test_importing_sam2_pulls_in_no_runtime_or_integration_package():
    out = run_python(
        """
        import sys
        import sam2
        print(sorted({"ray", "fiftyone", "label_studio_sdk"} & set(sys.modules)))
        """
    )
    assert out.strip() == "[]"


def test_a_replica_that_never_compiles_does_not_import_the_compiler():
    """torch._dynamo costs about as much as torch to import, in every replica and command."""
    out = run_python(
        """
        import sys
        import sam2_ray.replica, sam2.build_sam, sam2.sam2_video_predictor
        print("torch._dynamo" in sys.modules)
        """
    )
    assert out.strip() == "False"
