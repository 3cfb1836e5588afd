"""The baseline: a bare FastAPI app with one route that returns a small JSON object."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
def bare() -> dict[str, object]:
    return {"status": "ok", "items": []}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
