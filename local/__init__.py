"""Local runtime: the supervisor, the worker bodies, the embedded Redis, the CLI."""
