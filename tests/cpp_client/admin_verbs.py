"""`rocketcore admin` against a topic and a group the C++ client made.

A C++ producer creates a topic by sending to it; a C++ push consumer
consumes every message. Then the admin CLI (its path in ROCKETCORE_BIN)
reads them as mqadmin would: topicStatus sees the messages, queryMsgByKey
finds one, consumerConnection and producerConnection list the C++ clients
(language CPP), consumerStatus relays the client's running info,
consumerProgress shows no lag once the client committed, and the group list
names the group online. Last, resetOffsetByTime to the epoch
while the consumer runs: the consumer must receive every message again,
which it does only if it follows the broker's reset (PULL_OFFSET_MOVED).
"""

import json
import os
import subprocess

import rmq_common as rc
from rmq_common import check

MESSAGES = 12


def admin(s, *args):
    out = subprocess.run(
        [os.environ["ROCKETCORE_BIN"], "admin", "-n", s.namesrv, "--json", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    check(out.returncode == 0, f"admin {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def body(s):
    topic = s.topic("t")
    group = s.group("c")
    p = s.producer()
    s.create_topic(p, topic)
    ids = set()
    for i in range(MESSAGES):
        rid = f"m{i}"
        p.send_sync(p.message(topic, f"admin {i}".encode(), keys=f"key-{i}", props={rc.PROP_ID: rid}))
        ids.add(rid)

    col = rc.Collector("C")
    s.push_consumer(group, topic, col)
    s.wait_until(lambda: ids <= set(col.ids()), "the consumer to get every message")

    stored = sum(q["maxOffset"] - q["minOffset"] for q in admin(s, "topicStatus", "-t", topic))
    # The first send created the topic (a probe message), then MESSAGES.
    check(stored == MESSAGES + 1, f"topicStatus counts {stored} messages, expected {MESSAGES + 1}")
    found = admin(s, "queryMsgByKey", "-t", topic, "-k", "key-5")
    check([m["body"] for m in found] == ["admin 5"], f"queryMsgByKey found {found}")

    conns = admin(s, "consumerConnection", "-g", group)
    langs = {c["language"] for c in conns["connectionSet"]}
    check(langs == {"CPP"}, f"consumerConnection lists languages {langs}")
    check(topic in conns["subscriptionTable"], f"consumerConnection subscriptions: {list(conns['subscriptionTable'])}")
    prod = admin(s, "producerConnection", "-g", p.group, "-t", topic)
    check(prod and all(c["language"] == "CPP" for c in prod), f"producerConnection: {prod}")

    # The broker relays GET_CONSUMER_RUNNING_INFO to the C++ client.
    status = admin(s, "consumerStatus", "-g", group)
    check(len(status) == 1, f"consumerStatus lists {len(status)} clients")
    info = status[0]["runningInfo"]
    check(isinstance(info, dict) and info, f"consumerStatus: empty running info {status}")
    s.log(f"running info keys from the C++ client: {sorted(info)}")

    # The C++ client commits every 5 s.
    def caught_up():
        lag = admin(s, "consumerProgress", "-g", group, "-t", topic)
        return lag["diffTotal"] == 0

    s.wait_until(caught_up, "the group's committed offsets to reach the end", poll=0.5)
    groups = admin(s, "consumerProgress")
    mine = [g for g in groups if g["group"] == group]
    check(mine and mine[0]["count"] >= 1 and mine[0]["diffTotal"] == 0, f"group list: {mine}")
    s.log("admin verbs read the C++ client's topic and group")

    before = len(col.snapshot())
    reset = admin(s, "resetOffsetByTime", "-g", group, "-t", topic, "-s", "0")
    check(all(q["offset"] == 0 for q in reset["queues"]), f"reset: {reset}")
    s.log("offsets reset to 0 with the consumer running")
    # A new message wakes the held pull of its queue; the others come back
    # when their hold ends.
    p.send_sync(p.message(topic, b"after reset", props={rc.PROP_ID: "after"}))

    def consumed_again():
        again = [m.rc_id for m in col.snapshot()[before:]]
        return ids <= set(again)

    s.wait_until(consumed_again, "the consumer to receive every message again after the reset", poll=0.2)
    s.log(f"after the reset the consumer received {len(col.snapshot()) - before} messages again")


if __name__ == "__main__":
    rc.run(rc.Scenario("admin_verbs", __doc__), body)
