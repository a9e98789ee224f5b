"""YAML configuration shipped as package data: models/, pipelines/, serve/, cluster/."""
