"""Enrolled cards: encrypted PANs, de-duplication, expiry and holder details."""
