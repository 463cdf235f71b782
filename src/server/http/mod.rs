//! `bagbase serve --http`: the InfluxDB-compatible HTTP listener. Transport only: one
//! task per connection reads requests (`request`), `influx` answers them. Shares the
//! process, the store and the users with the PostgreSQL listener.

mod influx;
pub mod request;

use crate::Store;
use request::{read_request, write_response, ReadError};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Request bodies larger than this (compressed or not) get 413.
pub const DEFAULT_MAX_BODY: usize = 25 << 20;

/// Serves HTTP on `listener` until `shutdown` resolves; connections then finish the
/// request they are in.
pub async fn serve(
    store: Arc<Store>,
    listener: TcpListener,
    max_body: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let influx = influx::Influx::start(store);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let influx = influx.clone();
                tasks.spawn(connection(socket, influx, max_body));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    super::drain(tasks).await;
}

async fn connection(socket: tokio::net::TcpStream, influx: influx::Influx, max_body: usize) {
    let (r, mut w) = socket.into_split();
    let mut r = tokio::io::BufReader::new(r);
    loop {
        let req = match read_request(&mut r, max_body).await {
            Ok(req) => req,
            Err(ReadError::Closed | ReadError::Io(_)) => return,
            Err(ReadError::Bad(why)) => {
                let resp = influx::error(true, 400, "invalid", &why);
                let _ = write_response(&mut w, &resp, false, false).await;
                return;
            }
            Err(ReadError::TooLarge(limit)) => {
                let resp = influx::error(
                    true,
                    413,
                    "request too large",
                    &format!("request body is larger than the limit of {limit} bytes"),
                );
                let _ = write_response(&mut w, &resp, false, false).await;
                return;
            }
        };
        let resp = influx.handle(&req).await;
        let head_only = req.method == "HEAD";
        if write_response(&mut w, &resp, head_only, req.keep_alive)
            .await
            .is_err()
            || !req.keep_alive
        {
            return;
        }
    }
}
