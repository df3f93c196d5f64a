"""The cloud on one machine, for `forkline run --cloud` only: moto's server, the template read as
data, and Lambda's SQS trigger emulated."""
