"""Shared helpers for the C++-client scenario scripts.

Every scenario script in this directory drives the official Apache RocketMQ
C++ client (``librocketmq.so``, shipped in the PyPI wheel ``rocketmq==0.4.4``
together with a small ctypes wrapper) against a running rocketcore name server
+ broker.  The scripts are started by ``tests/cpp_client.rs`` with the venv's
interpreter; each can also be run by hand:

    python <scenario>.py --namesrv 127.0.0.1:9876 --timeout 40

Design rules, because a client library hanging or crashing must never hang
the test run:

* every wait has a deadline derived from ``--timeout``;
* ``faulthandler`` kills the process (exit 1, with Python stacks) if it is
  still alive after ``--timeout`` seconds, whatever the C++ threads do;
* the script ends with ``os._exit`` so that interpreter teardown (the
  wrapper's ``__del__`` methods call into C++ in undefined order) cannot turn
  a verdict into a crash;
* consumer callbacks never raise (an exception inside a ctypes callback is
  only printed by ctypes and the wrapper would then ask for redelivery); they
  record the problem and the scenario fails on it later.

The C++ client writes its logs to ``$HOME/logs/rocketmq-cpp/`` and broadcast
offsets to ``$HOME/.rocketmq_offsets/``; the Rust runner points ``HOME`` at a
per-test directory so that runs are isolated and the logs can be shown on
failure.
"""

import argparse
import base64
import ctypes
import faulthandler
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from ctypes import POINTER, byref, c_int, c_void_p

# Importing the wrapper loads librocketmq.so (ffi.py does the dlopen).
from rocketmq import ffi
from rocketmq.client import Message, Producer, PullConsumer, PushConsumer, SendStatus
from rocketmq.ffi import MessageModel, _CMessageQueue, _CPullStatus, dll

# How long an auto-created topic may take to appear in the name server's
# route.  A Java broker registers a new topic at once; a C++ push consumer
# that starts before that only re-reads routes every 30 s.
ROUTE_LIMIT_S = 5.0

# Reserved at the end of the time budget for shutting clients down and
# printing the verdict.
SHUTDOWN_RESERVE_S = 8.0

# Property names the scenarios put on every message they send.  The C API has
# no "list all properties" call, so the collector reads a fixed set of names.
PROP_ID = "rc_id"  # unique id of a scenario message within its run
PROP_PROBE = "rc_probe"  # "<round>:<queue>" on barrier probes (see Scenario.await_assignment)

SYSTEM_PROPS = ("UNIQ_KEY", "KEYS", "TAGS", "WAIT")


class ScenarioFailure(Exception):
    """A check failed; the message says what was expected and what was seen."""


def check(cond, message):
    if not cond:
        raise ScenarioFailure(message)


# --------------------------------------------------------------------------
# Extra C entry points that the 0.4.4 wrapper does not expose correctly.
# --------------------------------------------------------------------------

# The wrapper declares the async success callback as taking a *pointer* to
# CSendResult, but librocketmq's C API (CProducer.h:
# `typedef void (*CSendSuccessCallback)(CSendResult result)`) passes the
# 272-byte struct *by value*.  On x86-64 such a struct travels on the stack,
# so the wrapper's `send_async` dereferences whatever happens to be in a
# register.  We declare the correct prototype and call SendMessageAsync
# through it instead.
SEND_SUCCESS_BY_VALUE = ctypes.CFUNCTYPE(None, ffi._CSendResult)
SEND_EXCEPTION_BY_VALUE = ctypes.CFUNCTYPE(None, ffi._CMQException)
_SendMessageAsync = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, SEND_SUCCESS_BY_VALUE, SEND_EXCEPTION_BY_VALUE)(
    ("SendMessageAsync", dll)
)

# Not wrapped at all in 0.4.4: the body size from which the producer deflates
# (default 4096 bytes).  Raising it lets a scenario send a large body
# uncompressed.
dll.SetProducerCompressMsgBodyOverHowmuch.argtypes = [c_void_p, c_int]
dll.SetProducerCompressMsgBodyOverHowmuch.restype = c_int


def library_path():
    return ffi._DYLIB_PATH


# --------------------------------------------------------------------------
# Received messages
# --------------------------------------------------------------------------


