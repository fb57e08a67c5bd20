//! `/-/healthy`, `/-/ready`, `/-/reload` and `/metrics`.

use super::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn healthy() -> Response {
    (StatusCode::OK, "cairn is Healthy.\n").into_response()
}

pub async fn ready(state: Arc<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "cairn is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

pub async fn reload(state: Arc<AppState>) -> Response {
    if !state.lifecycle_enabled {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
    }
    let s = state.clone();
    match tokio::task::spawn_blocking(move || s.reload()).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(msg)) => (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub async fn metrics(state: Arc<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    state.write_metrics(&mut out);
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
