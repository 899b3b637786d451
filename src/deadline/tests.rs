use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::Deadline;
use super::testing::{counted, pass};

const SECOND: Duration = Duration::from_secs(1);

fn poll(deadline: &mut Deadline, waker: &Waker, due: Instant) -> Poll<()> {
    deadline.poll_passed(&mut Context::from_waker(waker), due)
}

#[tokio::test(start_paused = true)]
async fn a_deadline_wakes_its_task_and_is_ready_once_passed() {
    let due = Instant::now() + 10 * SECOND;
    let mut deadline = Deadline::new(due);
    let (counter, waker) = counted();
    assert!(poll(&mut deadline, &waker, due).is_pending());
    pass(5 * SECOND).await;
    // Polled again with the same waker before the time: pending, nobody woken.
    assert!(poll(&mut deadline, &waker, due).is_pending());
    assert_eq!(counter.wakes(), 0);
    pass(5 * SECOND + Duration::from_millis(1)).await;
    assert_eq!(counter.wakes(), 1, "woken when due");
    assert!(poll(&mut deadline, &waker, due).is_ready());
    assert!(
        poll(&mut deadline, &waker, due).is_ready(),
        "and stays ready"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_put_off_fires_early_and_is_moved() {
    let first = Instant::now() + 10 * SECOND;
    let mut deadline = Deadline::new(first);
    let (counter, waker) = counted();
    assert!(poll(&mut deadline, &waker, first).is_pending());
    let later = first + 10 * SECOND;
    pass(10 * SECOND + Duration::from_millis(1)).await;
    assert_eq!(counter.wakes(), 1, "the sleep fires at its first time");
    assert!(
        poll(&mut deadline, &waker, later).is_pending(),
        "moved, not passed"
    );
    pass(5 * SECOND).await;
    assert!(poll(&mut deadline, &waker, later).is_pending());
    assert_eq!(counter.wakes(), 1);
    pass(5 * SECOND).await;
    assert_eq!(counter.wakes(), 2, "woken at the later time");
    assert!(poll(&mut deadline, &waker, later).is_ready());
}

#[tokio::test(start_paused = true)]
async fn the_last_waker_polled_with_is_the_one_woken() {
    let due = Instant::now() + 10 * SECOND;
    let mut deadline = Deadline::new(due);
    let (first_counter, first) = counted();
    let (second_counter, second) = counted();
    assert!(poll(&mut deadline, &first, due).is_pending());
    assert!(poll(&mut deadline, &second, due).is_pending());
    pass(10 * SECOND + Duration::from_millis(1)).await;
    assert_eq!(second_counter.wakes(), 1);
    assert_eq!(first_counter.wakes(), 0);
}
