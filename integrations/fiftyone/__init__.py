"""FiftyOne integration: a view's prompts, detections, or nothing (every object) -> jobs (`FiftyOneSource`),
masklets -> frame labels with review routing (`FiftyOneSink`), an existing store -> labels (`load_store`),
evaluation. Running a view through the model is a pipeline, `pipelines.fiftyone_propagate.propagate`; the
App plugin is under `pipelines/plugins/fiftyone/`.

Exports are imported lazily, so importing the package does not import FiftyOne.
"""

_EXPORTS = {
    "FiftyOneSource": "integrations.fiftyone.source",
    "FiftyOneSink": "integrations.fiftyone.sink",
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
