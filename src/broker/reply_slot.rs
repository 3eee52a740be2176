//! A one-shot slot for the reply to a forwarded request. Shard-local.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::remoting::RemotingCommand;

/// How a forwarded request ended.
pub enum Outcome {
    /// The owner answered (`None`: a oneway request, or no answer due).
    Reply(Option<RemotingCommand>),
    /// The owner did not answer before the deadline.
    TimedOut,
    /// The owner's inbox is gone: it is shutting down.
    Undelivered,
}

pub struct ReplySlot {
    /// When the forwarding shard stops waiting (swept, not a timer each).
    pub deadline: Instant,
    value: RefCell<Option<Outcome>>,
    waker: RefCell<Option<Waker>>,
}

impl ReplySlot {
    pub fn new(deadline: Instant) -> ReplySlot {
        ReplySlot {
            deadline,
            value: RefCell::new(None),
            waker: RefCell::new(None),
        }
    }

    pub fn fill(&self, outcome: Outcome) {
        *self.value.borrow_mut() = Some(outcome);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn wait(self: &Rc<Self>) -> WaitReply {
        WaitReply { slot: self.clone() }
    }
}

pub struct WaitReply {
    slot: Rc<ReplySlot>,
}

impl Future for WaitReply {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(v) = self.slot.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
