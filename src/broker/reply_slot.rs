//! A one-shot slot for the reply to a forwarded request. Shard-local.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::remoting::RemotingCommand;

#[derive(Default)]
pub struct ReplySlot {
    value: RefCell<Option<Option<RemotingCommand>>>,
    waker: RefCell<Option<Waker>>,
}

impl ReplySlot {
    pub fn fill(&self, cmd: Option<RemotingCommand>) {
        *self.value.borrow_mut() = Some(cmd);
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
    type Output = Option<RemotingCommand>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(v) = self.slot.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
