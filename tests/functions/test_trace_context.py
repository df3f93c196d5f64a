"""W3C trace context: what is accepted from a caller, and the spans made under it."""

import pytest

from functions.trace_context import TraceContext, child_of, parse

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def counting_hex():
    made = iter(range(1, 100))
    return lambda n: f"{next(made):0{2 * n}x}"


def test_a_valid_traceparent_and_its_tracestate_are_taken():
    found = parse(f"00-{TRACE}-{PARENT}-01", "congo=t61rcWkgMzE")
    assert found == TraceContext(TRACE, PARENT, "01", "congo=t61rcWkgMzE") and found.sampled
    assert parse(f"  00-{TRACE.upper()}-{PARENT}-00 ").sampled is False  # case and spaces forgiven
    assert parse(f"01-{TRACE}-{PARENT}-01-more-fields") == TraceContext(TRACE, PARENT, "01")  # a later version


@pytest.mark.parametrize("header", [
    None, "", "garbage", f"ff-{TRACE}-{PARENT}-01", f"00-{TRACE}-{PARENT}-01-extra", f"00-{'0' * 32}-{PARENT}-01",
    f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE[:-1]}-{PARENT}-01", f"00-{TRACE}-{PARENT}-1", f"00_{TRACE}_{PARENT}_01",
])
def test_an_invalid_traceparent_is_ignored(header):
    assert parse(header, "congo=1") is None


def test_a_tracestate_past_512_characters_is_dropped():
    assert parse(f"00-{TRACE}-{PARENT}-01", "a=" + "x" * 600).state == ""


def test_a_child_keeps_the_trace_and_a_missing_parent_starts_one():
    parent = TraceContext(TRACE, PARENT, "01", "congo=1")
    child = child_of(parent, counting_hex())
    assert (child.trace_id, child.span_id, child.flags, child.state) == (TRACE, "0000000000000001", "01", "congo=1")
    assert child.traceparent == f"00-{TRACE}-0000000000000001-01"
    fresh = child_of(None, counting_hex())
    assert (fresh.trace_id, fresh.span_id) == ("00000000000000000000000000000001", "0000000000000002")