def _decode(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


class Received:
    """A copy of one consumed message.

    The C++ message object is only valid during the callback, so everything is
    copied out immediately.  Note: the C API returns the body as a
    NUL-terminated string (GetMessageBody), so scenario bodies never contain
    NUL bytes; then the copy is exact.
    """

    __slots__ = (
        "consumer",
        "topic",
        "tags",
        "keys",
        "body",
        "msg_id",
        "queue_id",
        "queue_offset",
        "reconsume_times",
        "born_ts",
        "store_ts",
        "props",
        "received_at",
    )

    @classmethod
    def from_handle(cls, consumer, handle, prop_names):
        r = cls()
        r.consumer = consumer
        r.topic = _decode(dll.GetMessageTopic(handle))
        r.tags = _decode(dll.GetMessageTags(handle))
        r.keys = _decode(dll.GetMessageKeys(handle))
        r.body = dll.GetMessageBody(handle) or b""
        r.msg_id = _decode(dll.GetMessageId(handle))
        r.queue_id = dll.GetMessageQueueId(handle)
        r.queue_offset = dll.GetMessageQueueOffset(handle)
        r.reconsume_times = dll.GetMessageReconsumeTimes(handle)
        r.born_ts = dll.GetMessageBornTimestamp(handle)
        r.store_ts = dll.GetMessageStoreTimestamp(handle)
        r.props = {}
        for name in prop_names:
            value = dll.GetMessageProperty(handle, name.encode())
            # The C++ client returns "" for an absent property.
            if value:
                r.props[name] = value.decode("utf-8", errors="replace")
        r.received_at = time.monotonic()
        return r

    @property
    def rc_id(self):
        return self.props.get(PROP_ID)

    def describe(self):
        body = self.body[:40]
        return (
            f"<{self.consumer} q{self.queue_id}@{self.queue_offset} id={self.msg_id} "
            f"tags={self.tags!r} keys={self.keys!r} body[{len(self.body)}]={body!r}... "
            f"props={self.props}>"
        )


class Collector:
    """Records what one consumer receives, from the C++ consume threads."""

    def __init__(self, name, prop_names=(), slow_ms=0):
        self.name = name
        self.prop_names = tuple(dict.fromkeys((PROP_ID, PROP_PROBE) + SYSTEM_PROPS + tuple(prop_names)))
        self.slow_s = slow_ms / 1000.0
        self.lock = threading.Lock()
        self.messages = []  # scenario messages, in arrival order
        self.probes = []  # barrier probes: (round, queue)
        self.errors = []
        # Per-queue count of callbacks currently running (to detect
        # concurrent consumption of one queue by an orderly consumer).
        self.in_flight = {}
        self.max_in_flight = {}

    def callback(self, msg):
        """Given to PushConsumer.subscribe; `msg` is the wrapper's RecvMessage."""
        try:
            rec = Received.from_handle(self.name, msg._handle, self.prop_names)
            with self.lock:
                n = self.in_flight.get(rec.queue_id, 0) + 1
                self.in_flight[rec.queue_id] = n
                self.max_in_flight[rec.queue_id] = max(n, self.max_in_flight.get(rec.queue_id, 0))
            try:
                if self.slow_s:
                    time.sleep(self.slow_s)
                probe = rec.props.get(PROP_PROBE)
                with self.lock:
                    if probe is not None:
                        rnd, q = probe.split(":")
                        self.probes.append((int(rnd), int(q)))
                    else:
                        self.messages.append(rec)
            finally:
                with self.lock:
                    self.in_flight[rec.queue_id] -= 1
        except BaseException:  # never let an exception escape into C++
            with self.lock:
                self.errors.append(traceback.format_exc())

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def probe_snapshot(self):
        with self.lock:
            return list(self.probes)

    def ids(self):
        return [m.rc_id for m in self.snapshot()]


# --------------------------------------------------------------------------
# Scenario context
# --------------------------------------------------------------------------


class Scenario:
    def __init__(self, name, description):
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--namesrv", required=True, help="name server address host:port")
        parser.add_argument("--timeout", type=float, default=40.0, help="hard time limit in seconds")
        parser.add_argument("--broker", help="broker address host:port, for admin requests the C API lacks")
        args = parser.parse_args()
        self.name = name
        self.namesrv = args.namesrv
        self.broker = args.broker
        self.timeout = args.timeout
        self.t0 = time.monotonic()
        self.deadline = self.t0 + max(1.0, self.timeout - SHUTDOWN_RESERVE_S)
        # Unique suffix so that topic and group names never collide with
        # another scenario or an earlier run against the same store.
        self.token = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._producers = []
        self._consumers = []
        # Every wrapper object created, kept alive until os._exit: the
        # wrapper's __del__ calls Shutdown + Destroy, which can block (seen
        # for a push consumer that was never started) or act on a client
        # that was already shut down.
        self._keep = []
        self._notes = []
        self._collectors = []
        self._route_probe = None

    # -- naming ------------------------------------------------------------

    def topic(self, label):
        return f"cpp_{self.name}_{label}_{self.token}"

    def group(self, label):
        return f"GID_cpp_{self.name}_{label}_{self.token}"

    # -- logging -----------------------------------------------------------

    def log(self, text):
        print(f"[{time.monotonic() - self.t0:6.2f}s] {text}", flush=True)

    def note(self, text):
        """Something worth reporting even on success."""
        self._notes.append(text)
        self.log("NOTE: " + text)

    def remaining(self):
        return self.deadline - time.monotonic()

    # -- clients -----------------------------------------------------------

    def producer(self, label="p", compress_over=None, max_message_size=None):
        p = ScenarioProducer(self, self.group(label))
        self.keep(p.raw)
        # Producers get a client instance (MQClientFactory) of their own:
        # after the first send to a new topic that instance caches TBW102's
        # route under the topic's name, and a pull consumer sharing it would
        # then "see" the topic without asking the name server (see
        # wait_for_route).
        status = dll.SetProducerInstanceName(p.raw._handle, f"producers_{self.token}".encode())
        check(status == 0, f"SetProducerInstanceName returned {status}")
        if max_message_size is not None:
            # librocketmq 1.2.x refuses bodies over 128 KiB by default
            # (client-side check, before compression).
            p.raw.set_max_message_size(max_message_size)
        if compress_over is not None:
            status = dll.SetProducerCompressMsgBodyOverHowmuch(p.raw._handle, compress_over)
            check(status == 0, f"SetProducerCompressMsgBodyOverHowmuch returned {status}")
        p.raw.start()
        self._producers.append(p)
        self.log(f"producer {p.group} started")
        return p

    def push_consumer(
        self,
        group,
        topic,
        collector,
        expression="*",
        orderly=False,
        model=MessageModel.CLUSTERING,
        instance=None,
        threads=None,
    ):
        c = self.keep(PushConsumer(group, orderly=orderly, message_model=model))
        c.set_namesrv_addr(self.namesrv)
        if instance is not None:
            # Clients of one process share one C++ MQClientFactory per
            # instance name; two members of one group need distinct ones
            # (and distinct client ids, which the broker's consumer list and
            # the rebalance are keyed on).
            c.set_instance_name(instance)
        if threads is not None:
            c.set_thread_count(threads)
        c.subscribe(topic, collector.callback, expression)
        c.start()
        self._consumers.append(c)
        self._collectors.append(collector)
        self.log(
            f"push consumer {collector.name} started: group={group} topic={topic} "
            f"expr={expression!r} orderly={orderly} model={MessageModel(model).name}"
        )
        return c

    def push_consumer_deciding(self, group, topic, collector, decide, expression="*"):
        """A push consumer whose verdict per message is `decide(Received)`:
        True consumes it, False asks for redelivery (RECONSUME_LATER).

        The wrapper's own subscribe cannot answer RECONSUME_LATER (an
        exception raised in its callback escapes through ctypes, which then
        returns 0 = CONSUME_SUCCESS), so this registers its own callback.
        """
        c = self.keep(PushConsumer(group))
        c.set_namesrv_addr(self.namesrv)
        check(dll.Subscribe(c._handle, topic.encode(), expression.encode()) == 0, "Subscribe failed")

        def on_message(_consumer, handle):
            try:
                rec = Received.from_handle(collector.name, handle, collector.prop_names)
                if rec.props.get(PROP_PROBE) is not None:
                    with collector.lock:
                        rnd, q = rec.props[PROP_PROBE].split(":")
                        collector.probes.append((int(rnd), int(q)))
                    return 0
                ok = bool(decide(rec))
                with collector.lock:
                    collector.messages.append(rec)
                return 0 if ok else 1
            except BaseException:  # never let an exception escape into C++
                with collector.lock:
                    collector.errors.append(traceback.format_exc())
                return 1

        func = ffi.MSG_CALLBACK_FUNC(on_message)
        self.keep(func)
        check(dll.RegisterMessageCallback(c._handle, func) == 0, "RegisterMessageCallback failed")
        c.start()
        self._consumers.append(c)
        self._collectors.append(collector)
        self.log(f"deciding push consumer {collector.name} started: group={group} topic={topic}")
        return c

    def admin_request(self, code, ext=None, body=b"", credentials=None):
        """One request to the broker over a plain socket (JSON header), for
        admin calls the C API does not offer. Returns (code, remark, body).

        With `credentials` (access key, secret) the request is signed as
        RocketMQ's ACL wants, here with Python's own hmac: an implementation
        independent of the broker's."""
        check(self.broker, "this scenario needs --broker")
        host, port = self.broker.rsplit(":", 1)
        ext = {k: str(v) for k, v in (ext or {}).items()}
        if credentials is not None:
            ext["AccessKey"] = credentials[0]
            content = "".join(ext[k] for k in sorted(ext)).encode() + body
            digest = hmac.new(credentials[1].encode(), content, hashlib.sha1).digest()
            ext["Signature"] = base64.b64encode(digest).decode()
        header = json.dumps(
            {
                "code": code,
                "flag": 0,
                "language": "PYTHON",
                "opaque": 1,
                "serializeTypeCurrentRPC": "JSON",
                "version": 401,
                "extFields": ext,
            }
        ).encode()
        frame = struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(frame)
            length = struct.unpack(">I", _recv_exact(sock, 4))[0]
            data = _recv_exact(sock, length)
        header_len = struct.unpack(">I", data[:4])[0] & 0xFFFFFF
        reply = json.loads(data[4 : 4 + header_len])
        return reply.get("code"), reply.get("remark"), data[4 + header_len :]

    def create_group(self, group, **settings):
        """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) with the given settings."""
        cfg = {"groupName": group}
        cfg.update(settings)
        code, remark, _ = self.admin_request(200, body=json.dumps(cfg).encode())
        check(code == 0, f"creating group {group}: code {code} {remark}")
        self.log(f"group {group} created with {settings}")

    def keep(self, obj):
        """Keep a wrapper object alive until the process exits (see _keep)."""
        self._keep.append(obj)
        return obj

    def shutdown_consumer(self, consumer):
        """Shut one consumer down now (bounded); it stays referenced."""
        self._consumers.remove(consumer)
        if not _bounded(consumer.shutdown, 15.0, "push consumer shutdown"):
            raise ScenarioFailure("push consumer shutdown did not return within 15 s")

    def pull_consumer(self, group):
        c = self.keep(PullConsumer(group))
        c.set_namesrv_addr(self.namesrv)
        c.start()
        self._consumers.append(c)
        self.log(f"pull consumer {group} started")
        return c

    # -- waiting -----------------------------------------------------------

    def wait_until(self, predicate, what, limit=None, poll=0.05):
        """Poll `predicate` until true; fail with `what` at the deadline."""
        end = self.deadline if limit is None else min(self.deadline, time.monotonic() + limit)
        while True:
            if predicate():
                return True
            if time.monotonic() >= end:
                if limit is not None and end < self.deadline:
                    return False
                raise ScenarioFailure(f"timed out after {time.monotonic() - self.t0:.1f}s waiting for {what}")
            time.sleep(poll)

    def sleep(self, seconds):
        time.sleep(max(0.0, min(seconds, self.remaining())))

    def check_collector_errors(self):
        for c in self._collectors:
            with c.lock:
                errors = list(c.errors)
            check(not errors, f"consumer callback of {c.name} failed:\n" + "\n".join(errors[:3]))

    def create_topic(self, producer, topic, tags=None):
        """Auto-create `topic` with a first send, wait for its route; queue count.

        The first send to an unknown topic goes through TBW102's route; the
        broker creates the topic (defaultTopicQueueNums = 4 from the C++
        client).  The message is a probe of round 0, ignored by collectors.
        """
        producer.send_to_queue(producer.message(topic, b"create", tags=tags, props={PROP_PROBE: "0:0"}), 0)
        routed = self.wait_for_route(topic)
        check(
            routed == producer.queue_count,
            f"route of {topic} has {routed} queues, the producer's view {producer.queue_count}",
        )
        return routed

    def wait_for_route(self, topic):
        """Wait (ROUTE_LIMIT_S at most) until the name server routes `topic`.

        Called after the first send auto-created the topic and before push
        consumers start: a consumer that starts without a route only retries
        every 30 s, which would turn a slow registration into a confusing
        barrier timeout.
        """
        if self._route_probe is None:
            # Instance "DEFAULT", never used by a producer: its factory only
            # caches routes it got from the name server for the topic itself.
            self._route_probe = self.pull_consumer(self.group("route_probe"))
        t = time.monotonic()
        found = []

        def routed():
            found[:] = fetch_queues(self, self._route_probe, topic)
            return bool(found)

        if not self.wait_until(routed, "route", limit=ROUTE_LIMIT_S, poll=0.1):
            raise ScenarioFailure(
                f"the name server had no route for {topic} {ROUTE_LIMIT_S:.0f}s after the broker "
                f"auto-created it on the first send (GET_ROUTEINFO_BY_TOPIC: {_latest_error()}); "
                "a Java broker registers a new topic with the name server immediately"
            )
        took = time.monotonic() - t
        self.log(f"route of {topic} visible after {took:.2f}s: {len(found)} queues")
        if took > 0.5:
            self.note(
                f"the name server routed the auto-created topic only after {took:.1f}s; a C++ "
                "consumer that starts in that window waits for its next 30 s route refresh"
            )
        return len(found)

    # -- barrier -----------------------------------------------------------

    def await_assignment(self, producer, topic, collectors, mode, probe_tag=None, round_wait=6.0):
        """Wait until the consumers own the topic's queues; returns the queue count.

        A C++ push consumer that has no stored offset starts either at the
        queue's max offset (broadcasting, or QUERY_NOT_FOUND) or at 0.  To make
        a scenario independent of that, and of rebalance timing, it first
        sends one probe message to *every* queue (ordered send with an
        explicit queue) and repeats that in rounds until one round shows the
        expected ownership:

        * mode "exclusive" (CLUSTERING): every queue's probe reached exactly
          one consumer and every consumer owns at least one queue (when there
          are at least as many queues as consumers) -- i.e. the group's
          rebalance has settled;
        * mode "all" (BROADCASTING): every consumer got every queue's probe.

        Messages sent afterwards are therefore consumed from the positions the
        consumers already hold.  Probes carry PROP_PROBE and are kept apart
        from scenario messages by the collectors.
        """
        check(mode in ("exclusive", "all"), f"bad mode {mode}")
        rnd = 0
        last = None
        while True:
            rnd += 1
            nq = producer.queue_count
            check(nq and nq > 0, "queue count unknown; send to the topic first")
            for q in range(nq):
                m = producer.message(topic, b"probe", tags=probe_tag, props={PROP_PROBE: f"{rnd}:{q}"})
                producer.send_to_queue(m, q)

            def seen():
                # queue -> set of collector names that got this round's probe
                owners = {q: set() for q in range(nq)}
                for c in collectors:
                    for r, q in c.probe_snapshot():
                        if r == rnd and q in owners:
                            owners[q].add(c.name)
                return owners

            def complete():
                owners = seen()
                if mode == "all":
                    return all(len(o) == len(collectors) for o in owners.values())
                return all(len(o) >= 1 for o in owners.values())

            got_all = self.wait_until(complete, "probes", limit=round_wait)
            if got_all and mode == "exclusive":
                # A short grace period so that a duplicate delivery of this
                # round's probes (two consumers both pulling a queue) shows up.
                self.sleep(0.3)
            owners = seen()
            last = owners
            if got_all:
                if mode == "all":
                    self.log(f"barrier: round {rnd}: all {len(collectors)} consumers own all {nq} queues")
                    return nq
                counts = {c.name: sum(1 for o in owners.values() if c.name in o) for c in collectors}
                exclusive = all(len(o) == 1 for o in owners.values())
                everyone = all(n >= 1 for n in counts.values()) or nq < len(collectors)
                if exclusive and everyone:
                    self.log(f"barrier: round {rnd}: settled, queues per consumer {counts}")
                    return nq
                self.log(f"barrier: round {rnd}: not settled yet, owners {_fmt_owners(owners)}")
            else:
                self.log(f"barrier: round {rnd}: probes missing after {round_wait}s, owners {_fmt_owners(owners)}")
            if self.remaining() < round_wait:
                raise ScenarioFailure(
                    f"consumers never owned the queues of {topic} as expected ({mode}); "
                    f"last round's probe owners: {_fmt_owners(last)}.  A push consumer only "
                    "receives after HEART_BEAT (34; C++ sends consumeType/messageModel/"
                    "consumeFromWhere as JSON numbers), GET_CONSUMER_LIST_BY_GROUP (38), "
                    "QUERY_CONSUMER_OFFSET (14) / GET_MAX_OFFSET (30), LOCK_BATCH_MQ (41, orderly) "
                    "and PULL_MESSAGE (11) all work -- the C++ client log names the failing step"
                )
            self.sleep(1.0)

    # -- end ---------------------------------------------------------------

    def finish(self, code):
        """Shut every client down (bounded) and exit the process with `code`.

        A shutdown that hangs is reported but does not change the verdict,
        which was reached before; the hard limit (faulthandler) is respected.
        """
        hard_end = self.t0 + self.timeout - 1.0
        clients = [(c.shutdown, "consumer") for c in reversed(self._consumers)]
        clients += [(p.raw.shutdown, "producer") for p in reversed(self._producers)]
        for fn, kind in clients:
            limit = min(15.0, hard_end - time.monotonic())
            if limit <= 0:
                self.note("no time left to shut the remaining clients down")
                break
            t = time.monotonic()
            if _bounded(fn, limit, f"{kind} shutdown"):
                self.log(f"{kind} shut down in {time.monotonic() - t:.1f}s")
            else:
                self.note(f"a {kind}'s shutdown did not return within {limit:.0f}s")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fmt_owners(owners):
    if not owners:
        return "{}"
    return "{" + ", ".join(f"q{q}: {sorted(o) or '-'}" for q, o in sorted(owners.items())) + "}"


def _bounded(fn, seconds, what):
    """Run fn in a daemon thread; False if it did not finish in time."""
    done = threading.Event()
    err = []

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported, not fatal
            err.append(e)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name=what).start()
    finished = done.wait(seconds)
    if err:
        print(f"{what} raised {err[0]!r}", file=sys.stderr, flush=True)
    return finished


