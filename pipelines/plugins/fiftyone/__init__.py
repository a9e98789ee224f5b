"""The FiftyOne plugin `@sam2_ray/fiftyone` (`fiftyone.yml`): the App operator "Propagate masks with SAM 2".
It lives with the pipelines because its operator runs `propagate`, a pipeline.

FiftyOne loads this file on its own, under a name of its choosing, not as part of the package, so
everything here is imported by absolute name and lazily (listing plugins stays cheap).
"""


def register(plugin):
    """FiftyOne's plugin entry point."""
    from pipelines.plugins.fiftyone.operator import PropagateMasks

    plugin.register(PropagateMasks)
