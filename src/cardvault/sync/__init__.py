"""State every worker must learn promptly: revoked clients and tokens, new keys."""
