"""The OAuth 2.0 authorization server (client credentials) and its metadata."""
