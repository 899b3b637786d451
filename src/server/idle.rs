//! An IO wrapper that fails a connection once it has moved no bytes for a while, so idle
//! keep-alive and HTTP/2 connections do not pile up.
//!
//! Activity only records the time (cheap); the timer is a [`Deadline`], moved lazily and
//! polled only when it could have fired, so a busy connection does not touch the timer on
//! every read and write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::deadline::Deadline;

/// `inner`, closed with `TimedOut` after `idle` without a byte read or written.
pub struct IdleTimeout<T> {
    inner: T,
    idle: Duration,
    last_activity: Instant,
    deadline: Deadline,
}

impl<T> IdleTimeout<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, idle: Duration) -> IdleTimeout<T> {
        let now = Instant::now();
        IdleTimeout {
            inner,
            idle,
            last_activity: now,
            deadline: Deadline::new(now + idle),
        }
    }

    /// `Pending` stays pending unless `idle` has passed since the last activity.
    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.last_activity = Instant::now();
            return poll;
        }
        match self
            .deadline
            .poll_passed(cx, self.last_activity + self.idle)
        {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.check(cx, poll)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf};

    use super::IdleTimeout;
    use crate::deadline::testing::{counted, pass};

    const IDLE: Duration = Duration::from_secs(10);

    fn poll_read(stream: &mut IdleTimeout<DuplexStream>, waker: &Waker) -> Poll<io::Result<()>> {
        let mut bytes = [0u8; 16];
        let mut buf = ReadBuf::new(&mut bytes);
        Pin::new(stream).poll_read(&mut Context::from_waker(waker), &mut buf)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_byte_for_the_idle_time_fails_with_timed_out() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut stream = IdleTimeout::new(ours, IDLE);
        let (wakes, waker) = counted();
        assert!(poll_read(&mut stream, &waker).is_pending());
        // Polled again with the same waker before the time: still pending, not woken.
        pass(IDLE / 2).await;
        assert!(poll_read(&mut stream, &waker).is_pending());
        assert_eq!(wakes.wakes(), 0);
        pass(IDLE / 2 + Duration::from_millis(1)).await;
        assert_eq!(wakes.wakes(), 1, "the task is woken when idle");
        match poll_read(&mut stream, &waker) {
            Poll::Ready(Err(error)) => assert_eq!(error.kind(), io::ErrorKind::TimedOut),
            other => panic!("expected TimedOut, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_moved_puts_the_idle_time_off_from_then() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut stream = IdleTimeout::new(ours, IDLE);
        let (_, waker) = counted();
        assert!(poll_read(&mut stream, &waker).is_pending());
        pass(IDLE - Duration::from_secs(1)).await;
        theirs.write_all(b"x").await.unwrap();
        assert!(matches!(
            poll_read(&mut stream, &waker),
            Poll::Ready(Ok(()))
        ));
        assert!(poll_read(&mut stream, &waker).is_pending());
        // Past the first deadline: the timer fires early, is moved, and the read stays pending.
        pass(Duration::from_secs(2)).await;
        assert!(poll_read(&mut stream, &waker).is_pending());
        pass(IDLE).await;
        assert!(matches!(
            poll_read(&mut stream, &waker),
            Poll::Ready(Err(_))
        ));
    }
}
