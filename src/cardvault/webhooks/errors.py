"""Errors of the webhooks domain; each carries its wire code and status."""

from __future__ import annotations

from cardvault.problems import Problem


class WebhookError(Problem):
    """Base of the webhooks domain's errors."""


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
