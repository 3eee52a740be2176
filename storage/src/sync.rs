//! Shard-local wait primitives for group commit. Everything here lives on
//! one executor (`Rc`/`Cell`, `!Send`): the flusher advances a watermark,
//! appenders wait for it; appenders kick the flusher through a signal.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A monotonically advancing offset that tasks can wait on, or a terminal
/// failure that releases every waiter with the reason.
#[derive(Default)]
pub(crate) struct Watermark {
    value: Cell<u64>,
    failed: RefCell<Option<String>>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl Watermark {
    pub(crate) fn new(value: u64) -> Self {
        Watermark {
            value: Cell::new(value),
            ..Default::default()
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.get()
    }

    pub(crate) fn advance(&self, to: u64) {
        debug_assert!(to >= self.value.get(), "watermark moved backwards");
        self.value.set(to);
        let ready: Vec<Waker> = {
            let mut w = self.waiters.borrow_mut();
            let mut ready = Vec::new();
            w.retain(|(target, waker)| {
                if *target <= to {
                    ready.push(waker.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        ready.into_iter().for_each(Waker::wake);
    }

    /// Sets the value without waking anyone (recovery, before any waiter exists).
    pub(crate) fn reset(&self, to: u64) {
        self.value.set(to);
    }

    pub(crate) fn fail(&self, why: String) {
        *self.failed.borrow_mut() = Some(why);
        let all: Vec<(u64, Waker)> = std::mem::take(&mut *self.waiters.borrow_mut());
        all.into_iter().for_each(|(_, w)| w.wake());
    }

    /// True while some task waits for a value above the current one.
    pub(crate) fn has_waiters(&self) -> bool {
        let v = self.value.get();
        self.waiters.borrow().iter().any(|(t, _)| *t > v)
    }

    pub(crate) fn wait_for(&self, target: u64) -> WaitFor<'_> {
        WaitFor { mark: self, target }
    }
}

pub(crate) struct WaitFor<'a> {
    mark: &'a Watermark,
    target: u64,
}

impl Future for WaitFor<'_> {
    type Output = Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.mark.value.get() >= self.target {
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = self.mark.failed.borrow().as_ref() {
            return Poll::Ready(Err(why.clone()));
        }
        let mut waiters = self.mark.waiters.borrow_mut();
        match waiters
            .iter_mut()
            .find(|(t, w)| *t == self.target && w.will_wake(cx.waker()))
        {
            Some(_) => {}
            None => waiters.push((self.target, cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// A level-triggered wake-up for one waiting task (the flusher).
#[derive(Default)]
pub(crate) struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub(crate) fn raise(&self) {
        self.raised.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn wait(&self) -> SignalWait<'_> {
        SignalWait { signal: self }
    }
}

pub(crate) struct SignalWait<'a> {
    signal: &'a Signal,
}

impl Future for SignalWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.raised.replace(false) {
            return Poll::Ready(());
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
