"""Reading GET /queue/stats answers in tests."""

TEMPLATE = ("waiting", "active", "completed", "failed", "delayed", "dlq", "dlqPending")
SUMMED = ("waiting", "active", "completed", "failed", "delayed", "dlqPending")


def template_figures(stats: dict) -> dict:
    """The template's figures of an answer, once checked to be the sums of its `queues`."""
    for name in SUMMED:
        assert stats[name] == sum(queue[name] for queue in stats["queues"].values()), (name, stats)
    return {name: stats[name] for name in TEMPLATE}
