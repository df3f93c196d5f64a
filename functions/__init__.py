"""Pure functions of forkline: the API's behaviour and the job functions.

Nothing in this package imports falcon, redis or huey; I/O arrives as ports.
"""
