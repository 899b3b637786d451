//! hyper's HTTP/1.1 header-read timer, with its sleeps kept from one request to the next.
//!
//! hyper asks its timer for a new sleep each time a connection starts waiting for a request's
//! head, polls it while the head is incomplete, and drops it once the head is read. With
//! hyper-util's `TokioTimer` that is a tokio timer entry made, put into the timer wheel and
//! taken out again for every request. [`HeadTimer`] lends hyper a [`Deadline`] from a small
//! pool kept by each thread instead, and takes it back when hyper drops it: the deadline's
//! sleep stays in the wheel, set for an earlier request's time, and like the idle timeout's
//! it is moved only when it fires early.
//!
//! A pool belongs to one timer, so to one server and the runtime it runs on: a sleep is never
//! lent to another runtime's connections. A pooled deadline keeps no waker of its own; tokio's
//! entry keeps the last one until the sleep fires, so a connection that has gone may be woken
//! once more, for nothing, within a header timeout.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant;

use crate::deadline::Deadline;

/// At most this many deadlines are kept by a thread; one more is dropped (taken out of the
/// wheel) instead. A connection holds one only while it waits for a head, so under load a
/// thread keeps about as many as it has connections between two requests.
const POOL_SIZE: usize = 256;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { owner: 0, deadlines: Vec::new() }) };
}

/// The timer hyper's HTTP/1.1 connections time request heads with.
#[derive(Debug)]
pub struct HeadTimer {
    /// Tells this timer's pooled deadlines from another's on the same thread.
    id: u64,
}

impl HeadTimer {
    /// A timer with pools of its own.
    pub fn new() -> HeadTimer {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        HeadTimer {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Default for HeadTimer {
    fn default() -> HeadTimer {
        HeadTimer::new()
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: StdInstant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let due = Instant::from_std(deadline);
        let deadline = POOL
            .with_borrow_mut(|pool| pool.take(self.id, due))
            .unwrap_or_else(|| Deadline::new(due));
        Box::pin(HeadSleep {
            owner: self.id,
            due,
            deadline: Some(deadline),
        })
    }

    fn now(&self) -> StdInstant {
        // tokio's clock, so that paused time in tests moves hyper's timeouts too.
        Instant::now().into_std()
    }
}

/// A thread's deadlines not lent out, all made by the timer `owner`.
struct Pool {
    owner: u64,
    deadlines: Vec<Deadline>,
}

impl Pool {
    /// A deadline of `owner`'s whose sleep is set no later than `due`, if one is kept.
    fn take(&mut self, owner: u64, due: Instant) -> Option<Deadline> {
        if self.owner != owner {
            return None;
        }
        // A later time only if some other timeout than the usual one was asked for: a
        // deadline must never be polled for a time earlier than its sleep's.
        self.deadlines
            .pop()
            .filter(|deadline| deadline.set_for() <= due)
    }

    fn put(&mut self, owner: u64, mut deadline: Deadline) {
        if self.owner != owner {
            // Another server's (a test's, or one started again): theirs go.
            self.deadlines.clear();
            self.owner = owner;
        }
        if self.deadlines.len() < POOL_SIZE {
            deadline.forget_waker();
            self.deadlines.push(deadline);
        }
    }
}

/// How many deadlines this thread keeps for `timer`.
#[cfg(test)]
fn pooled(timer: &HeadTimer) -> usize {
    POOL.with_borrow(|pool| {
        if pool.owner == timer.id {
            pool.deadlines.len()
        } else {
            0
        }
    })
}

/// A pooled deadline lent to hyper until it drops it.
struct HeadSleep {
    owner: u64,
    due: Instant,
    /// `None` only once dropped.
    deadline: Option<Deadline>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let due = this.due;
        this.deadline
            .as_mut()
            .expect("a head sleep holds its deadline until dropped")
            .poll_passed(cx, due)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        if let Some(deadline) = self.deadline.take() {
            // At a thread's exit its pool may be gone before the last connections: the
            // deadline is then simply dropped.
            let _ = POOL.try_with(|pool| pool.borrow_mut().put(self.owner, deadline));
        }
    }
}

#[cfg(test)]
mod tests;
