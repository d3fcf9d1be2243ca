"""Errors of the webhooks domain; each carries its wire code and status."""

from __future__ import annotations


class WebhookError(Exception):
    code = "bad-request"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UrlNotAllowed(WebhookError):
    """Not an http(s) URL, or its host resolves to a non-public address."""

    code = "url-not-allowed"
    status = 422


class InvalidEvents(WebhookError):
    code = "invalid-format"
    status = 422


class EndpointNotFound(WebhookError):
    code = "not-found"
    status = 404


class DeliveryNotFound(WebhookError):
    code = "not-found"
    status = 404


class TooManyEndpoints(WebhookError):
    code = "limit-reached"
    status = 409
