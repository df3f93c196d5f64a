import pytest

from adapters import aws_lambda
from tests.cloud_stack import Stack


@pytest.fixture
def cloud(aws, monkeypatch):
    """The template's queues and table in moto, and the HTTP function's environment exactly as the
    template wires it (the jobs function's is the same less API_KEYS)."""
    stack = Stack()
    for name, value in stack.environment("HttpFunction").items():
        monkeypatch.setenv(name, value)
    aws_lambda._http.cache_clear()
    aws_lambda._jobs_runner.cache_clear()
    yield stack
    aws_lambda._http.cache_clear()
    aws_lambda._jobs_runner.cache_clear()
