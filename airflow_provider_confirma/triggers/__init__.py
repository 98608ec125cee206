"""Triggers: the async (deferred) side of the sensors, and the request coalescing they share."""
