"""Lifecycle events of a vault: written with the change they report (an outbox)."""

from cardvault.events.models import EVENT_TYPES, EventName
from cardvault.events.services import (
    emit,
    event_for_state,
    event_row,
    list_events,
    store_events,
)

__all__ = [
    "EVENT_TYPES",
    "EventName",
    "emit",
    "event_for_state",
    "event_row",
    "list_events",
    "store_events",
]
