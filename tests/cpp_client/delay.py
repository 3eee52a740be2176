"""Delay level 2: a message sent with ``set_delay_time_level(2)`` reaches a
push consumer 5 s after it was sent (±1 s) and never before; a message sent
at the same time without a level arrives at once.

The broker stages the message under SCHEDULE_TOPIC_XXXX queue 1 and stores it
again under its own topic when due; the consumer sees the real topic, the
original properties and no DELAY property of consequence.
"""

import time

import rmq_common as rc
from rmq_common import check

DELAYED = 3
LEVEL_2_S = 5.0


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)
    col = rc.Collector("c")
    s.push_consumer(s.group("c"), topic, col)
    s.await_assignment(p, topic, [col], "exclusive")

    sent_at = {}
    for i in range(DELAYED):
        rid = f"delayed-{i}"
        m = p.message(topic, f"later {i}".encode(), tags="D", keys=rid, props={rc.PROP_ID: rid})
        m.set_delay_time_level(2)
        sent_at[rid] = time.monotonic()
        p.send_sync(m)
    sent_at["now"] = time.monotonic()
    p.send_sync(p.message(topic, b"at once", tags="N", keys="now", props={rc.PROP_ID: "now"}))
    s.log(f"sent {DELAYED} messages with delay level 2 and one without")

    s.wait_until(lambda: "now" in col.ids(), "the undelayed message", limit=5)
    early = [m.rc_id for m in col.snapshot() if m.rc_id != "now"]
    check(not early, f"delayed messages arrived with the undelayed one: {early}")
    s.wait_until(lambda: len(col.ids()) >= DELAYED + 1, "every delayed message", limit=LEVEL_2_S + 5)
    s.sleep(1.0)  # a duplicate delivery would show up now
    got = col.snapshot()
    ids = [m.rc_id for m in got]
    check(len(ids) == len(set(ids)), f"duplicate deliveries: {ids}")
    for m in got:
        waited = m.received_at - sent_at[m.rc_id]
        if m.rc_id == "now":
            check(waited < 2.0, f"undelayed message took {waited:.2f}s")
            continue
        s.log(f"{m.rc_id}: arrived {waited:.3f}s after sending (due after {LEVEL_2_S}s)")
        check(waited >= LEVEL_2_S - 0.05, f"{m.rc_id} arrived early: {waited:.3f}s < {LEVEL_2_S}s")
        check(waited <= LEVEL_2_S + 1.0, f"{m.rc_id} arrived late: {waited:.3f}s > {LEVEL_2_S + 1}s")
        check(m.topic == topic, f"{m.rc_id}: topic {m.topic!r}, sent to {topic!r}")
        check(m.tags == "D", f"{m.rc_id}: tags {m.tags!r}")
        check(m.keys == m.rc_id, f"{m.rc_id}: keys {m.keys!r}")
        check(m.reconsume_times == 0, f"{m.rc_id}: reconsume_times {m.reconsume_times}")


if __name__ == "__main__":
    rc.run(rc.Scenario("delay", __doc__), body)
