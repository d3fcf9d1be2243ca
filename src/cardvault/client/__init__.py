"""The importable cardvault client: token handling and the management/resource APIs.

from cardvault.client import Client

with Client("http://127.0.0.1:8000", client_id, client_secret) as cv:
    cv.get(f"/organizations/{org}/vaults")
"""

from cardvault.client._client import DEFAULT_URL, CardvaultError, Client

__all__ = ["DEFAULT_URL", "CardvaultError", "Client"]
