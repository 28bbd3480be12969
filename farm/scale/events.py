"""Dask event topics shared by several listeners of one client.

``distributed.Client.subscribe_topic`` keeps one handler per topic: a second
subscription to the same topic replaces the first. A night has two dispatchers on one
client (measurements and portability cells, farm.scale.dispatch), both listening to the
job and progress topics, so each topic is subscribed once per client here and every event
is handed to every listener of it; a listener keeps the events of its own jobs.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

Handler = Callable[[tuple[float, dict[str, Any]]], None]

_lock = threading.Lock()
_routers: "weakref.WeakKeyDictionary[Any, TopicRouter]" = weakref.WeakKeyDictionary()


class TopicRouter:
    """The topic subscriptions of one client, each fanned out to its listeners."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.listeners: dict[str, list[Handler]] = {}
        self._lock = threading.Lock()

    def listen(self, topic: str, handler: Handler) -> None:
        with self._lock:
            first = topic not in self.listeners
            self.listeners.setdefault(topic, []).append(handler)
        if first:
            self.client.subscribe_topic(topic, partial(self._fan_out, topic))

    def unlisten(self, topic: str, handler: Handler) -> None:
        """Stop handing ``topic`` to ``handler``; the last listener gone, the topic is unsubscribed."""
        with self._lock:
            handlers = self.listeners.get(topic, [])
            if handler in handlers:
                handlers.remove(handler)
            last = topic in self.listeners and not handlers
            if last:
                del self.listeners[topic]
        if last:
            self.client.unsubscribe_topic(topic)

    def _fan_out(self, topic: str, event: tuple[float, dict[str, Any]]) -> None:
        with self._lock:
            handlers = list(self.listeners.get(topic, ()))
        for handler in handlers:
            handler(event)


def router_of(client: Any) -> TopicRouter:
    """The one TopicRouter of ``client``."""
    with _lock:
        router = _routers.get(client)
        if router is None:
            router = _routers[client] = TopicRouter(client)
        return router
