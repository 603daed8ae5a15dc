"""EventBridge patch: ``TestEventPattern``, answered by moto's own rule matcher."""

from __future__ import annotations

import json
from typing import Any


def events_test_event_pattern() -> None:
    """Implement EventBridge ``TestEventPattern`` (moto: ``NotImplementedError``).

    The answer comes from moto's own event-pattern matcher (``moto.events.models.EventPattern``,
    the one ``PutEvents`` uses for rules: exact values, ``prefix``, ``suffix``,
    ``anything-but``, ``exists``, ``numeric``, ``equals-ignore-case``, ``$or``). The local
    runtime asks the emulator through this API which rules an event matches, exactly as a tool
    would ask AWS.
    """
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def test_event_pattern(self: Any) -> Any:
        pattern = EventPattern.load(self._get_param("EventPattern"))
        event = json.loads(self._get_param("Event") or "{}")
        return json.dumps({"Result": bool(pattern.matches_event(event))}), self.response_headers

    test_event_pattern.__stocksage_patch__ = True  # type: ignore[attr-defined]
    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[method-assign]

