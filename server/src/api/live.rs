//! `GET /api/v1/live`: new events as Server-Sent Events (`event: event`, data = the
//! event's JSON), filtered by the user's network scope and the team's triage rules as
//! they were when the stream opened. A subscriber too slow to keep up gets an
//! `event: lagged` with the number of events it missed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use warp::reply::Reply;

use super::session::authenticate;
use super::{Answer, AppState, Req, allowed};
use crate::metrics::{add, inc};
use crate::store::users::Role;

/// Events buffered per subscriber between the filter task and the connection.
const PER_SUBSCRIBER: usize = 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn stream(state: &Arc<AppState>, req: &Req) -> Answer {
    let a = authenticate(state, req, Role::Viewer).await?;
    let vis = a.visibility(state).await?;
    let mut events = state.store.subscribe();
    let (tx, rx) =
        mpsc::channel::<Result<warp::sse::Event, std::convert::Infallible>>(PER_SUBSCRIBER);
    let metrics = Arc::clone(&state.metrics);
    inc(&metrics.live_subscribers);
    tokio::spawn(async move {
        loop {
            let msg = match events.recv().await {
                Ok(e) => {
                    if !vis.scope.is_empty()
                        && !allowed(Some(e.src), &vis.scope)
                        && !allowed(Some(e.dst), &vis.scope)
                    {
                        continue;
                    }
                    let hidden = vis.rules.hidden_trails.iter().any(|t| *t == e.trail)
                        || vis.rules.suppressions.iter().any(|s| {
                            s.trail.as_ref().is_none_or(|t| *t == e.trail)
                                && s.src.is_none_or(|ip| ip == e.src)
                        });
                    if hidden {
                        continue;
                    }
                    match warp::sse::Event::default().event("event").json_data(&*e) {
                        Ok(m) => m,
                        Err(_) => continue,
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    add(&metrics.live_lagged, n);
                    warp::sse::Event::default()
                        .event("lagged")
                        .data(n.to_string())
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if tx.send(Ok(msg)).await.is_err() {
                break;
            }
        }
        metrics
            .live_subscribers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    let stream = warp::sse::keep_alive()
        .interval(KEEP_ALIVE)
        .stream(ReceiverStream::new(rx));
    Ok(warp::sse::reply(stream).into_response())
}
