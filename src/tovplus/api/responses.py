"""The one hot-path trick for big answers: a view sent as JSON without FastAPI's second pass.

A route with a ``response_model`` that returns a model makes FastAPI validate the answer
against that model again (in the thread pool, one more hop between threads per request) and
only then serialise it. The list routes (the planner overview, the admin list) return views the
services built and typed themselves, so that pass checks nothing new; in a profile under the
``lists`` benchmark it was about a tenth of the busy time (issue 20, docs/benchmarks.md
"Lists"). :func:`model_json` serialises the model straight to JSON bytes with pydantic-core,
the same bytes FastAPI would send. The route keeps its ``response_model``, so the OpenAPI
schema (and docs/api.md) still describe the answer.
"""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


class ModelJSONResponse(Response):
    """``application/json`` from a Pydantic model, serialised once by pydantic-core."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        """The model's JSON (by alias, as FastAPI serialises a ``response_model``)."""
        if not isinstance(content, BaseModel):
            raise TypeError("ModelJSONResponse sends Pydantic models only")
        return type(content).__pydantic_serializer__.to_json(content, by_alias=True)


def model_json(model: BaseModel) -> ModelJSONResponse:
    """Send ``model`` (already built and typed by a service) as the 200 answer."""
    return ModelJSONResponse(model)
