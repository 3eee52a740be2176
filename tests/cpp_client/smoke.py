"""Smoke test: the wheel's librocketmq.so loads and a producer starts.

Needs no server: a C++ producer only contacts the name server on its first
send, so start() and shutdown() must succeed against an address where nothing
listens.  This proves the venv, the wheel and the shared library's own
dependencies (libstdc++, the bundled libz) are usable on this machine.
"""

import sys

import rmq_common as rc
from rmq_common import check, dll

# C entry points the other scenarios call, directly or through the wrapper.
REQUIRED_SYMBOLS = (
    "CreateProducer",
    "StartProducer",
    "SendMessageSync",
    "SendMessageAsync",
    "SendMessageOneway",
    "SendMessageOrderly",
    "SendBatchMessage",
    "SetProducerCompressMsgBodyOverHowmuch",
    "CreatePushConsumer",
    "SetPushConsumerMessageModel",
    "RegisterMessageCallbackOrderly",
    "CreatePullConsumer",
    "FetchSubscriptionMessageQueues",
    "Pull",
    "GetMessageProperty",
)


def body(s):
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(dll, name)]
    check(not missing, f"librocketmq.so lacks {missing}")
    s.log(f"python {sys.version.split()[0]}, library {rc.library_path()}")

    p = s.producer("smoke")  # creates, sets the name server, starts
    s.log(f"producer {p.group} started against {s.namesrv} (nothing needs to listen there)")

    # Creating (not starting) the other client kinds exercises their
    # constructors and setters in the library as well.
    # (Kept alive: the wrapper's __del__ would shut down and destroy them,
    # which can block for a consumer that was never started.)
    push = s.keep(rc.PushConsumer(s.group("push")))
    push.set_namesrv_addr(s.namesrv)
    pull = s.keep(rc.PullConsumer(s.group("pull")))
    pull.set_namesrv_addr(s.namesrv)
    m = p.message(s.topic("t"), b"hello", tags="TagA", keys="k1", props={"a": "b"})
    check(m._handle, "CreateMessage returned NULL")


if __name__ == "__main__":
    rc.run(rc.Scenario("smoke", __doc__), body)
