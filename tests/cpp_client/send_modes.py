"""Sync, async and oneway sends, consumed back by a push consumer.

Checks: every send succeeds; every message is consumed exactly once with its
body, tags, keys and properties intact; for sync and async sends the msgId
returned to the producer equals the consumed message's msgId (UNIQ_KEY) and
the returned queue offset equals the consumed message's queue offset; born
and store timestamps are plausible; reconsume count is 0.
"""

import threading
import time

import rmq_common as rc
from rmq_common import check

PER_MODE = 20


def body(s):
    topic = s.topic("t")
    p = s.producer()
    # The first send auto-creates the topic from TBW102; the consumer is
    # started afterwards so that it finds a route at once.
    s.create_topic(p, topic)
    s.log(f"topic {topic} has {p.queue_count} queues")

    col = rc.Collector("c1", prop_names=("mode", "seq"))
    s.push_consumer(s.group("c"), topic, col)
    s.await_assignment(p, topic, [col], "exclusive")

    expected = {}  # rc_id -> dict(mode, tags, keys, body, props)
    results = {}  # rc_id -> (msg_id, offset) as returned to the producer
    async_errors = []
    async_done = threading.Event()
    async_pending = [PER_MODE]
    lock = threading.Lock()
    t_start_ms = int(time.time() * 1000)

    def make(mode, i):
        rid = f"{mode}-{i}"
        spec = {
            "tags": f"Tag{mode.capitalize()}",
            "keys": f"key-{rid}",
            "body": f"{mode} message {i} {'x' * (i * 7)}".encode(),
            "props": {rc.PROP_ID: rid, "mode": mode, "seq": str(i)},
        }
        expected[rid] = spec
        return rid, p.message(topic, spec["body"], tags=spec["tags"], keys=spec["keys"], props=spec["props"])

    for i in range(PER_MODE):
        rid, m = make("sync", i)
        res = p.send_sync(m)
        check(res.msg_id, f"sync send {rid}: empty msgId in SendResult")
        check(res.offset >= 0, f"sync send {rid}: negative queue offset {res.offset}")
        results[rid] = (res.msg_id, res.offset)
    s.log(f"{PER_MODE} sync sends ok")

    def on_ok_for(rid):
        def on_ok(status, msg_id, offset):
            with lock:
                if status != 0:
                    async_errors.append(f"{rid}: status {status}")
                results[rid] = (msg_id, offset)
                async_pending[0] -= 1
                if async_pending[0] == 0:
                    async_done.set()

        return on_ok

    def on_error_for(rid):
        def on_error(text):
            with lock:
                async_errors.append(f"{rid}: {text}")
                async_pending[0] -= 1
                if async_pending[0] == 0:
                    async_done.set()

        return on_error

    async_msgs = []  # keep Message objects alive until the callbacks ran
    for i in range(PER_MODE):
        rid, m = make("async", i)
        async_msgs.append(m)
        p.send_async(m, on_ok_for(rid), on_error_for(rid))
    s.wait_until(async_done.is_set, "all async send callbacks")
    check(not async_errors, f"async sends failed: {async_errors[:5]}")
    s.log(f"{PER_MODE} async sends acknowledged")

    for i in range(PER_MODE):
        rid, m = make("oneway", i)
        p.raw.send_oneway(m)
    s.log(f"{PER_MODE} oneway sends issued")

    def all_arrived():
        return set(expected) <= set(col.ids())

    try:
        s.wait_until(all_arrived, "all messages to be consumed")
    except rc.ScenarioFailure:
        missing = sorted(set(expected) - set(col.ids()))
        by_mode = {mode: sum(1 for r in missing if r.startswith(mode + "-")) for mode in ("sync", "async", "oneway")}
        raise rc.ScenarioFailure(f"{len(missing)} messages never consumed (per mode {by_mode}): {missing[:10]}")
    s.sleep(1.0)  # let late duplicates show up

    got = col.snapshot()
    dups = len(got) - len({m.rc_id for m in got})
    check(dups == 0, f"{dups} duplicate deliveries with a single, settled consumer")
    t_end_ms = int(time.time() * 1000)
    for m in got:
        spec = expected.get(m.rc_id)
        check(spec is not None, f"unexpected message {m.describe()}")
        check(m.topic == topic, f"{m.rc_id}: topic {m.topic!r}")
        check(m.body == spec["body"], f"{m.rc_id}: body {m.body[:60]!r} != {spec['body'][:60]!r}")
        check(m.tags == spec["tags"], f"{m.rc_id}: tags {m.tags!r} != {spec['tags']!r}")
        check(m.keys == spec["keys"], f"{m.rc_id}: keys {m.keys!r} != {spec['keys']!r}")
        for k, v in spec["props"].items():
            check(m.props.get(k) == v, f"{m.rc_id}: property {k}={m.props.get(k)!r}, sent {v!r}")
        check(m.props.get("UNIQ_KEY") == m.msg_id, f"{m.rc_id}: msgId {m.msg_id} != UNIQ_KEY {m.props.get('UNIQ_KEY')}")
        check(m.reconsume_times == 0, f"{m.rc_id}: reconsume times {m.reconsume_times}")
        check(
            t_start_ms - 5000 <= m.born_ts <= t_end_ms + 5000,
            f"{m.rc_id}: born timestamp {m.born_ts} outside the run [{t_start_ms}, {t_end_ms}]",
        )
        check(
            m.store_ts >= m.born_ts - 5000 and m.store_ts <= t_end_ms + 5000,
            f"{m.rc_id}: store timestamp {m.store_ts} implausible (born {m.born_ts})",
        )
        if m.rc_id in results:
            msg_id, offset = results[m.rc_id]
            check(msg_id == m.msg_id, f"{m.rc_id}: producer got msgId {msg_id}, consumer {m.msg_id}")
            check(
                offset == m.queue_offset,
                f"{m.rc_id}: producer got queue offset {offset}, consumer saw {m.queue_offset} (q{m.queue_id})",
            )
    # Queue offsets must be unique per queue.
    seen = {}
    for m in got:
        key = (m.queue_id, m.queue_offset)
        check(key not in seen, f"{m.rc_id} and {seen.get(key)} share queue offset {key}")
        seen[key] = m.rc_id
    s.log(f"all {len(expected)} messages consumed intact")


if __name__ == "__main__":
    rc.run(rc.Scenario("send_modes", __doc__), body)