class ScenarioProducer:
    """The wrapper's Producer plus ordered-to-queue and async helpers."""

    def __init__(self, scenario, group):
        self.scenario = scenario
        self.group = group
        self.raw = Producer(group)
        self.raw.set_namesrv_addr(scenario.namesrv)
        # Number of write queues of the last topic sent to with send_to_queue
        # (the C++ client passes it to the queue selector).
        self.queue_count = None
        self._async_refs = []
        self._async_lock = threading.Lock()

    @staticmethod
    def message(topic, body, tags=None, keys=None, props=None):
        m = Message(topic)
        if tags is not None:
            m.set_tags(tags)
        if keys is not None:
            m.set_keys(keys)
        if isinstance(body, str):
            body = body.encode()
        check(b"\x00" not in body, "scenario bodies must not contain NUL (GetMessageBody is a C string)")
        # SetByteMessageBody takes an explicit length (SetMessageBody would
        # strlen the buffer).
        status = dll.SetByteMessageBody(m._handle, body, len(body))
        check(status == 0, f"SetByteMessageBody returned {status}")
        for k, v in (props or {}).items():
            m.set_property(k, v)
        return m

    def send_sync(self, msg):
        res = self.raw.send_sync(msg)
        check(res.status == SendStatus.OK, f"send_sync status {res.status!r}")
        return res

    def _select(self, mq_size, _msg, arg):
        self.queue_count = mq_size
        return ctypes.cast(arg, POINTER(c_int))[0] % mq_size

    def send_to_queue(self, msg, queue):
        """Synchronous ordered send to queue `queue` (mod the queue count).

        No retries: librocketmq retries an ordered send on a *different*
        queue, which would silently break the queue/order checks.
        """
        res = self.raw.send_orderly(msg, queue, retry_times=0, queue_selector=self._select)
        check(res.status == SendStatus.OK, f"send_orderly status {res.status!r}")
        return res

    def send_async(self, msg, on_ok, on_error):
        """SendMessageAsync with a correct by-value success callback.

        on_ok(status, msg_id, offset) / on_error(text) run on a C++ thread.
        """

        def ok(res):
            try:
                on_ok(res.sendStatus, res.msgId.decode(errors="replace"), res.offset)
            except BaseException:
                traceback.print_exc()

        def err(exc):
            try:
                on_error(
                    f"error={exc.error} msg={exc.msg.decode(errors='replace')} "
                    f"file={exc.file.decode(errors='replace')}:{exc.line}"
                )
            except BaseException:
                traceback.print_exc()

        pair = (SEND_SUCCESS_BY_VALUE(ok), SEND_EXCEPTION_BY_VALUE(err))
        # The C++ side keeps only the raw function pointers: the ctypes
        # thunks must stay alive until called -- and must not be freed while
        # running, so they are simply kept for the life of the producer.
        with self._async_lock:
            self._async_refs.append(pair)
        status = _SendMessageAsync(self.raw._handle, msg._handle, pair[0], pair[1])
        if status != 0:
            raise ScenarioFailure(f"SendMessageAsync returned {status}: {_latest_error()}")


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ScenarioFailure("broker closed the admin connection")
        buf += chunk
    return buf


