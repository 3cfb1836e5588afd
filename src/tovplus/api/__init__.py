"""The JSON API (FastAPI). Routes are thin: they load the caller, call one service, shape the answer."""
