//! A deadline that is cheap to check on every poll of a busy connection: the idle timeout of
//! a client connection, the upstream's response deadline of its requests, and hyper's
//! header-read timeout (lent to hyper from a pool by the server's `HeadTimer`).
//!
//! A [`Deadline`] keeps one tokio [`Sleep`] for as long as it lives. The sleep is moved only
//! when it fires early (the deadline was put off since it was set), rather than on every
//! read, write or request, so a busy connection does not touch tokio's timer wheel each time.
//! Nor is the sleep polled again while it is registered with the waker a poll brings and has
//! not fired: polling it would only register the same waker again (the coop budget, the
//! waker's compare-and-swap, the timer entry), some 400 instructions a request
//! (benches/README.md, History).

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep};

/// A sleep moved lazily and polled only when it could have fired.
#[derive(Debug)]
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    /// The waker `sleep` was last polled with, while it is registered with it.
    registered: Option<Waker>,
}

impl Deadline {
    /// A deadline whose sleep is first set for `at`.
    pub fn new(at: Instant) -> Deadline {
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            registered: None,
        }
    }

    /// `Ready` once `due` has passed; else `Pending`, with `cx`'s task woken by then (or
    /// earlier, if the sleep was set for an earlier time: a later poll moves it).
    ///
    /// `due` may be later than any time given before, never earlier than the sleep's own
    /// deadline unless it has passed: the sleep is moved only forward, when it fires.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>, due: Instant) -> Poll<()> {
        if let Some(waker) = &self.registered
            && waker.will_wake(cx.waker())
            && !self.sleep.is_elapsed()
        {
            return Poll::Pending;
        }
        while self.sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            // Put off since the sleep was set: move it and poll it again, so that it is
            // registered to wake this task.
            self.sleep.as_mut().reset(due);
        }
        if !self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The time the sleep is set for: no later than any `due` it was polled with since it
    /// last fired.
    pub fn set_for(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Lets go of the waker kept for the fast path, for a deadline put aside (a waker keeps
    /// its task's memory alive). tokio's own timer entry keeps it until the sleep fires.
    pub fn forget_waker(&mut self) {
        self.registered = None;
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
