use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::rt::{Sleep, Timer};
use tokio::time::Instant;

use super::{HeadTimer, POOL_SIZE, pooled};
use crate::deadline::testing::{counted, pass};

const SECOND: Duration = Duration::from_secs(1);
const JUST_OVER: Duration = Duration::from_millis(1);

fn sleep_for(timer: &HeadTimer, duration: Duration) -> Pin<Box<dyn Sleep>> {
    timer.sleep_until((Instant::now() + duration).into_std())
}

fn poll(sleep: &mut Pin<Box<dyn Sleep>>, waker: &Waker) -> Poll<()> {
    sleep.as_mut().poll(&mut Context::from_waker(waker))
}

#[tokio::test(start_paused = true)]
async fn a_head_sleep_wakes_its_task_and_is_ready_once_its_time_passed() {
    let timer = HeadTimer::new();
    let mut sleep = sleep_for(&timer, 10 * SECOND);
    let (counter, waker) = counted();
    assert!(poll(&mut sleep, &waker).is_pending());
    pass(10 * SECOND - JUST_OVER).await;
    assert!(poll(&mut sleep, &waker).is_pending());
    assert_eq!(counter.wakes(), 0);
    pass(2 * JUST_OVER).await;
    assert_eq!(counter.wakes(), 1, "woken when due");
    assert!(poll(&mut sleep, &waker).is_ready());
}

#[tokio::test(start_paused = true)]
async fn a_sleep_dropped_is_lent_again_and_moved_to_its_new_time() {
    let timer = HeadTimer::new();
    let mut first = sleep_for(&timer, 10 * SECOND);
    let (first_counter, first_waker) = counted();
    assert!(poll(&mut first, &first_waker).is_pending());
    drop(first);
    assert_eq!(pooled(&timer), 1, "kept by the thread");
    pass(5 * SECOND).await;
    // Due 15 s from the start; the sleep lent is still set for 10 s.
    let mut second = sleep_for(&timer, 10 * SECOND);
    assert_eq!(pooled(&timer), 0, "lent again");
    let (second_counter, second_waker) = counted();
    assert!(poll(&mut second, &second_waker).is_pending());
    pass(5 * SECOND + JUST_OVER).await;
    assert_eq!(
        second_counter.wakes(),
        1,
        "the sleep fires at its earlier time"
    );
    assert!(
        poll(&mut second, &second_waker).is_pending(),
        "moved, not passed"
    );
    pass(5 * SECOND - 2 * JUST_OVER).await;
    assert!(poll(&mut second, &second_waker).is_pending());
    pass(2 * JUST_OVER).await;
    assert_eq!(second_counter.wakes(), 2, "woken at the new time");
    assert!(poll(&mut second, &second_waker).is_ready());
    assert_eq!(
        first_counter.wakes(),
        0,
        "the first task is not woken once the sleep was polled for the second"
    );
}

#[tokio::test(start_paused = true)]
async fn an_earlier_time_than_the_pooled_sleeps_gets_a_sleep_of_its_own() {
    let timer = HeadTimer::new();
    drop(sleep_for(&timer, 10 * SECOND));
    assert_eq!(pooled(&timer), 1);
    let mut sooner = sleep_for(&timer, SECOND);
    let (counter, waker) = counted();
    assert!(poll(&mut sooner, &waker).is_pending());
    pass(SECOND + JUST_OVER).await;
    assert_eq!(
        counter.wakes(),
        1,
        "woken at its own time, not the pooled 10 s"
    );
    assert!(poll(&mut sooner, &waker).is_ready());
}

#[tokio::test(start_paused = true)]
async fn one_timers_sleeps_are_not_lent_to_another() {
    let ours = HeadTimer::new();
    let theirs = HeadTimer::new();
    drop(sleep_for(&ours, 10 * SECOND));
    let theirs_sleep = sleep_for(&theirs, 10 * SECOND);
    assert_eq!(pooled(&ours), 1, "not lent to the other timer");
    drop(theirs_sleep);
    assert_eq!(pooled(&theirs), 1);
    assert_eq!(pooled(&ours), 0, "the thread keeps one timer's only");
}

#[tokio::test(start_paused = true)]
async fn a_thread_keeps_at_most_pool_size_sleeps() {
    let timer = HeadTimer::new();
    let sleeps: Vec<_> = (0..POOL_SIZE + 10)
        .map(|_| sleep_for(&timer, 10 * SECOND))
        .collect();
    drop(sleeps);
    assert_eq!(pooled(&timer), POOL_SIZE);
}

#[tokio::test(start_paused = true)]
async fn a_pooled_sleep_lets_its_last_task_go_once_its_time_passed() {
    let timer = HeadTimer::new();
    let mut sleep = sleep_for(&timer, 10 * SECOND);
    let (counter, waker) = counted();
    assert!(poll(&mut sleep, &waker).is_pending());
    drop(waker);
    drop(sleep);
    pass(10 * SECOND + JUST_OVER).await;
    assert_eq!(counter.wakes(), 1, "woken once, for nothing");
    assert_eq!(
        Arc::strong_count(&counter),
        1,
        "no waker kept by the pool: a connection gone is not kept in memory"
    );
}
