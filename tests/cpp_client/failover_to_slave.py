"""A SYNC_MASTER acknowledges only what its slave has; consumers keep going
on the slave after the master is killed.

Run by tests/replication.rs against a name server, a SYNC_MASTER and a SLAVE
(separate processes).  Steps, with the runner in between:

1. send FIRST messages (each must be SEND_OK: the slave has it), consume
   them all with group G on the master, shut the consumer down (it commits
   its offsets), then send SECOND more;
2. wait for the slave's metadata copy (slaveSyncInterval), write the ids of
   every acknowledged message to $RC_HANDOFF/acked and create
   $RC_HANDOFF/ready; the runner kills the master with SIGKILL and creates
   $RC_HANDOFF/killed once the name server's route has lost it;
3. from the slave: group G resumes at its committed offsets (it must get
   all SECOND messages, and may repeat only a few of the FIRST), and a new
   group H reads every acknowledged message.
"""

import os
import time

import rmq_common as rc
from rmq_common import check

FIRST = 30
SECOND = 20
# Redeliveries of already-consumed messages allowed after the move: C++
# commits offsets every 5 s and at shutdown, so a few may come again.
REPEATS_ALLOWED = 8


def body(s):
    # The runner's hand-off directory sits beside the client's HOME.
    handoff = os.environ.get("RC_HANDOFF") or os.path.join(os.environ["HOME"], "..", "handoff")
    sync_wait = float(os.environ.get("RC_SLAVE_SYNC_S", "3"))
    topic = s.topic("t")
    p = s.producer()

    def send(i):
        rid = f"m{i}"
        res = p.send_sync(p.message(topic, f"replicated {i}", keys=rid, props={rc.PROP_ID: rid}))
        return rid, res

    acked = {}
    for i in range(FIRST):
        rid, res = send(i)
        acked[rid] = res.msg_id
    s.log(f"{FIRST} sends acknowledged SEND_OK by the SYNC_MASTER")
    s.wait_for_route(topic)

    group = s.group("g")
    first = rc.Collector("first")
    c = s.push_consumer(group, topic, first)
    s.wait_until(lambda: set(acked) <= set(first.ids()), "the first messages consumed on the master")
    s.shutdown_consumer(c)
    s.log("first consumer shut down (offsets committed to the master)")

    for i in range(FIRST, FIRST + SECOND):
        rid, res = send(i)
        acked[rid] = res.msg_id
    s.log(f"{SECOND} more acknowledged")
    # The slave copies consumer offsets every slaveSyncInterval.
    s.sleep(sync_wait)
    with open(os.path.join(handoff, "acked"), "w") as f:
        f.write("\n".join(f"{k} {v}" for k, v in sorted(acked.items())))
    open(os.path.join(handoff, "ready"), "w").close()
    s.log("waiting for the runner to kill the master")
    s.wait_until(lambda: os.path.exists(os.path.join(handoff, "killed")), "the master to be killed")
    s.log("master killed; consuming from the slave")

    resumed = rc.Collector("resumed")
    s.push_consumer(group, topic, resumed, instance=f"resumed_{s.token}")
    fresh = rc.Collector("fresh")
    s.push_consumer(s.group("h"), topic, fresh, instance=f"fresh_{s.token}")
    second_ids = {f"m{i}" for i in range(FIRST, FIRST + SECOND)}
    s.wait_until(lambda: set(acked) <= set(fresh.ids()), "a new group to read every acknowledged message from the slave")
    s.wait_until(lambda: second_ids <= set(resumed.ids()), "group G to get the second messages from the slave")
    s.sleep(1.0)
    repeats = [m for m in resumed.ids() if m not in second_ids]
    check(
        len(repeats) <= REPEATS_ALLOWED,
        f"group G re-consumed {len(repeats)} messages it had committed on the master: "
        "the slave did not copy its offsets",
    )
    # Each acknowledged message is in the slave's log once: a SEND_OK is
    # never retried, so a second copy would be the broker's doing.
    counts = {}
    for rid in fresh.ids():
        counts[rid] = counts.get(rid, 0) + 1
    twice = sorted(r for r, n in counts.items() if n > 1)
    check(not twice, f"a new group got {len(twice)} messages more than once: {twice[:8]}")
    by_id = {m.rc_id: m for m in fresh.snapshot()}
    for rid, msg_id in acked.items():
        got = by_id[rid]
        check(got.body == f"replicated {rid[1:]}".encode(), f"{rid}: body {got.body!r}")
        check(got.msg_id == msg_id, f"{rid}: msgId {got.msg_id} on the slave, {msg_id} when sent")
    s.log(
        f"slave served all {len(acked)} acknowledged messages; group G resumed with "
        f"{len(repeats)} repeats"
    )


if __name__ == "__main__":
    rc.run(rc.Scenario("failover_to_slave", __doc__), body)
