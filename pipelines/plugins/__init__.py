"""Plugins of the tools our users work in, one folder each: this folder is the one to name as
FIFTYONE_PLUGINS_DIR (`sam2-ray fiftyone plugins` prints it); FiftyOne finds `fiftyone/fiftyone.yml`."""
