"""CLUSTERING: two push consumers in one group share the topic's queues.

Both consumers run in this process with distinct instance names, hence
distinct client ids; the broker's GET_CONSUMER_LIST_BY_GROUP (38) answer and
NOTIFY_CONSUMER_IDS_CHANGED (40) drive their rebalance (averagely: 4 queues
-> 2 + 2).

Phase 1, once the group has settled (each queue owned by exactly one
member): every message is consumed exactly once, both members get some, and
each member only gets messages of its own queues.
Phase 2: one member shuts down (UNREGISTER_CLIENT, 35); the other must take
over its queues and consume everything sent afterwards.
"""

import rmq_common as rc
from rmq_common import check

PHASE1 = 40
PHASE2 = 20


def body(s):
    topic = s.topic("t")
    group = s.group("shared")
    p = s.producer()
    s.create_topic(p, topic)
    nq = p.queue_count
    check(nq >= 2, f"topic {topic} has {nq} queue(s); two consumers cannot split it")

    a = rc.Collector("A", prop_names=("phase",))
    b = rc.Collector("B", prop_names=("phase",))
    s.push_consumer(group, topic, a, instance=f"instA_{s.token}")
    cb = s.push_consumer(group, topic, b, instance=f"instB_{s.token}")
    s.await_assignment(p, topic, [a, b], "exclusive")

    # The probe owners of the settled round tell which queues each owns.
    def queues_of(col):
        last = max(r for r, _ in col.probe_snapshot())
        return {q for r, q in col.probe_snapshot() if r == last}

    def send_phase(phase, n):
        ids = set()
        for i in range(n):
            rid = f"{phase}-{i}"
            p.send_sync(p.message(topic, f"{phase} {i}".encode(), keys=rid, props={rc.PROP_ID: rid, "phase": phase}))
            ids.add(rid)
        return ids

    ids1 = send_phase("p1", PHASE1)

    def union_ids():
        return set(a.ids()) | set(b.ids())

    try:
        s.wait_until(lambda: ids1 <= union_ids(), "phase-1 messages to be consumed by the group")
    except rc.ScenarioFailure:
        missing = sorted(ids1 - union_ids())
        raise rc.ScenarioFailure(f"phase 1: {len(missing)} messages consumed by nobody: {missing[:10]}")
    s.sleep(1.0)

    got_a = [m for m in a.snapshot() if m.props.get("phase") == "p1"]
    got_b = [m for m in b.snapshot() if m.props.get("phase") == "p1"]
    ids_a = [m.rc_id for m in got_a]
    ids_b = [m.rc_id for m in got_b]
    both = set(ids_a) & set(ids_b)
    check(not both, f"phase 1: {len(both)} messages consumed by both members: {sorted(both)[:10]}")
    check(len(ids_a) == len(set(ids_a)) and len(ids_b) == len(set(ids_b)), "phase 1: duplicate deliveries")
    check(ids_a and ids_b, f"phase 1: not split: A got {len(ids_a)}, B got {len(ids_b)}")
    qa, qb = queues_of(a), queues_of(b)
    wrong_a = [m.rc_id for m in got_a if m.queue_id not in qa]
    wrong_b = [m.rc_id for m in got_b if m.queue_id not in qb]
    check(not wrong_a and not wrong_b, f"phase 1: messages from foreign queues: A {wrong_a[:5]} B {wrong_b[:5]}")
    s.log(f"phase 1: A consumed {len(ids_a)} (queues {sorted(qa)}), B consumed {len(ids_b)} (queues {sorted(qb)})")

    # Phase 2: B leaves; its shutdown persists its offsets and unregisters.
    s.shutdown_consumer(cb)
    s.log("consumer B shut down")
    ids2 = send_phase("p2", PHASE2)
    try:
        s.wait_until(lambda: ids2 <= set(a.ids()), "A to consume every phase-2 message after B left")
    except rc.ScenarioFailure:
        missing = sorted(ids2 - set(a.ids()))
        raise rc.ScenarioFailure(
            f"phase 2: after B left, A never consumed {len(missing)} messages {missing[:10]} "
            "(A must rebalance: NOTIFY_CONSUMER_IDS_CHANGED on UNREGISTER_CLIENT/disconnect, "
            "or at least a consumer list without B on its next 10 s rebalance)"
        )
    s.log(f"phase 2: A consumed all {PHASE2} messages sent after B left")


if __name__ == "__main__":
    rc.run(rc.Scenario("clustering", __doc__), body)
