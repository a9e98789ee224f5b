"""The layer rule of docs/architecture.md, read from the source: imports point down only
(pipelines -> integrations -> sam2_ray -> sam2), integrations know nothing of Ray, the runtime nothing of
the tools."""

import ast

import pytest

from tests.support.paths import REPO

FORBIDDEN = {
    "sam2": ("sam2_ray", "integrations", "pipelines", "ray", "fiftyone", "label_studio_sdk"),
    "sam2_ray": ("integrations", "pipelines", "fiftyone", "label_studio_sdk"),
    "integrations": ("pipelines", "ray", "sam2_ray.scheduler", "sam2_ray.replica", "sam2_ray.cluster"),
}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_up_or_across(package):
    wrong = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package]):
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == []
