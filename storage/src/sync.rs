//! Shard-local wait primitives for group commit. Everything here lives on
//! one executor (`Rc`/`Cell`, `!Send`): the flusher advances a watermark,
//! appenders wait for it; appenders kick the flusher through a signal.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A monotonically advancing offset that tasks can wait on, each with a
/// deadline, or a terminal failure that releases every waiter with the
/// reason. Deadlines are enforced by whoever calls `expire` periodically,
/// so a waiting append costs no timer of its own.
#[derive(Default)]
pub struct Watermark {
    value: Cell<u64>,
    failed: RefCell<Option<String>>,
    waiters: RefCell<Vec<Waiter>>,
}

struct Waiter {
    target: u64,
    deadline: Instant,
    waker: Waker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    Failed(String),
    TimedOut,
}

impl Watermark {
    pub fn new(value: u64) -> Self {
        Watermark {
            value: Cell::new(value),
            ..Default::default()
        }
    }

    pub fn get(&self) -> u64 {
        self.value.get()
    }

    pub fn advance(&self, to: u64) {
        debug_assert!(to >= self.value.get(), "watermark moved backwards");
        self.value.set(to);
        self.wake_where(|w| w.target <= to);
    }

    /// Wakes waiters whose deadline has passed; they return `TimedOut`.
    pub fn expire(&self, now: Instant) {
        self.wake_where(|w| w.deadline <= now);
    }

    fn wake_where(&self, ready: impl Fn(&Waiter) -> bool) {
        let woken: Vec<Waker> = {
            let mut waiters = self.waiters.borrow_mut();
            let mut woken = Vec::new();
            waiters.retain(|w| {
                if ready(w) {
                    woken.push(w.waker.clone());
                    false
                } else {
                    true
                }
            });
            woken
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Sets the value without waking anyone (recovery, before any waiter exists).
    pub fn reset(&self, to: u64) {
        self.value.set(to);
    }

    pub fn fail(&self, why: String) {
        *self.failed.borrow_mut() = Some(why);
        self.wake_where(|_| true);
    }

    /// True while some task waits for a value above the current one.
    pub fn has_waiters(&self) -> bool {
        let v = self.value.get();
        self.waiters.borrow().iter().any(|w| w.target > v)
    }

    pub fn wait_for(&self, target: u64, deadline: Instant) -> WaitFor<'_> {
        WaitFor {
            mark: self,
            target,
            deadline,
        }
    }
}

pub struct WaitFor<'a> {
    mark: &'a Watermark,
    target: u64,
    deadline: Instant,
}

impl Future for WaitFor<'_> {
    type Output = Result<(), WaitError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.mark.value.get() >= self.target {
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = self.mark.failed.borrow().as_ref() {
            return Poll::Ready(Err(WaitError::Failed(why.clone())));
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(Err(WaitError::TimedOut));
        }
        // Woken waiters are removed from the list, so a poll after a wake
        // registers afresh; a spurious poll at worst leaves a duplicate
        // that the next advance or expiry clears.
        self.mark.waiters.borrow_mut().push(Waiter {
            target: self.target,
            deadline: self.deadline,
            waker: cx.waker().clone(),
        });
        Poll::Pending
    }
}

/// A level-triggered wake-up for one waiting task (the flusher).
#[derive(Default)]
pub struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn raise(&self) {
        self.raised.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn wait(&self) -> SignalWait<'_> {
        SignalWait { signal: self }
    }

    /// Consumes a raise that has already happened, without waiting.
    pub fn take(&self) -> bool {
        self.raised.replace(false)
    }
}

pub struct SignalWait<'a> {
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
