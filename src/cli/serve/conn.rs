//! Connections: how many may be open, and how long a client may take to send headers, to
//! start its next request, or to read a response.
//!
//! `axum::serve` has none of these limits, so this is its accept loop with them: hyper's
//! HTTP/1.1 connection per socket, and a table of open connections. At `--max-connections` a
//! new connection closes the one that has been idle longest (no request in progress: a
//! keep-alive connection between requests, or one still trickling its headers); only when every
//! connection is in the middle of a request is the new one refused. Requests in progress are
//! bounded by `--max-requests` (scoring) and are quick otherwise, so `/healthz` and `/metrics`
//! still get a connection however many idle ones a client opens. (Reserving connections for
//! them is not possible: the path is known only after a connection is accepted and read.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, watch};

use super::metrics::{Closed, ConnMetrics};

/// The connection limits of `serve`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
}

/// Milliseconds since the server started, plus one, so that 0 can mean "not set".
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
        self.0.elapsed().as_millis() as u64 + 1
    }

    fn instant(self, ms: u64) -> tokio::time::Instant {
        (self.0 + Duration::from_millis(ms.saturating_sub(1))).into()
    }
}

/// One open connection, as its task, its reader and its requests see it.
struct Conn {
    id: u64,
    clock: Clock,
    /// Requests between their headers being read and their response body being handed to
    /// hyper (0 or 1).
    busy: AtomicUsize,
    /// hyper has written to the socket since it last flushed: the end of a response may still
    /// be on its way.
    unflushed: AtomicBool,
    /// When the connection last became idle (opened, or a response sent).
    idle_since: AtomicU64,
    /// When the first byte of the next request's headers arrived, while idle (0: none yet).
    head_started: AtomicU64,
    /// When the current response started being sent (0: not yet).
    sending_since: AtomicU64,
    /// Chosen to make room at the connection limit.
    evicted: AtomicBool,
    /// Wakes the connection's task when any of the above changes.
    wake: Notify,
}

impl Conn {
    /// In the middle of a request, or of sending its response.
    fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0 || self.unflushed.load(Ordering::Acquire)
    }

    /// The next time the connection must be closed at, and why; `None` while a request is
    /// being read or scored (the body timeout and the job limit bound those).
    fn deadline(&self, l: &ConnLimits) -> Option<(u64, Closed)> {
        let ms = |d: Duration| d.as_millis() as u64;
        if self.busy() {
            let s = self.sending_since.load(Ordering::Acquire);
            return (s != 0).then(|| (s + ms(l.send_timeout), Closed::SendTimeout));
        }
        let h = self.head_started.load(Ordering::Acquire);
        if h != 0 {
            return Some((h + ms(l.header_timeout), Closed::HeaderTimeout));
        }
        let i = self.idle_since.load(Ordering::Acquire);
        Some((i + ms(l.idle_timeout), Closed::IdleTimeout))
    }

    /// A request's headers were read: the connection is busy until the guard is dropped.
    fn begin(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.sending_since.store(0, Ordering::Release);
        self.wake.notify_one();
        BusyGuard(self.clone())
    }
}

/// Held by a request and then by its response body, until the response has been sent.
pub(super) struct BusyGuard(Arc<Conn>);

impl BusyGuard {
    fn sending(&self) {
        let c = &self.0;
        if c.sending_since.load(Ordering::Acquire) == 0 {
            c.sending_since.store(c.clock.now(), Ordering::Release);
            c.wake.notify_one();
        }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        // The send timeout runs on until hyper has flushed the response (from now, if its body
        // was never asked for).
        let c = &self.0;
        if c.sending_since.load(Ordering::Acquire) == 0 {
            c.sending_since.store(c.clock.now(), Ordering::Release);
        }
        c.head_started.store(0, Ordering::Release);
        c.idle_since.store(c.clock.now(), Ordering::Release);
        c.busy.fetch_sub(1, Ordering::AcqRel);
        c.wake.notify_one();
    }
}

