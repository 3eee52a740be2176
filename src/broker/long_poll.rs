//! Held pulls ("long polling", spec §8.3) of the queues one shard owns. A
//! pull that finds nothing waits here until a message is appended to its
//! queue or its hold time ends. Shard-local.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Default)]
struct Slot {
    woken: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// Held pulls of one topic, by queue id.
type QueueSlots = HashMap<i32, Vec<Rc<Slot>>>;

#[derive(Default)]
pub struct LongPolls {
    waiting: RefCell<HashMap<String, QueueSlots>>,
    held: Cell<usize>,
}

impl LongPolls {
    /// Waits for an append to (topic, queue_id) or until `hold` passes.
    /// True when woken by an append.
    pub async fn wait(&self, topic: &str, queue_id: i32, hold: Duration) -> bool {
        let slot = Rc::new(Slot::default());
        self.waiting
            .borrow_mut()
            .entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_default()
            .push(slot.clone());
        self.held.set(self.held.get() + 1);
        let woken = glommio::timer::timeout(hold, async {
            WaitSlot { slot: &slot }.await;
            Ok(())
        })
        .await
        .is_ok();
        self.held.set(self.held.get().saturating_sub(1));
        if !woken {
            self.remove(topic, queue_id, &slot);
        }
        woken
    }

    fn remove(&self, topic: &str, queue_id: i32, slot: &Rc<Slot>) {
        let mut waiting = self.waiting.borrow_mut();
        if let Some(queues) = waiting.get_mut(topic) {
            if let Some(v) = queues.get_mut(&queue_id) {
                v.retain(|s| !Rc::ptr_eq(s, slot));
                if v.is_empty() {
                    queues.remove(&queue_id);
                }
            }
            if queues.is_empty() {
                waiting.remove(topic);
            }
        }
    }

    /// A message was appended to (topic, queue_id): wake its held pulls.
    pub fn notify(&self, topic: &str, queue_id: i32) {
        if self.held.get() == 0 {
            return;
        }
        let slots = {
            let mut waiting = self.waiting.borrow_mut();
            let Some(queues) = waiting.get_mut(topic) else {
                return;
            };
            let slots = queues.remove(&queue_id);
            if queues.is_empty() {
                waiting.remove(topic);
            }
            slots
        };
        for s in slots.into_iter().flatten() {
            s.woken.set(true);
            if let Some(w) = s.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub fn held(&self) -> usize {
        self.held.get()
    }
}

struct WaitSlot<'a> {
    slot: &'a Rc<Slot>,
}

impl Future for WaitSlot<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.woken.get() {
            return Poll::Ready(());
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
