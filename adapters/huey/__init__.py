"""Huey on Redis: the Huey instance of each named queue and its hooks (forkline_huey.py), the leased
storage, the state of a running job, the DLQ outbox."""
