"""Pull consumer (DefaultMQPullConsumer through the C API).

The wrapper's ``PullConsumer.pull`` generator loops forever when a pull
keeps failing (it retries BROKER_TIMEOUT / OFFSET_ILLEGAL without a limit),
so this script uses the same C calls with its own bounded loop:
FetchSubscriptionMessageQueues (route of the topic from the name server),
then Pull(queue, expression, offset, maxNums) per queue.  The C++ pull
consumer sends PULL_MESSAGE with the SUBSCRIPTION flag and the expression,
without the SUSPEND flag (so the broker must answer at once when there is
nothing new) and a 10 s client timeout.

Checks: every message sent is pulled back intact from offset 0; per queue
the offsets are 0..n-1 with no gaps; a pull never returns more than maxNums
messages; nextBeginOffset / minOffset / maxOffset are consistent; a pull at
the end of a queue answers NO_NEW_MSG promptly; a pull from a middle offset
returns the message at that offset.
"""

import rmq_common as rc
from rmq_common import check, fetch_queues, pull_once
from rocketmq.ffi import _CPullStatus

COUNT = 40
MAX_NUMS = 8


def body(s):
    topic = s.topic("t")
    p = s.producer()
    s.create_topic(p, topic)
    expected = {}
    for i in range(COUNT):
        rid = f"m{i}"
        expected[rid] = (f"pull me {i}".encode(), f"Tag{i % 2}")
        p.send_sync(
            p.message(topic, expected[rid][0], tags=expected[rid][1], keys=rid, props={rc.PROP_ID: rid, "n": str(i)})
        )
    s.log(f"sent {COUNT} messages to {topic} ({p.queue_count} queues)")

    pc = s.pull_consumer(s.group("pull"))
    queues = fetch_queues(s, pc, topic)
    check(queues, f"no route for {topic} in the name server: {rc._latest_error()}")
    check(len(queues) == p.queue_count, f"route lists {len(queues)} queues, producer saw {p.queue_count}")
    s.log(f"route: {[(q.brokerName.decode(), q.queueId) for q in queues]}")

    got = {}
    for mq in queues:
        offset = 0
        queue_msgs = []
        for _ in range(100):
            check(s.remaining() > 0, "time limit while pulling")
            status, nxt, mn, mx, msgs, took = pull_once(s, pc, mq, offset, MAX_NUMS)
            if status == _CPullStatus.FOUND:
                check(msgs, f"q{mq.queueId}@{offset}: FOUND with no messages")
                check(len(msgs) <= MAX_NUMS, f"q{mq.queueId}@{offset}: {len(msgs)} messages for maxNums {MAX_NUMS}")
                offs = [m.queue_offset for m in msgs]
                check(
                    offs == list(range(offset, offset + len(msgs))),
                    f"q{mq.queueId}@{offset}: queue offsets {offs}",
                )
                check(
                    nxt == offset + len(msgs), f"q{mq.queueId}@{offset}: nextBeginOffset {nxt} after {len(msgs)} msgs"
                )
                check(mn == 0 and mx >= nxt, f"q{mq.queueId}@{offset}: minOffset {mn} maxOffset {mx} next {nxt}")
                check(all(m.queue_id == mq.queueId for m in msgs), f"q{mq.queueId}: message of another queue")
                queue_msgs.extend(msgs)
                offset = nxt
            elif status == _CPullStatus.NO_NEW_MSG:
                check(took < 5.0, f"q{mq.queueId}@{offset}: non-suspended pull took {took:.1f}s to say NO_NEW_MSG")
                check(mx == offset, f"q{mq.queueId}: NO_NEW_MSG at {offset} but maxOffset {mx}")
                break
            elif status == _CPullStatus.NO_MATCHED_MSG:
                check(nxt > offset, f"q{mq.queueId}@{offset}: NO_MATCHED_MSG without progress")
                offset = nxt
            else:
                raise rc.ScenarioFailure(f"q{mq.queueId}@{offset}: {status.name} (next {nxt}, min {mn}, max {mx})")
        else:
            raise rc.ScenarioFailure(f"q{mq.queueId}: no NO_NEW_MSG after 100 pulls")
        got[mq.queueId] = queue_msgs
        s.log(f"q{mq.queueId}: pulled {len(queue_msgs)} messages, end offset {offset}")

    pulled = [m for msgs in got.values() for m in msgs if m.rc_id is not None]
    ids = [m.rc_id for m in pulled]
    check(len(ids) == len(set(ids)), "a message was pulled twice")
    missing = sorted(set(expected) - set(ids))
    check(not missing, f"{len(missing)} messages not pulled: {missing[:10]}")
    for m in pulled:
        body_, tags = expected[m.rc_id]
        check(m.body == body_ and m.tags == tags and m.keys == m.rc_id, f"mismatch: {m.describe()}")
        check(m.props.get("n") == m.rc_id[1:], f"{m.rc_id}: property n={m.props.get('n')!r}")
        check(m.msg_id == m.props.get("UNIQ_KEY"), f"{m.rc_id}: msgId {m.msg_id} != UNIQ_KEY")

    # Random access: the message at offset 2 of the fullest queue, alone.
    qid, msgs = max(got.items(), key=lambda kv: len(kv[1]))
    check(len(msgs) >= 3, f"fullest queue q{qid} has only {len(msgs)} messages")
    mq = next(q for q in queues if q.queueId == qid)
    status, nxt, _, _, one, _ = pull_once(s, pc, mq, 2, 1)
    check(status == _CPullStatus.FOUND and len(one) == 1, f"pull q{qid}@2 max 1: {status.name}, {len(one)} msgs")
    check(one[0].queue_offset == 2 and one[0].msg_id == msgs[2].msg_id, f"pull q{qid}@2 returned {one[0].describe()}")
    check(nxt == 3, f"pull q{qid}@2 max 1: nextBeginOffset {nxt}")
    s.log(f"all {COUNT} messages pulled; random access ok")


if __name__ == "__main__":
    rc.run(rc.Scenario("pull", __doc__), body)
