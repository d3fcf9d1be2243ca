"""``GET /whoami``: what the presented access token allows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from cardvault.api.auth import Principal, bearer

router = APIRouter(tags=["tokens"])


class WhoAmI(BaseModel):
    client_id: str
    service_account_id: str
    org_id: str
    vault_id: str | None
    scopes: list[str]


@router.get("/whoami", response_model=WhoAmI)
async def whoami(principal: Annotated[Principal, Depends(bearer)]) -> WhoAmI:
    return WhoAmI(
        client_id=principal.client_id,
        service_account_id=principal.service_account_id,
        org_id=principal.org_id,
        vault_id=principal.vault_id,
        scopes=list(principal.scopes),
    )
