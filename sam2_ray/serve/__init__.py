"""Online serving on Ray Serve: interactive SAM 2 for annotation tools (see `app.py` for the routes).

Importing this package changes nothing: the command or test that starts Ray calls `environment.prepare`
first (Serve's request path and timeouts are read once, when Ray starts; see `environment.py`)."""
