"""A brand-new consumer group started after the messages were sent reads them.

The C++ push consumer defaults to CONSUME_FROM_LAST_OFFSET and cannot be
configured otherwise through the C API of this version.  For a group with no
stored offset it asks QUERY_CONSUMER_OFFSET (14, without setZeroIfNotFound);
a Java broker answers SUCCESS with offset 0 while the queue was never
truncated (spec §2.4, §13 item 19) -- only on QUERY_NOT_FOUND (22) would the
client jump to GET_MAX_OFFSET and skip the backlog.  This is the common
"start the producer, then the consumer" use; it is what the other scenarios
avoid depending on (they start consumers first).
"""

import rmq_common as rc
from rmq_common import check

COUNT = 24


def body(s):
    topic = s.topic("t")
    p = s.producer()
    expected = {}
    for i in range(COUNT):
        rid = f"m{i}"
        expected[rid] = f"backlog {i}".encode()
        p.send_sync(p.message(topic, expected[rid], keys=rid, props={rc.PROP_ID: rid}))
    s.log(f"sent {COUNT} messages before any consumer existed")
    s.wait_for_route(topic)

    col = rc.Collector("late")
    s.push_consumer(s.group("late"), topic, col)
    try:
        s.wait_until(lambda: set(expected) <= set(col.ids()), "the backlog to be consumed")
    except rc.ScenarioFailure:
        missing = sorted(set(expected) - set(col.ids()))
        raise rc.ScenarioFailure(
            f"a new group started after the sends never got {len(missing)} of {COUNT} messages "
            f"{missing[:8]}: for a group without offset on a never-truncated queue, "
            "QUERY_CONSUMER_OFFSET must answer SUCCESS/0, not QUERY_NOT_FOUND (C++ then starts "
            "at GET_MAX_OFFSET)"
        )
    s.sleep(1.0)
    got = col.snapshot()
    check(len(got) == COUNT, f"{len(got)} deliveries for {COUNT} messages")
    for m in got:
        check(m.body == expected[m.rc_id], f"{m.rc_id}: body {m.body!r}")
    s.log(f"new group consumed the whole backlog of {COUNT}")


if __name__ == "__main__":
    rc.run(rc.Scenario("late_consumer", __doc__), body)
