"""The adapter catalog and the integration principal's own identity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import BEARER, CatalogOut, MeOut
from tovplus.services.catalog import catalog
from tovplus.services.connections import whoami

router = APIRouter(prefix="/v1/integrations", tags=["catalog"], dependencies=[Security(BEARER)])


@router.get("/catalog", response_model=CatalogOut)
def get_catalog(rt: RuntimeDep, caller: CallerDep) -> CatalogOut:
    """Every installed adapter, as any authenticated caller may see it."""
    return CatalogOut(adapters=catalog(rt))


@router.get("/me", response_model=MeOut)
def get_me(caller: CallerDep) -> dict[str, Any]:
    """The calling integration principal (403 for users)."""
    return whoami(caller)
