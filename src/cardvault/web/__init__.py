"""The ASGI application: wiring of the HTTP layers."""
