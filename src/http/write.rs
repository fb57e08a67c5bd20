//! `/api/v1/write`: the remote write 1.0 receiver. The body is read with a size limit,
//! decoded and stored in one transaction: 204 when stored; when not, nothing of the
//! request is kept and the answer says why: 400 for what the sender must fix, 500 where
//! the storage failed and a retry may succeed.

use super::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Decoded (uncompressed) requests above this many bytes are refused.
const MAX_DECODED_BYTES: usize = 256 << 20;

pub async fn write(state: Arc<AppState>, headers: HeaderMap, body: Body) -> Response {
    let limit = state.remote_write_max_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("request body too large: more than {limit} bytes"),
            )
                .into_response();
        }
    };
    let header_str = |h| {
        headers
            .get(h)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let enc = header_str(header::CONTENT_ENCODING).map(str::to_string);
    let ct = header_str(header::CONTENT_TYPE).map(str::to_string);
    let res = tokio::task::spawn_blocking(move || {
        state.remote_write.receive(
            state.storage.as_ref(),
            enc.as_deref(),
            ct.as_deref(),
            &body,
            MAX_DECODED_BYTES,
        )
    })
    .await;
    match res {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, e.to_string()).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
