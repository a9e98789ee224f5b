"""Ray runtime: model replicas, scheduler, masklet store and the Serve app."""
