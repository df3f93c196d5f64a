import boto3
import pytest
from moto import mock_aws

from adapters.settings import Settings
from adapters.wiring import build_ports
from harness.processes import RedisProcess
from tests.figures import FIGURES


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory):
    """One real redis-server per test session, on a free port."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_proc):
    if redis_proc.proc is None or redis_proc.proc.poll() is not None:
        redis_proc.start()  # a fault test may have stopped it
    client = redis_proc.client()
    client.flushall()
    client.close()
    return redis_proc.url


@pytest.fixture
def settings(redis_url, tmp_path) -> Settings:
    return Settings(redis_url=redis_url, log_dir=str(tmp_path / "logs"), data_dir=str(tmp_path / "data"),
                    job_backoff_base=0.2, job_lease=2.0, _env_file=None)


@pytest.fixture
def ports(settings):
    return build_ports(settings)


@pytest.fixture
def aws(monkeypatch):
    """moto's mocked SQS with fake credentials; no real AWS is reachable."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def spans():
    """This process's tracing on, with the OpenTelemetry SDK's in-memory exporter (each span exported as it
    ends); off again afterwards."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from adapters.tracing import OpenTelemetryTracing, Tracing, use_tracing

    exporter = InMemorySpanExporter()
    use_tracing(OpenTelemetryTracing(exporter, SimpleSpanProcessor))
    yield exporter
    use_tracing(Tracing())
