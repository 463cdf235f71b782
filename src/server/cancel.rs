//! Query cancel (`CancelRequest`, SQLSTATE 57014). pgwire cancels a query only while
//! its handler future runs; DataFusion's results are a lazy stream that pgwire drives
//! afterwards, so a long aggregate or scan would run to its end. Here every running
//! query's row stream also watches its connection's cancel signal and ends with
//! `57014 canceling statement due to user request` when it fires; dropping the stream
//! stops DataFusion's tasks.

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use pgwire::api::results::{Response, SendableRowStream};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::DataRow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::watch;

/// A connection as a CancelRequest names it: process id and secret key.
pub type ConnKey = (i32, Vec<u8>);

/// Connection → a counter bumped by each cancel request.
#[derive(Default)]
pub struct Cancels {
    map: Mutex<HashMap<ConnKey, watch::Sender<u64>>>,
}

impl Cancels {
    /// A receiver that changes when the connection `key` gets a cancel request.
    pub fn subscribe(&self, key: ConnKey) -> watch::Receiver<u64> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Connections with no running query hold no receiver: forget them.
        map.retain(|_, s| s.receiver_count() > 0);
        map.entry(key)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn cancel(&self, key: &ConnKey) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(key) {
            s.send_modify(|n| *n += 1);
        }
    }
}

pub fn cancelled() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "57014".into(),
        "canceling statement due to user request".into(),
    )))
}

/// Makes the rows of `resp` stop with 57014 when `rx` changes.
pub fn guard(resp: Response, mut rx: watch::Receiver<u64>) -> Response {
    let Response::Query(mut q) = resp else {
        return resp;
    };
    rx.mark_unchanged();
    let mut waiting = rx.clone();
    let rows = std::mem::replace(&mut q.data_rows, Box::pin(futures::stream::empty()));
    q.data_rows = Box::pin(Guarded {
        rows,
        rx,
        // Resolves when a cancel request comes (true) or the server goes away (false).
        cancel: Box::pin(async move { waiting.changed().await.is_ok() }),
        done: false,
    });
    Response::Query(q)
}

/// A row stream that ends with 57014 once its connection is cancelled. While rows are
/// ready it only reads the signal's version (an atomic load per row); it waits on the
/// signal only while the rows are pending, so a cancel also stops a query that has
/// produced nothing yet.
struct Guarded {
    rows: SendableRowStream,
    rx: watch::Receiver<u64>,
    cancel: Pin<Box<dyn Future<Output = bool> + Send>>,
    done: bool,
}

impl Stream for Guarded {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.rx.has_changed().unwrap_or(false) {
            self.done = true;
            return Poll::Ready(Some(Err(cancelled())));
        }
        match self.rows.poll_next_unpin(cx) {
            Poll::Ready(row) => Poll::Ready(row),
            Poll::Pending => match self.cancel.as_mut().poll(cx) {
                Poll::Ready(true) => {
                    self.done = true;
                    Poll::Ready(Some(Err(cancelled())))
                }
                // The server is going away: finish the rows.
                Poll::Ready(false) => {
                    self.cancel = Box::pin(std::future::pending());
                    Poll::Pending
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Fires our signal and pgwire's own (which stops a query still being planned).
pub struct CancelHandler {
    pub cancels: Arc<Cancels>,
    pub connections: Arc<pgwire::api::ConnectionManager>,
}

#[async_trait]
impl pgwire::api::cancel::CancelHandler for CancelHandler {
    async fn on_cancel_request(&self, req: CancelRequest) {
        self.cancels
            .cancel(&(req.pid, req.secret_key.to_bytes().to_vec()));
        self.connections.cancel(req.pid, &req.secret_key).await;
    }
}
