"""Online serving on Ray Serve: interactive SAM 2 for annotation tools (see `app.py` for the routes)."""
