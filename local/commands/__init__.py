"""The `forkline` command: its subcommands, the operator commands over the HTTP API, and `forkline bench`."""
