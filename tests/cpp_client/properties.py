"""Keys, tags and user properties arrive intact.

Properties travel as one string ``name\\x01value\\x02...`` (send header
``properties``; stored record's properties, length a signed 16-bit value);
the consumer splits it again.  Checks, per message: several space-separated
keys, UTF-8 tags/keys/values, values with separators-looking punctuation,
a ~1 KiB value, 30 properties on one message, and the system properties the
client adds (UNIQ_KEY = the msgId returned to the producer, KEYS, TAGS,
WAIT=true) -- the broker may add its own but must not drop or alter these.
"""

import rmq_common as rc
from rmq_common import check

MANY = 30


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)

    specs = {
        "multi-keys": {"keys": "order-1 user-42 txn-9", "tags": "TagP", "props": {"a": "1"}},
        "utf8": {
            "keys": "ключ-κλειδί-鍵",
            "tags": "标签",
            "props": {"greeting": "héllo wörld ✓", "emoji": "🚀 launch", "名前": "値"},
        },
        "punctuation": {
            "keys": "k=v;x:y",
            "tags": "Tag-With_Dash.Dot",
            "props": {
                "json": '{"a": [1, 2], "b": "c=d"}',
                "url": "http://h/p?q=1&r=2#f",
                "spaces": "  lead and trail  ",
            },
        },
        "long-value": {"keys": "long", "tags": "TagL", "props": {"long": "v" * 1024}},
        "many": {"keys": "many", "tags": "TagM", "props": {f"prop_{i:02d}": f"value {i}" for i in range(MANY)}},
    }
    names = set()
    for spec in specs.values():
        names.update(spec["props"])
    col = rc.Collector("c1", prop_names=sorted(names))
    s.push_consumer(s.group("c"), topic, col)
    s.await_assignment(p, topic, [col], "exclusive", probe_tag=None)

    sent_ids = {}
    for rid, spec in specs.items():
        props = dict(spec["props"])
        props[rc.PROP_ID] = rid
        res = p.send_sync(p.message(topic, f"body of {rid}", tags=spec["tags"], keys=spec["keys"], props=props))
        sent_ids[rid] = res.msg_id

    try:
        s.wait_until(lambda: set(specs) <= set(col.ids()), "all messages")
    except rc.ScenarioFailure:
        raise rc.ScenarioFailure(f"never consumed: {sorted(set(specs) - set(col.ids()))}")
    for m in col.snapshot():
        spec = specs[m.rc_id]
        check(m.keys == spec["keys"], f"{m.rc_id}: keys {m.keys!r} != {spec['keys']!r}")
        check(m.props.get("KEYS") == spec["keys"], f"{m.rc_id}: KEYS property {m.props.get('KEYS')!r}")
        check(m.tags == spec["tags"], f"{m.rc_id}: tags {m.tags!r} != {spec['tags']!r}")
        check(m.props.get("TAGS") == spec["tags"], f"{m.rc_id}: TAGS property {m.props.get('TAGS')!r}")
        for k, v in spec["props"].items():
            check(m.props.get(k) == v, f"{m.rc_id}: property {k!r} = {m.props.get(k)!r}, sent {v!r}")
        check(m.msg_id == sent_ids[m.rc_id], f"{m.rc_id}: msgId {m.msg_id}, producer got {sent_ids[m.rc_id]}")
        check(m.props.get("UNIQ_KEY") == sent_ids[m.rc_id], f"{m.rc_id}: UNIQ_KEY {m.props.get('UNIQ_KEY')!r}")
        check(m.props.get("WAIT") == "true", f"{m.rc_id}: WAIT property {m.props.get('WAIT')!r}")
        check(m.body == f"body of {m.rc_id}".encode(), f"{m.rc_id}: body {m.body!r}")
    s.log(f"{len(specs)} messages with their properties intact")


if __name__ == "__main__":
    rc.run(rc.Scenario("properties", __doc__), body)
