"""Process helpers shared by the tests and bench/: start and stop forkline and Redis by pid, with a
bound on every wait. Not shipped in the wheel."""
