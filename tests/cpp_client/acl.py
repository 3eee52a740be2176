"""ACL with the C++ client's session credentials (AccessKey + HMAC signature).

The broker runs with aclEnable=true and the ACL file that tests/cpp_client.rs
writes (accounts below).  Checks: with the right key a producer sends and a
push consumer consumes; with a wrong secret, or without PUB permission on the
topic, sends fail and the failure names the refusal; a consumer without SUB
permission on a topic gets nothing, while an admin consumer gets the same
message.
"""

import glob
import os
import time

import rmq_common as rc
from rmq_common import check

# Must match ACL_FILE in tests/cpp_client.rs.
USER = ("cppuser01", "cpp-user-secret")
ADMIN = ("cppadmin01", "cpp-admin-secret")
OPEN = "AclOpen"  # user: PUB|SUB
READ_ONLY = "AclReadOnly"  # user: SUB
NO_SUB = "AclNoSub"  # user: PUB

# How long a consumer without SUB is watched for (it must get nothing).
NO_SUB_WATCH_S = 8.0


def producer(s, label, who):
    p = rc.ScenarioProducer(s, s.group(label))
    s.keep(p.raw)
    p.raw.set_session_credentials(who[0], who[1], "ALIYUN")
    # One client instance per credential set: the C++ client shares its
    # MQClientFactory (and with it the signing hook) per instance name.
    status = rc.dll.SetProducerInstanceName(p.raw._handle, f"{label}_{s.token}".encode())
    check(status == 0, f"SetProducerInstanceName returned {status}")
    p.raw.start()
    s.log(f"producer {p.group} started as {who[0]}")
    return p


def consumer(s, label, topic, who):
    col = rc.Collector(label)
    c = s.keep(rc.PushConsumer(s.group(label)))
    c.set_namesrv_addr(s.namesrv)
    c.set_session_credentials(who[0], who[1], "ALIYUN")
    c.set_instance_name(f"{label}_{s.token}")
    c.subscribe(topic, col.callback, "*")
    c.start()
    s._consumers.append(c)
    s._collectors.append(col)
    s.log(f"push consumer {label} on {topic} started as {who[0]}")
    return col


def send_fails(p, topic, what):
    try:
        res = p.raw.send_sync(p.message(topic, b"must be refused", props={rc.PROP_ID: what}))
    except Exception as e:  # noqa: BLE001 - the wrapper raises its own types
        return str(e)
    raise rc.ScenarioFailure(f"{what}: send succeeded ({res.status!r}, {res.msg_id})")


def client_log_has(text, limit_s=5.0):
    """Whether the C++ client's log (under $HOME, set per test) contains
    `text` within `limit_s`: the library only reports "No route info" to the
    application after its retries, and logs each broker refusal."""
    end = time.monotonic() + limit_s
    pattern = os.path.join(os.environ["HOME"], "logs", "rocketmq-cpp", "*.log*")
    while True:
        for path in glob.glob(pattern):
            with open(path, errors="replace") as f:
                if text in f.read():
                    return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)


def body(s):
    admin = producer(s, "admin", ADMIN)
    for topic in (OPEN, READ_ONLY, NO_SUB):
        # An admin's first send auto-creates the topic.
        admin.send_sync(admin.message(topic, b"create", props={rc.PROP_PROBE: "0:0"}))
        s.wait_for_route(topic)
    s.log("topics created by the admin account")

    user = producer(s, "user", USER)
    sent = user.send_sync(user.message(OPEN, b"signed hello", props={rc.PROP_ID: "ok-1"}))
    s.log(f"signed send to {OPEN}: {sent.msg_id}")

    received = consumer(s, "reader", OPEN, USER)
    s.wait_until(lambda: "ok-1" in received.ids(), "the signed message to reach the signed consumer")
    s.log("signed consumer received it")

    wrong = producer(s, "wrong", (USER[0], "not-the-secret"))
    e = send_fails(wrong, OPEN, "wrong secret")
    s.log(f"wrong secret refused; the application sees: {e}")
    refusal = f'AclException: signature mismatch for AccessKey "{USER[0]}"'
    check(client_log_has(refusal), f"the client log lacks the broker's refusal {refusal!r}")

    e = send_fails(user, READ_ONLY, "no PUB")
    s.log(f"send without PUB refused; the application sees: {e}")
    refusal = f"AclException: no PUB permission on topic {READ_ONLY}"
    check(client_log_has(refusal), f"the client log lacks the broker's refusal {refusal!r}")

    user.send_sync(user.message(NO_SUB, b"for admins only", props={rc.PROP_ID: "nosub-1"}))
    denied = consumer(s, "denied", NO_SUB, USER)
    allowed = consumer(s, "allowed", NO_SUB, ADMIN)
    s.wait_until(lambda: "nosub-1" in allowed.ids(), "the admin consumer to receive the message")
    s.sleep(NO_SUB_WATCH_S)
    check(not denied.ids(), f"a consumer without SUB received {sorted(denied.ids())}")
    # The library logs only "get error response:1 of heartbeat" for the
    # consumer's refused heartbeat; ask the broker directly why, with a
    # pull signed by Python's hmac.
    pull = {
        "consumerGroup": s.group("denied"),
        "topic": NO_SUB,
        "queueId": 0,
        "queueOffset": 0,
        "maxMsgNums": 32,
        "sysFlag": 0,
        "commitOffset": 0,
        "suspendTimeoutMillis": 0,
        "subscription": "*",
        "subVersion": 0,
    }
    code, remark, _ = s.admin_request(11, pull, credentials=USER)
    s.log(f"signed pull without SUB: code {code}, {remark}")
    check(code == 1 and f"no SUB permission on topic {NO_SUB}" in (remark or ""), f"pull without SUB: {code} {remark}")
    # The same signature scheme with the permission: the message is there.
    pull.update(topic=OPEN, consumerGroup=s.group("reader"), queueOffset=0)
    found = []
    for q in range(4):
        pull["queueId"] = q
        code, remark, body = s.admin_request(11, pull, credentials=USER)
        check(code in (0, 19, 20), f"signed pull with SUB answered {code} {remark}")
        found.append(b"signed hello" in body)
    check(any(found), "a signed pull with SUB did not return the signed message")
    s.log(f"consumer without SUB got nothing in {NO_SUB_WATCH_S:.0f} s; the admin consumer got the message")


if __name__ == "__main__":
    rc.run(rc.Scenario("acl", __doc__), body)
