"""The ``cardvault`` command line."""

from cardvault.cli.main import app, main

__all__ = ["app", "main"]
