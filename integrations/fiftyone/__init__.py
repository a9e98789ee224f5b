"""FiftyOne integration: prompts from dataset fields -> runtime jobs, masklets -> frame labels,
review routing, evaluation; also a FiftyOne plugin (this folder, with `fiftyone.yml`: point
`FIFTYONE_PLUGINS_DIR` at `integrations/`) whose operator propagates masks from the App.

    from integrations.fiftyone import propagate
    propagate(dataset.match_tags("todo"), prompt_field="keyframes", label_field="sam2")

FiftyOne loads this file on its own, not as part of the package, so everything here is imported
by absolute name and lazily (importing the package stays cheap).
"""

_EXPORTS = {
    "propagate": "integrations.fiftyone.propagation",
    "load_store": "integrations.fiftyone.reader",
    "evaluate_masklets": "integrations.fiftyone.evaluation",
    "ReviewRules": "integrations.fiftyone.review",
    "ensure_metadata": "integrations.fiftyone.media",
}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


def register(plugin):
    """FiftyOne's plugin entry point."""
    from integrations.fiftyone.operator import PropagateMasks

    plugin.register(PropagateMasks)
