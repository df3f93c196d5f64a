"""What production runs: the supervisor and its children (HTTP workers, job consumers, the SQS
worker), the embedded Redis, the checks before start, and the exit codes they share."""
