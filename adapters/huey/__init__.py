"""Huey on Redis: the one Huey instance and its hooks, the leased storage, the job timeout."""
