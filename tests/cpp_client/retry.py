"""Consume failure and redelivery: a push consumer answers RECONSUME_LATER to
the first delivery of every message and consumes the second.

The C++ client gives the message back with CONSUMER_SEND_MSG_BACK (36); the
broker stores a copy in ``%RETRY%<group>`` with delay level 3 + reconsume
times (the test broker runs level 3 at 1 s), and the same group receives it
again, with reconsume_times = 1 and the original topic, keys, tags, body and
properties. Each message is consumed exactly twice.
"""

import threading

import rmq_common as rc
from rmq_common import check

COUNT = 4


def body(s):
    topic = s.topic("t")
    group = s.group("c")
    p = s.producer()
    s.create_topic(p, topic)
    seen = {}
    lock = threading.Lock()

    def decide(m):
        with lock:
            seen[m.rc_id] = seen.get(m.rc_id, 0) + 1
            return seen[m.rc_id] > 1

    col = rc.Collector("c", prop_names=("RETRY_TOPIC", "ORIGIN_MESSAGE_ID"))
    s.push_consumer_deciding(group, topic, col, decide)
    s.await_assignment(p, topic, [col], "exclusive")
    sent = [f"m{i}" for i in range(COUNT)]
    for i, rid in enumerate(sent):
        p.send_sync(p.message(topic, f"retry me {i}".encode(), tags="R", keys=rid, props={rc.PROP_ID: rid}))
    s.log(f"sent {COUNT} messages")
    s.wait_until(lambda: len(col.ids()) >= 2 * COUNT, "every message twice", limit=20)
    s.sleep(2.0)  # a third delivery would be a broker that lost the ack
    got = col.snapshot()
    for rid in sent:
        deliveries = [m for m in got if m.rc_id == rid]
        check(len(deliveries) == 2, f"{rid} delivered {len(deliveries)} times, expected 2")
        first, second = deliveries
        check(first.reconsume_times == 0, f"{rid}: first delivery reconsume_times {first.reconsume_times}")
        check(second.reconsume_times == 1, f"{rid}: redelivery reconsume_times {second.reconsume_times}, expected 1")
        check(second.topic == topic, f"{rid}: redelivered under {second.topic!r}, expected {topic!r}")
        check(second.body == first.body, f"{rid}: body changed: {second.body!r}")
        check((second.tags, second.keys) == ("R", rid), f"{rid}: tags/keys {second.tags!r}/{second.keys!r}")
        check(
            second.props.get("RETRY_TOPIC") == topic,
            f"{rid}: RETRY_TOPIC {second.props.get('RETRY_TOPIC')!r}",
        )
        gap = second.received_at - first.received_at
        check(gap >= 0.9, f"{rid}: redelivered after {gap:.2f}s, before delay level 3 (1 s here)")
        s.log(f"{rid}: redelivered after {gap:.2f}s with reconsume_times=1")


if __name__ == "__main__":
    rc.run(rc.Scenario("retry", __doc__), body)
