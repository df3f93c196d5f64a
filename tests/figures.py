"""Figures the tests measure (image sizes, start and stop times, losses in a failover), printed at the end
of the run under "measured figures" (tests/conftest.py): reported, never asserted as performance."""

FIGURES: list[str] = []


def report(line: str) -> None:
    FIGURES.append(line)
