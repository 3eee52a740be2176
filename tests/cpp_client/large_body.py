"""Large and compressed bodies round-trip unchanged.

The C++ producer deflates (zlib, level 5) every body of at least
``compressMsgBodyOverHowmuch`` bytes (default 4096) and sets bit 0
(COMPRESSED) of the message sysFlag; the consumer inflates when the stored
record's sysFlag has that bit.  So the broker must store the compressed body
and the flag as sent.  The client refuses bodies over its maxMessageSize
(128 KiB by default in 1.2.x, checked before compression); the producers
here raise it to 4 MiB, the Java broker's default limit, hence 3 MiB bodies.

Messages (bodies never contain NUL: the C API returns bodies as C strings):
* 3 MiB of random bytes, compression disabled (threshold raised through the
  C call SetProducerCompressMsgBodyOverHowmuch): a ~3 MiB frame each way;
* the same size of random bytes with default compression (flag set, body
  hardly smaller);
* 256 KiB of repetitive text with default compression (deflates to ~1 KiB);
* 4095 bytes (just under the threshold: sent plain) and 4096 bytes (at the
  threshold: deflated).
"""

import hashlib
import os

import rmq_common as rc
from rmq_common import check

MIB = 1024 * 1024


def random_body(n):
    return os.urandom(n).replace(b"\x00", b"\x01")


def body(s):
    topic = s.topic("t")
    plain = s.producer("plain", compress_over=16 * MIB, max_message_size=4 * MIB)
    default = s.producer("zip", max_message_size=4 * MIB)
    s.create_topic(default, topic)

    col = rc.Collector("c1", prop_names=("kind",))
    s.push_consumer(s.group("c"), topic, col)
    s.await_assignment(default, topic, [col], "exclusive")

    text = b"".join(b"line %06d: the quick brown fox jumps over the lazy dog\n" % i for i in range(5000))[: 256 * 1024]
    cases = [
        ("raw-3MiB", plain, random_body(3 * MIB)),
        ("deflated-3MiB", default, random_body(3 * MIB)),
        ("deflated-text-256KiB", default, text),
        ("below-threshold-4095", default, random_body(4095)),
        ("at-threshold-4096", default, random_body(4096)),
    ]
    expected = {}
    for kind, producer, data in cases:
        m = producer.message(topic, data, tags="Big", keys=kind, props={rc.PROP_ID: kind, "kind": kind})
        res = producer.send_sync(m)
        expected[kind] = data
        s.log(f"sent {kind}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}, offset {res.offset}")

    try:
        s.wait_until(lambda: set(expected) <= set(col.ids()), "all large messages")
    except rc.ScenarioFailure:
        missing = sorted(set(expected) - set(col.ids()))
        raise rc.ScenarioFailure(f"never consumed: {missing}")
    for m in col.snapshot():
        want = expected[m.rc_id]
        check(
            m.body == want,
            f"{m.rc_id}: body differs: got {len(m.body)} bytes sha256 {hashlib.sha256(m.body).hexdigest()[:16]}, "
            f"sent {len(want)} bytes sha256 {hashlib.sha256(want).hexdigest()[:16]}"
            + (
                " (an empty body means inflate failed: compressed body or COMPRESSED flag altered)"
                if not m.body
                else ""
            ),
        )
        check(m.keys == m.rc_id and m.tags == "Big", f"{m.rc_id}: {m.describe()}")
    s.log("all bodies identical")


if __name__ == "__main__":
    rc.run(rc.Scenario("large_body", __doc__), body)
