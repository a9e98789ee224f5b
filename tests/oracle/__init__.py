"""Test oracle: Meta's reference SAM 2 (`sam2==1.1.0` sdist) run in a subprocess.

Parity tests and benchmarks compare our `sam2` against it on the same seeded random weights.
"""

from .harness import HARNESS_VERSION, OracleError, cache_dir, make_weights, oracle_root, run_job

__all__ = ["HARNESS_VERSION", "OracleError", "cache_dir", "make_weights", "oracle_root", "run_job"]
