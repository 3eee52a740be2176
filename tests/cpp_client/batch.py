"""Batch send (C API SendBatchMessage, via the wrapper's Producer.send_batch).

librocketmq 1.2.x encodes a batch like the Java client (§6.6 of the spec:
per entry TOTALSIZE|MAGIC|BODYCRC|FLAG|BODYLEN|BODY|PROPLEN|PROPS, each entry
with its own UNIQ_KEY) but sends it with request code 10 (SEND_MESSAGE, V1
header keys) and the header field ``batch`` set to ``"1"`` (C++
``ostringstream << bool``), not code 320 and not ``"true"``.

The last batch is 64 entries of 1 KiB: over the client's compression
threshold (4 KiB by default), so librocketmq zlib-compresses the whole batch
body and sets the COMPRESSED sysFlag on the request; the broker inflates it
and stores the entries uncompressed.

Checks: each entry is consumed as its own message with its own tags, keys,
properties, body and msgId; all entries of one batch share one queue and
have consecutive queue offsets.
"""

import rmq_common as rc
from rmq_common import check

# Entries per batch, and each entry's body size (None: small, varied).
BATCHES = [(8, None), (8, None), (8, None), (64, 1024)]


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)
    col = rc.Collector("c1", prop_names=("batch", "entry"))
    s.push_consumer(s.group("c"), topic, col)
    s.await_assignment(p, topic, [col], "exclusive")

    expected = {}
    for b, (entries, size) in enumerate(BATCHES):
        msgs = []
        for e in range(entries):
            rid = f"b{b}-e{e}"
            head = f"batch {b} entry {e} ".encode()
            if size is None:
                payload = head + bytes(range(1, 1 + e * 20 % 255))
            else:
                # No NUL bytes: the C API hands bodies back as C strings.
                payload = (head + bytes(33 + (i * 7 + e) % 90 for i in range(size)))[:size]
            spec = {
                "tags": f"Tag{e % 3}",
                "keys": f"bkey-{rid}",
                "body": payload,
                "props": {rc.PROP_ID: rid, "batch": str(b), "entry": str(e)},
            }
            expected[rid] = spec
            msgs.append(p.message(topic, spec["body"], tags=spec["tags"], keys=spec["keys"], props=spec["props"]))
        try:
            res = p.raw.send_batch(msgs)
        except Exception as e:  # noqa: BLE001 - the wrapper raises on a refusal
            raise rc.ScenarioFailure(f"batch {b} ({entries} entries of {size or 'small'} bytes) refused: {e}")
        check(res.status == rc.SendStatus.OK, f"batch {b}: status {res.status!r}")
        # 1.2.x reports an empty msgId for a batch (it has no UNIQ_KEY of its
        # own), so only the status and offset are meaningful here.
        s.log(f"batch {b}: status {res.status.name} offset {res.offset} msgId {res.msg_id!r}")

    def all_arrived():
        return set(expected) <= set(col.ids())

    try:
        s.wait_until(all_arrived, "all batch entries to be consumed")
    except rc.ScenarioFailure:
        got = col.snapshot()
        hint = ""
        if any(m.rc_id is None for m in got):
            odd = [m for m in got if m.rc_id is None][0]
            hint = (
                f"; a message without entry properties arrived ({odd.describe()}): the broker "
                "probably stored the whole batch as ONE message -- C++ 1.2.x marks batches "
                'only with header batch="1" on SEND_MESSAGE (code 10)'
            )
        missing = sorted(set(expected) - set(col.ids()))
        raise rc.ScenarioFailure(f"{len(missing)} of {len(expected)} batch entries never consumed: {missing[:8]}{hint}")
    s.sleep(1.0)

    got = col.snapshot()
    stray = [m for m in got if m.rc_id not in expected]
    check(not stray, f"unexpected messages: {[m.describe() for m in stray[:3]]}")
    dups = len(got) - len({m.rc_id for m in got})
    check(dups == 0, f"{dups} duplicate deliveries")
    msg_ids = set()
    for m in got:
        spec = expected[m.rc_id]
        check(m.body == spec["body"], f"{m.rc_id}: body {m.body[:50]!r} != {spec['body'][:50]!r}")
        check(m.tags == spec["tags"], f"{m.rc_id}: tags {m.tags!r} != {spec['tags']!r}")
        check(m.keys == spec["keys"], f"{m.rc_id}: keys {m.keys!r} != {spec['keys']!r}")
        for k, v in spec["props"].items():
            check(m.props.get(k) == v, f"{m.rc_id}: property {k}={m.props.get(k)!r}, sent {v!r}")
        check(m.msg_id, f"{m.rc_id}: empty msgId")
        check(m.msg_id not in msg_ids, f"{m.rc_id}: msgId {m.msg_id} shared with another entry")
        msg_ids.add(m.msg_id)
    for b, (count, _) in enumerate(BATCHES):
        entries = sorted((m for m in got if m.props.get("batch") == str(b)), key=lambda m: int(m.props["entry"]))
        queues = {m.queue_id for m in entries}
        check(len(queues) == 1, f"batch {b} spread over queues {queues}")
        offsets = [m.queue_offset for m in entries]
        check(
            offsets == list(range(offsets[0], offsets[0] + count)),
            f"batch {b}: entries not at consecutive queue offsets in entry order: {offsets}",
        )
    s.log(f"all {len(expected)} entries of {len(BATCHES)} batches consumed intact")


if __name__ == "__main__":
    rc.run(rc.Scenario("batch", __doc__), body)