/// The open connections.
#[derive(Default)]
struct Table {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn open(&self, clock: Clock) -> Arc<Conn> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            clock,
            busy: AtomicUsize::new(0),
            unflushed: AtomicBool::new(false),
            idle_since: AtomicU64::new(clock.now()),
            head_started: AtomicU64::new(0),
            sending_since: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        self.lock().insert(id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Takes the connection idle the longest out of the table and tells it to close; false
    /// when every connection is in the middle of a request.
    fn evict_oldest_idle(&self) -> bool {
        let mut conns = self.lock();
        let oldest = conns
            .values()
            .filter(|c| !c.busy())
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
            .map(|c| c.id);
        match oldest.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.evicted.store(true, Ordering::Release);
                c.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Accepts connections until `shutdown` resolves, then lets requests in progress finish.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    metrics: ConnMetrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let clock = Clock(Instant::now());
    let table = Arc::new(Table::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all have ended.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    // Said once per run of failures, not 20 times a second.
    let mut accept_failing = false;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    accept_failing = false;
                    stream
                }
                Err(e) => {
                    // Out of file descriptors (or another transient error): pause instead of
                    // spinning; open connections still close and free theirs.
                    if !accept_failing {
                        tracing::warn!("cannot accept a connection: {e}");
                        accept_failing = true;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if table.len() >= limits.max_connections {
            if table.evict_oldest_idle() {
                metrics.closed(Closed::Evicted);
            } else {
                metrics.closed(Closed::Refused);
                // Counted in /metrics; a log line per refusal would be a flood.
                tracing::debug!(
                    max_connections = limits.max_connections,
                    "connection refused: every connection is busy with a request"
                );
                drop(stream);
                continue;
            }
        }
        let conn = table.open(clock);
        tokio::spawn(connection(
            stream,
            conn,
            table.clone(),
            router.clone(),
            limits,
            metrics.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    table: Arc<Table>,
    router: Router,
    limits: ConnLimits,
    metrics: ConnMetrics,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    metrics.open.inc();
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let busy = conn.begin();
            let mut router = router.clone();
            async move {
                let resp = tower_service::Service::call(&mut router, req).await?;
                Ok::<_, Infallible>(resp.map(|b| Body::new(Guarded::busy(b, busy))))
            }
        })
    };
    let mut builder = http1::Builder::new();
    // hyper's own header timer runs from the moment it waits for a request, idle time
    // included: set past both of ours, it only backs them up.
    builder.timer(TokioTimer::new()).header_read_timeout(
        limits.idle_timeout.max(limits.header_timeout) + Duration::from_secs(1),
    );
    let c = builder.serve_connection(io, service);
    tokio::pin!(c);
    let mut draining = false;
    let closed = loop {
        let deadline = conn.deadline(&limits);
        let sleep = async {
            match deadline {
                Some((ms, _)) => tokio::time::sleep_until(conn.clock.instant(ms)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = c.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("connection ended: {e}");
                }
                break None;
            }
            () = sleep => {
                if let Some((ms, why)) = conn.deadline(&limits)
                    && conn.clock.now() >= ms {
                        break Some(why);
                    }
            }
            () = conn.wake.notified() => {
                if conn.evicted.load(Ordering::Acquire) && !draining {
                    if !conn.busy() {
                        break Some(Closed::Evicted);
                    }
                    // A request started just as it was chosen: finish it, then close.
                    c.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
            _ = stop.changed(), if !draining => {
                if !conn.busy() {
                    break None;
                }
                c.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    };
    // Evictions were counted when chosen; the rest are counted here.
    if let Some(why) = closed.filter(|w| *w != Closed::Evicted) {
        metrics.closed(why);
        tracing::debug!(reason = ?why, "connection closed");
    }
    table.remove(conn.id);
    metrics.open.dec();
}

/// The socket, noting when a request's first bytes arrive on an idle connection (the header
/// timeout runs from then; the idle timeout before), and whether hyper has flushed what it
/// wrote (a connection is not idle, and not closed for being idle, before that).
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let c = &self.conn;
        if buf.filled().len() > before && !c.busy() && c.head_started.load(Ordering::Acquire) == 0 {
            c.head_started.store(c.clock.now(), Ordering::Release);
            c.wake.notify_one();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.conn.unflushed.store(true, Ordering::Release);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.conn.unflushed.store(true, Ordering::Release);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        // hyper flushes once its buffer is written out: all it wrote is in the kernel.
        let c = &self.conn;
        if matches!(r, Poll::Ready(Ok(()))) && c.unflushed.swap(false, Ordering::AcqRel) {
            if c.busy.load(Ordering::Acquire) == 0 {
                c.sending_since.store(0, Ordering::Release);
                c.idle_since.store(c.clock.now(), Ordering::Release);
            }
            c.wake.notify_one();
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that holds what its request held (the connection's busy mark, a score
/// request permit) until it has been sent or dropped: a response waiting for a slow reader
/// still counts against the limits, so unread responses cannot pile up in memory.
pub(super) struct Guarded {
    inner: Body,
    busy: Option<BusyGuard>,
    _permit: Option<OwnedSemaphorePermit>,
    started: bool,
}

impl Guarded {
    fn busy(inner: Body, busy: BusyGuard) -> Self {
        Guarded {
            inner,
            busy: Some(busy),
            _permit: None,
            started: false,
        }
    }

    pub fn permit(inner: Body, permit: OwnedSemaphorePermit) -> Body {
        Body::new(Guarded {
            inner,
            busy: None,
            _permit: Some(permit),
            started: false,
        })
    }
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if !self.started {
            // hyper asks for the body when it writes the response: the send timeout starts.
            self.started = true;
            if let Some(b) = &self.busy {
                b.sending();
            }
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response held in memory, handed to hyper in 64 KiB frames: hyper asks for the next one
/// only when it has written the last, so the response (and what [`Guarded`] holds) lives
/// until it has nearly all been sent.
pub(super) struct Chunks(pub Bytes);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.0.len().min(64 * 1024);
        Poll::Ready(Some(Ok(Frame::data(self.0.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.len() as u64)
    }
}

/// The most connections the open-file limit allows: what is left after a reserve for the
/// process's own files (rules, the watcher, logs), and at least half of the limit.
pub(super) fn connections_allowed() -> Option<usize> {
    let soft = open_file_limit()?;
    Some(soft.saturating_sub(64).max(soft / 2) as usize)
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux; `None` elsewhere or unlimited).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    rest.split_whitespace().next()?.parse().ok()
}