def _latest_error():
    msg = dll.GetLatestErrorMessage()
    return msg.decode(errors="replace") if msg else ""


# --------------------------------------------------------------------------
# Pull consumer calls (C API), bounded
# --------------------------------------------------------------------------

PULL_PROPS = (PROP_ID, PROP_PROBE, "n") + SYSTEM_PROPS


def fetch_queues(s, consumer, topic):
    """The topic's queues per the name server (one 105 request), or [].

    FetchSubscriptionMessageQueues asks the name server directly each time;
    the last error is available from _latest_error().
    """
    mqs = POINTER(_CMessageQueue)()
    size = c_int()
    status = dll.FetchSubscriptionMessageQueues(consumer._handle, topic.encode(), byref(mqs), byref(size))
    if status != 0:
        return []
    try:
        return [_CMessageQueue.from_buffer_copy(mqs[i]) for i in range(size.value)]
    finally:
        dll.ReleaseSubscriptionMessageQueue(mqs)


def pull_once(s, consumer, mq, offset, max_nums, expression="*"):
    """One Pull call; returns (status, next, min, max, [Received], seconds).

    The wrapper's PullConsumer.pull generator retries failed pulls forever;
    this is the same C call, once.  BROKER_TIMEOUT is how the C API reports
    any client-side error (exception in the C++ pull), so it fails the
    scenario with the library's last error message.
    """
    t = time.monotonic()
    res = dll.Pull(consumer._handle, ctypes.pointer(mq), expression.encode(), offset, max_nums)
    took = time.monotonic() - t
    msgs = []
    if res.pullStatus == _CPullStatus.FOUND:
        try:
            for i in range(res.size):
                msgs.append(Received.from_handle("pull", res.msgFoundList[i], PULL_PROPS))
        finally:
            dll.ReleasePullResult(res)
    status = _CPullStatus(res.pullStatus)
    if status == _CPullStatus.BROKER_TIMEOUT:
        raise ScenarioFailure(
            f"Pull q{mq.queueId}@{offset} failed after {took:.1f}s (BROKER_TIMEOUT = any client-side "
            f"error, e.g. an unexpected response code or no answer within 10 s): {_latest_error()}"
        )
    return status, res.nextBeginOffset, res.minOffset, res.maxOffset, msgs, took


def run(scenario, body):
    """Run `body(scenario)` under the hard time limit and exit with its verdict."""
    # Dump all Python stacks and exit(1) if the process is still alive at the
    # time limit (a C++ call that never returns, a lost callback, ...).
    faulthandler.enable()
    faulthandler.dump_traceback_later(scenario.timeout, exit=True)
    scenario.log(
        f"scenario {scenario.name}: namesrv={scenario.namesrv} timeout={scenario.timeout}s "
        f"python={sys.version.split()[0]} lib={library_path()}"
    )
    code = 0
    try:
        body(scenario)
        scenario.check_collector_errors()
    except ScenarioFailure as e:
        print(f"FAIL {scenario.name}: {e}", file=sys.stderr, flush=True)
        code = 1
    except Exception:  # noqa: BLE001 - any error is a failed scenario
        print(f"FAIL {scenario.name}: unexpected error", file=sys.stderr, flush=True)
        traceback.print_exc()
        code = 1
    else:
        scenario.log(f"PASS {scenario.name}")
    scenario.finish(code)
