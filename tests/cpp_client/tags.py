"""Tag subscription ``TagA || TagC``.

The C++ client sends the expression in its heartbeat (tagsSet, plus a
useless codeSet = atoi(tag) = 0) and in every PULL_MESSAGE (SUBSCRIPTION
flag set); it also filters again by tag *string* after decoding, so a
consumer can never see a wrong tag.  What the client cannot hide is a broker
that filters *too much* (e.g. a wrong tag hash), so the push part checks that
every TagA / TagC message arrives and nothing else; the pull part checks that
the broker itself filters: a queue holding only non-matching messages must
not come back as FOUND (the client would turn that into FOUND with zero
messages).

Messages: TagA, TagB, TagC, TagD and untagged, sent round-robin to the
queues; one more queue gets only TagB / TagD messages for the pull check.
"""

import rmq_common as rc
from rmq_common import check, fetch_queues, pull_once
from rocketmq.ffi import _CPullStatus

EXPRESSION = "TagA || TagC"
ROUNDS = 8
TAGS = ("TagA", "TagB", "TagC", "TagD", None)
MATCHING = {"TagA", "TagC"}


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic, tags="TagA")
    nq = p.queue_count
    check(nq >= 2, f"topic has {nq} queue(s); need 2")

    col = rc.Collector("c1")
    s.push_consumer(s.group("c"), topic, col, expression=EXPRESSION)
    # Probes carry TagA so that the subscription lets them through.
    s.await_assignment(p, topic, [col], "exclusive", probe_tag="TagA")

    expected = set()
    sent = {}
    queue_of = {}
    pure_queue = nq - 1  # gets only non-matching messages
    for r in range(ROUNDS):
        for t in TAGS:
            rid = f"r{r}-{t or 'none'}"
            sent[rid] = t
            q = (r * len(TAGS) + TAGS.index(t)) % (nq - 1)  # never the pure queue
            queue_of[rid] = q
            p.send_to_queue(p.message(topic, f"{rid} body".encode(), tags=t, keys=rid, props={rc.PROP_ID: rid}), q)
            if t in MATCHING:
                expected.add(rid)
    pure_offsets = []
    for i in range(6):
        rid = f"pure-{i}"
        sent[rid] = "TagB" if i % 2 == 0 else "TagD"
        res = p.send_to_queue(
            p.message(topic, b"no match", tags=sent[rid], keys=rid, props={rc.PROP_ID: rid}), pure_queue
        )
        pure_offsets.append(res.offset)
    s.log(f"sent {len(sent)} messages, {len(expected)} match {EXPRESSION!r}")

    try:
        s.wait_until(lambda: expected <= set(col.ids()), "all TagA/TagC messages")
    except rc.ScenarioFailure:
        missing = sorted(expected - set(col.ids()))
        raise rc.ScenarioFailure(
            f"{len(missing)} matching messages never arrived: {missing[:10]} "
            "(broker filtered them out: tag hash = Java String.hashCode of the tag, "
            "expression split on '||' and trimmed)"
        )
    s.sleep(1.5)  # anything that should not arrive has had time to
    got = col.snapshot()
    wrong = [m.describe() for m in got if m.rc_id not in expected]
    check(not wrong, f"non-matching messages consumed: {wrong[:5]}")
    ids = [m.rc_id for m in got]
    check(len(ids) == len(set(ids)), "duplicate deliveries")
    for m in got:
        check(m.tags == sent[m.rc_id], f"{m.rc_id}: tags {m.tags!r}, sent {sent[m.rc_id]!r}")
    s.log(f"push consumer got exactly the {len(expected)} matching messages")

    # Broker-side filtering, seen through the pull consumer: from the first
    # non-matching message on, the pure queue holds nothing that matches
    # (the TagA probes of the barrier precede them).
    pc = s.pull_consumer(s.group("pull"))
    mq = next(q for q in fetch_queues(s, pc, topic) if q.queueId == pure_queue)
    start = min(pure_offsets)
    check(pure_offsets == list(range(start, start + 6)), f"pure queue offsets {pure_offsets}")
    status, nxt, _, mx, msgs, _ = pull_once(s, pc, mq, start, 32, EXPRESSION)
    check(
        status != _CPullStatus.FOUND,
        f"pull {EXPRESSION!r} on q{pure_queue}@{start} (only TagB/TagD from there) answered FOUND "
        f"({len(msgs)} left after the client's own tag filter): the broker does not filter by the "
        "subscription sent with the pull",
    )
    # Java answers PULL_RETRY_IMMEDIATELY (20, NO_MATCHED_MSG here); PULL_NOT_FOUND
    # (19, NO_NEW_MSG) with the offset advanced works for the client as well.
    check(
        status in (_CPullStatus.NO_MATCHED_MSG, _CPullStatus.NO_NEW_MSG),
        f"pull {EXPRESSION!r} on q{pure_queue}@{start}: {status.name}",
    )
    check(
        nxt == start + 6,
        f"pull on q{pure_queue}@{start}: {status.name} with nextBeginOffset {nxt}; expected {start + 6} "
        "(skip the non-matching messages)",
    )
    s.log(f"pull on the non-matching queue: {status.name}, nextBeginOffset {nxt} (max {mx})")
    # Matching messages on a mixed queue are all returned.
    mq0 = next(q for q in fetch_queues(s, pc, topic) if q.queueId == 0)
    pulled = []
    offset = 0
    for _ in range(50):
        status, nxt, _, _, msgs, _ = pull_once(s, pc, mq0, offset, 32, EXPRESSION)
        pulled.extend(m for m in msgs if m.rc_id)
        if status == _CPullStatus.NO_NEW_MSG or nxt == offset:
            break
        offset = nxt
    want = {rid for rid in expected if queue_of[rid] == 0}
    check(
        {m.rc_id for m in pulled} == want, f"pull on q0 returned {sorted(m.rc_id for m in pulled)}, want {sorted(want)}"
    )


if __name__ == "__main__":
    rc.run(rc.Scenario("tags", __doc__), body)
