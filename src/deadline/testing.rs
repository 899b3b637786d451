//! What the timer tests share: a waker that counts its wakes, and time passed in paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::Duration;

/// A waker that counts its wakes.
#[derive(Default)]
pub struct Counted(AtomicUsize);

impl Counted {
    /// How many times a waker of this counter was woken.
    pub fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Counted {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counter and a waker that counts into it.
pub fn counted() -> (Arc<Counted>, Waker) {
    let counter = Arc::new(Counted::default());
    (counter.clone(), Waker::from(counter))
}

/// Lets the timer driver run, in paused time.
pub async fn pass(duration: Duration) {
    tokio::time::advance(duration).await;
    tokio::task::yield_now().await;
}
