//! Adapts axum's WebSocket to the session's plain channels: a reader task turns frames into
//! [`WsIn`], a writer forwards the session's JSON text. The session never sees axum types.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::AppState;
use crate::call::session::{run_session, WsIn};

/// Largest WebSocket message or frame we read: a Twilio media message is ~ 400 bytes (160 bytes
/// of mu-law in base64, in JSON); a bigger one is refused from its header, before it is read.
const MAX_MESSAGE: usize = 64 * 1024;

pub(super) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    // Before anything else, so an anonymous client learns nothing (not even how busy we are).
    if let Err(e) = super::twilio_webhooks::verify_media(&state, &headers, &uri) {
        return e.into_response();
    }
    let Some(place) = state.live.enter() else {
        tracing::warn!(
            max = state.live.max(),
            "media stream refused: too many calls, or stopping"
        );
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many calls at once",
        )
            .into_response();
    };
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            serve(socket, state).await;
            drop(place);
        })
}

async fn serve(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::channel::<WsIn>(256);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(256);
    let reader = tokio::spawn(async move {
        while let Some(frame) = stream.next().await {
            let msg = match frame {
                Ok(Message::Text(t)) => WsIn::Text(t.to_string()),
                Ok(Message::Binary(b)) => WsIn::Binary(b.len()),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            };
            if in_tx.send(msg).await.is_err() {
                break;
            }
        }
        let _ = in_tx.send(WsIn::Closed).await;
    });
    let writer = tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    match run_session(in_rx, out_tx, state.session.clone()).await {
        Ok(summary) => tracing::info!(?summary, "session finished"),
        Err(e) => tracing::warn!(error = %e, "session ended early"),
    }
    // Closing our side lets TwiML after <Connect> (the <Hangup/>) run.
    let _ = writer.await;
    reader.abort();
}
