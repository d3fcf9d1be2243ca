"""Signed webhooks of lifecycle events.

Only the signature helpers are imported here, so a merchant's receiver can use
``from cardvault.webhooks import verify`` without loading any server part; the
endpoint services, the address guard and the delivery worker are imported from their
own modules.
"""

from cardvault.webhooks.signature import (
    SIGNATURE_HEADER,
    InvalidSignature,
    sign,
    signature_header,
    verify,
)

__all__ = ["SIGNATURE_HEADER", "InvalidSignature", "sign", "signature_header", "verify"]
