"""Former name of :mod:`confide.hub.store`, kept only until the composition imports the new one."""

from confide.hub.store import HubStore, metadata, outbox, sources, submissions

HubOpStore = HubStore

__all__ = ["HubOpStore", "HubStore", "metadata", "outbox", "sources", "submissions"]
