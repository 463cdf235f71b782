//! Query cancel (`CancelRequest`, SQLSTATE 57014). pgwire cancels a query only while
//! its handler future runs; DataFusion's results are a lazy stream that pgwire drives
//! afterwards, so a long aggregate or scan would run to its end. Here every running
//! query's row stream also watches its connection's cancel signal and ends with
//! `57014 canceling statement due to user request` when it fires; dropping the stream
//! stops DataFusion's tasks.

use async_trait::async_trait;
use futures::StreamExt;
use pgwire::api::results::Response;
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::cancel::CancelRequest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    let rows = std::mem::replace(&mut q.data_rows, Box::pin(futures::stream::empty()));
    let stream = futures::stream::unfold(Some((rows, rx)), |state| async move {
        let (mut rows, mut rx) = state?;
        tokio::select! {
            biased;
            changed = rx.changed() => match changed {
                Ok(()) => Some((Err(cancelled()), None)),
                // The server is going away; finish the rows.
                Err(_) => rows.next().await.map(|r| (r, None)),
            },
            row = rows.next() => row.map(|r| (r, Some((rows, rx)))),
        }
    });
    q.data_rows = Box::pin(stream);
    Response::Query(q)
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
