"""Dead-letter queue: the group is created with retryMaxTimes = 1 through
UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) before its consumer starts; the
consumer fails every delivery. The message is delivered twice (the original,
then the retry with reconsume_times = 1), after which the broker moves it to
``%DLQ%<group>``, where a pull consumer reads it back with its body, keys and
properties, the origin topic in DLQ_ORIGIN_TOPIC and RETRY_TOPIC.
"""

import rmq_common as rc
from rmq_common import check, fetch_queues, pull_once
from rocketmq.ffi import _CPullStatus


def body(s):
    topic = s.topic("t")
    group = s.group("c")
    s.create_group(group, retryMaxTimes=1)
    p = s.producer()
    s.create_topic(p, topic)
    col = rc.Collector("c")
    s.push_consumer_deciding(group, topic, col, lambda m: False)
    s.await_assignment(p, topic, [col], "exclusive")
    p.send_sync(p.message(topic, b"doomed", tags="X", keys="doomed-key", props={rc.PROP_ID: "doomed"}))
    s.log("sent one message that always fails")
    s.wait_until(lambda: len(col.ids()) >= 2, "the delivery and its retry", limit=20)
    s.sleep(2.0)  # a third delivery would mean the retry budget was ignored
    times = [m.reconsume_times for m in col.snapshot()]
    check(times == [0, 1], f"deliveries with reconsume_times {times}, expected [0, 1]")

    dlq = f"%DLQ%{group}"
    s.wait_for_route(dlq)
    pc = s.pull_consumer(s.group("dlqreader"))
    queues = fetch_queues(s, pc, dlq)
    check(queues, f"no route for {dlq}")
    found = []
    for mq in queues:
        status, _nxt, _mn, _mx, msgs, _took = pull_once(s, pc, mq, 0, 8)
        if status == _CPullStatus.FOUND:
            found.extend(msgs)
    check(len(found) == 1, f"{dlq} holds {len(found)} messages, expected 1")
    m = found[0]
    check(m.body == b"doomed", f"DLQ body {m.body!r}")
    check(m.keys == "doomed-key", f"DLQ keys {m.keys!r}")
    check(m.props.get(rc.PROP_ID) == "doomed", f"DLQ props {m.props}")
    check(m.reconsume_times == 2, f"DLQ copy reconsume_times {m.reconsume_times}, expected 2")
    s.log(f"{dlq} holds the message: {m.describe()}")


if __name__ == "__main__":
    rc.run(rc.Scenario("dlq", __doc__), body)
