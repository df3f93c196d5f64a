"""The `forkline` command line: unknown commands, options and arguments are usage errors."""

import os
import subprocess

import pytest

from adapters.settings import Settings
from harness.processes import FORKLINE, ROOT
from local.commands.cli import COMMANDS, main, parser


@pytest.mark.parametrize("argv", [["run", "--turbo"], ["serve", "--cloud"], ["serve", "extra"],
                                  ["worker", "--turbo"], ["bench", "--nope"], ["bench", "--duration", "x"],
                                  ["launch"], []])
def test_unknown_options_and_arguments_are_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: forkline" in capsys.readouterr().err


def test_queues_naming_an_undeclared_queue_is_refused_with_one_line(capsys):
    assert main(["worker", "--queues", "default,nope"]) == 2
    err = capsys.readouterr().err
    assert err == ("forkline: invalid setting CONSUMER_QUEUES='default,nope': Value error, unknown queue 'nope' "
                   "(declared: default, slow)\n")
    assert "CONSUMER_QUEUES" not in os.environ  # an option, not a change to this process's environment


def test_the_real_command_exits_2_with_the_usage_and_starts_nothing(tmp_path):
    result = subprocess.run(FORKLINE + ["run", "--turbo"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=30, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "unrecognized arguments: --turbo" in result.stderr
    assert not (tmp_path / "logs").exists()  # the supervisor never started


def test_bench_declares_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(option in out for option in ("--duration", "--connections", "--warmup", "--jobs"))


def test_a_bjoern_without_sigint_handling_is_refused_with_one_line_and_status_2(monkeypatch, capsys):
    import bjoern

    monkeypatch.setitem(bjoern._bjoern.features, "has_sigint_handling", False)
    for command in ("run", "serve"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.startswith("forkline: this bjoern has no SIGINT handling") and err.count("\n") == 1


def test_an_invalid_setting_is_one_line_and_status_2(monkeypatch, capsys):
    monkeypatch.setenv("PORT", "not-a-port")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err.startswith("forkline: invalid setting PORT='not-a-port'")


def test_the_cloud_emulation_is_refused_outside_forkline_run(monkeypatch, capsys):
    monkeypatch.setenv("CLOUD_EMULATION", "true")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "forkline run --cloud" in err


def test_the_help_says_how_many_processes_and_threads_the_settings_make(monkeypatch, capsys):
    """What `forkline --help` promises is what Settings computes (it once said one web worker per core)."""
    for name in ("WEB_CONCURRENCY", "CONSUMER_PROCESSES", "WORKER_CONCURRENCY", "QUEUE_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    cores = os.cpu_count() or 1
    assert "cores + 1" in COMMANDS["serve"] and settings.web_workers == cores + 1
    assert "one process per core" in COMMANDS["worker"] and settings.consumers == cores
    assert "threads per named queue" in COMMANDS["worker"]
    assert settings.model_copy(update={"queue_concurrency": "email=2"}).concurrency_of("email") == 2
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(" ".join(text.split()) in shown for text in COMMANDS.values())
