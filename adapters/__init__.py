"""Adapters: the Falcon app, the Huey queue, DLQ backends, settings and logging."""
