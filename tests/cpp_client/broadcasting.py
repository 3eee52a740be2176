"""BROADCASTING: every consumer of the group gets every message.

Broadcasting consumers keep their offsets locally
($HOME/.rocketmq_offsets/...) and start a queue they have no offset for at
its max offset (GET_MAX_OFFSET, 30), so they must own the queues before the
messages are sent: the barrier waits until both got a probe from every queue.

Checks: both consumers get all messages, each exactly once, intact.
"""

import rmq_common as rc
from rmq_common import check

COUNT = 30


def body(s):
    topic = s.topic("t")
    group = s.group("bc")
    p = s.producer()
    s.create_topic(p, topic)

    cols = [rc.Collector(name, prop_names=("n",)) for name in ("A", "B")]
    for col in cols:
        s.push_consumer(group, topic, col, model=rc.MessageModel.BROADCASTING, instance=f"inst{col.name}_{s.token}")
    s.await_assignment(p, topic, cols, "all")

    expected = {}
    for i in range(COUNT):
        rid = f"m{i}"
        expected[rid] = f"broadcast {i}".encode()
        p.send_sync(p.message(topic, expected[rid], tags="TagB", keys=rid, props={rc.PROP_ID: rid, "n": str(i)}))
    s.log(f"sent {COUNT} messages")

    def everyone_has_all():
        return all(set(expected) <= set(c.ids()) for c in cols)

    try:
        s.wait_until(everyone_has_all, "every consumer to get every message")
    except rc.ScenarioFailure:
        report = {c.name: sorted(set(expected) - set(c.ids()))[:8] for c in cols}
        raise rc.ScenarioFailure(f"messages missing per consumer: {report}")
    s.sleep(1.0)
    for c in cols:
        got = c.snapshot()
        ids = [m.rc_id for m in got]
        check(len(ids) == len(set(ids)), f"{c.name}: duplicate deliveries")
        check(set(ids) == set(expected), f"{c.name}: unexpected messages {sorted(set(ids) - set(expected))[:5]}")
        for m in got:
            check(m.body == expected[m.rc_id], f"{c.name} {m.rc_id}: body {m.body!r}")
            check(m.keys == m.rc_id and m.tags == "TagB", f"{c.name}: {m.describe()}")
    s.log(f"both consumers got all {COUNT} messages")


if __name__ == "__main__":
    rc.run(rc.Scenario("broadcasting", __doc__), body)
