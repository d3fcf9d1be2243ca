"""``GET /whoami``: what the presented access token allows."""

from __future__ import annotations

from pydantic import BaseModel

from cardvault.web.auth import Principal
from cardvault.web.http import Call, Route


class WhoAmI(BaseModel):
    client_id: str
    service_account_id: str
    org_id: str
    vault_id: str | None
    scopes: list[str]


async def whoami(call: Call) -> WhoAmI:
    """The caller of this token: its client, organization, vault and scopes."""
    principal: Principal = call.principal
    return WhoAmI(
        client_id=principal.client_id,
        service_account_id=principal.service_account_id,
        org_id=principal.org_id,
        vault_id=principal.vault_id,
        scopes=list(principal.scopes),
    )


ROUTES = [Route("GET", "/whoami", whoami, vault=False, response=WhoAmI, tags=("tokens",))]
