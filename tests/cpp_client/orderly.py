"""Orderly send with a queue selector + orderly push consumer.

The wheel's librocketmq (1.2.x) has no SendMessageOrderlyByShardingKey; the
ordering key is expressed the classic way: a queue selector that maps the key
(here an integer key index) to ``key % queue_count`` (the wrapper's
``hashing_queue_selector``).  The orderly push consumer locks its queues on
the broker (LOCK_BATCH_MQ, 41) before it pulls and consumes each queue from
one thread at a time.

Checks: all messages of one key land on the same queue (the selected one);
the consumer sees every key's messages exactly once and in send order; no
queue is ever consumed by two callbacks at the same time.
"""

import rmq_common as rc
from rmq_common import check

KEYS = 6
PER_KEY = 15


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)
    nq = p.queue_count
    s.log(f"topic {topic} has {nq} queues")

    # A few milliseconds per message widen the window in which a broken
    # queue lock would let two consume threads overlap.
    col = rc.Collector("c1", prop_names=("okey", "seq"), slow_ms=3)
    s.push_consumer(s.group("c"), topic, col, orderly=True, threads=4)
    s.await_assignment(p, topic, [col], "exclusive")

    sent_queue = {}
    for i in range(PER_KEY):
        for k in range(KEYS):
            rid = f"k{k}-{i}"
            m = p.message(
                topic,
                f"key {k} seq {i}".encode(),
                tags="Ordered",
                keys=f"order-{k}",
                props={rc.PROP_ID: rid, "okey": str(k), "seq": str(i)},
            )
            res = p.send_to_queue(m, k)
            check(res.status == rc.SendStatus.OK, f"{rid}: status {res.status!r}")
            sent_queue[rid] = k % nq
    s.log(f"sent {KEYS}x{PER_KEY} ordered messages")

    expected = set(sent_queue)
    try:
        s.wait_until(lambda: expected <= set(col.ids()), "all ordered messages to be consumed")
    except rc.ScenarioFailure:
        missing = sorted(expected - set(col.ids()))
        raise rc.ScenarioFailure(f"{len(missing)} ordered messages never consumed: {missing[:10]}")
    s.sleep(1.0)

    got = col.snapshot()
    dups = len(got) - len({m.rc_id for m in got})
    check(dups == 0, f"{dups} duplicate deliveries")
    for k in range(KEYS):
        seqs = [int(m.props["seq"]) for m in got if m.props.get("okey") == str(k)]
        check(seqs == list(range(PER_KEY)), f"key {k}: consumed in order {seqs}, expected 0..{PER_KEY - 1}")
        queues = {m.queue_id for m in got if m.props.get("okey") == str(k)}
        check(queues == {k % nq}, f"key {k}: messages on queues {queues}, selector chose {k % nq}")
        offsets = [m.queue_offset for m in got if m.props.get("okey") == str(k)]
        check(offsets == sorted(offsets), f"key {k}: queue offsets not increasing: {offsets}")
    with col.lock:
        overlap = {q: n for q, n in col.max_in_flight.items() if n > 1}
    check(not overlap, f"orderly consumer ran callbacks concurrently on queues {overlap}")
    s.log(f"{KEYS} keys x {PER_KEY} messages consumed in order")


if __name__ == "__main__":
    rc.run(rc.Scenario("orderly", __doc__), body)
