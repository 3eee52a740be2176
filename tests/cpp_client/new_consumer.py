"""A new push consumer gets its messages in seconds, not at its next rebalance.

Issue 14: a push consumer on a new group, started without waiting for its
queue assignment, received a delay-level-2 message 27 s after it was sent.
Each round here starts a push consumer on a fresh group against a topic that
already holds one message (which the new group reads, as a new group reads a
backlog the broker still holds), then:

* 1 s after the consumer started, sends a plain message: it must arrive within
  3 s of sending;
* right after, sends a message with delay level 2 (5 s): it must arrive no
  earlier than 5 s and within 7 s of sending.

Rounds run one after another with new groups, alternately on a client
instance of their own and on the producer's (see `instance`); every arrival time is printed,
so that a run under CPU load shows how far from the limits it stayed.
"""

import time

import rmq_common as rc
from rmq_common import check

ROUNDS = 5
PLAIN_WITHIN_S = 3.0
LEVEL_2_S = 5.0
DELAYED_WITHIN_S = 7.0
SEND_AFTER_START_S = 1.0


def instance(s, n):
    """Even rounds: a client instance of the consumer's own, as in a new
    process.  Odd rounds: the producer's running instance, to which a
    consumer is added (round 3 is its second consumer: librocketmq then
    rebalances only when the broker's NOTIFY_CONSUMER_IDS_CHANGED reaches
    it after start() returned, or at its 10 s timer)."""
    return f"own_{n}_{s.token}" if n % 2 == 0 else f"producers_{s.token}"


def one_round(s, p, topic, n):
    col = rc.Collector(f"c{n}")
    started = time.monotonic()
    s.push_consumer(s.group(f"r{n}"), topic, col, instance=instance(s, n))
    # The backlog message (the probe that created the topic) shows that the
    # new group was given the queue it sits on.
    s.sleep(max(0.0, started + SEND_AFTER_START_S - time.monotonic()))
    plain_id, delayed_id = f"plain-{n}", f"delayed-{n}"
    plain_sent = time.monotonic()
    p.send_sync(p.message(topic, b"at once", tags="N", props={rc.PROP_ID: plain_id}))
    m = p.message(topic, b"later", tags="D", props={rc.PROP_ID: delayed_id})
    m.set_delay_time_level(2)
    delayed_sent = time.monotonic()
    p.send_sync(m)

    for rid, sent, limit in ((plain_id, plain_sent, PLAIN_WITHIN_S), (delayed_id, delayed_sent, DELAYED_WITHIN_S)):
        waited = sent + limit + 2 - time.monotonic()
        arrived = s.wait_until(lambda: rid in col.ids(), f"round {n}: {rid}", limit=max(0.0, waited))
        check(arrived, f"round {n}: {rid} not received {limit + 2:.0f}s after sending (limit {limit}s)")
    got = {m.rc_id: m for m in col.snapshot()}
    plain = got[plain_id].received_at - plain_sent
    delayed = got[delayed_id].received_at - delayed_sent
    backlog = [r for r, _ in col.probe_snapshot()]
    s.note(
        f"round {n}: plain after {plain:.3f}s, delay level 2 after {delayed:.3f}s, "
        f"backlog message {'read' if backlog else 'not read'}"
    )
    check(plain <= PLAIN_WITHIN_S, f"round {n}: plain message took {plain:.3f}s > {PLAIN_WITHIN_S}s")
    check(delayed >= LEVEL_2_S - 0.05, f"round {n}: delayed message early: {delayed:.3f}s")
    check(delayed <= DELAYED_WITHIN_S, f"round {n}: delayed message took {delayed:.3f}s > {DELAYED_WITHIN_S}s")
    s.shutdown_consumer(s._consumers[-1])


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)
    for n in range(ROUNDS):
        one_round(s, p, topic, n)


if __name__ == "__main__":
    rc.run(rc.Scenario("new_consumer", __doc__), body)
