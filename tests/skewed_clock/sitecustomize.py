"""A host whose clock is off, for the multi-host tests: on PYTHONPATH, with SKEWED_CLOCK_SECONDS set,
every Python process started there reads wall-clock time that many seconds off (time.time,
time.time_ns and datetime's now/utcnow/today), as a host with a wrong clock would. Monotonic time is
left alone (a wrong wall clock does not change how long a second is).

libfaketime would do it below Python, but breaks CPython 3.11's time.sleep and timed queue waits.
"""

import datetime
import os
import time

SKEW = float(os.environ.get("SKEWED_CLOCK_SECONDS", "0"))

if SKEW:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + SKEW
    time.time_ns = lambda: _time_ns() + int(SKEW * 1e9)
    _delta = datetime.timedelta(seconds=SKEW)

    class SkewedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return super().now(tz) + _delta

        @classmethod
        def utcnow(cls):  # type: ignore[override]
            return super().utcnow() + _delta

        @classmethod
        def today(cls):  # type: ignore[override]
            return super().today() + _delta

    # Pickled as `datetime.datetime`, so a message this host writes (Huey pickles a retry's eta)
    # reads back as a plain datetime on another host.
    SkewedDatetime.__module__, SkewedDatetime.__name__, SkewedDatetime.__qualname__ = "datetime", "datetime", "datetime"
    datetime.datetime = SkewedDatetime  # type: ignore[misc]
