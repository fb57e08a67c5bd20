//! The HTTP server: Prometheus's API under `/api/v1`, the lifecycle endpoints under
//! `/-/`, cairn's own `/metrics`, and the built-in UI. Handlers are thin: they parse
//! parameters, call into the app on the blocking pool where work is heavy, and encode.

mod admin;
mod ast_json;
mod json;
mod lifecycle;
mod params;
mod query;
mod status;
mod write;

pub use crate::app::App as AppState;
pub use query::encode_value;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use params::Params;
use std::sync::Arc;

type S = Arc<AppState>;

pub fn router(state: S) -> Router {
    let api = Router::new()
        .route("/query", get(query_h).post(query_h))
        .route("/query_range", get(query_range_h).post(query_range_h))
        .route("/series", get(series_h).post(series_h))
        .route("/labels", get(labels_h).post(labels_h))
        .route("/label/{name}/values", get(label_values_h))
        .route("/targets", get(targets_h))
        .route("/format_query", get(format_query_h).post(format_query_h))
        .route("/parse_query", get(parse_query_h).post(parse_query_h))
        .route(
            "/status/config",
            get(|State(s): State<S>| status::config(s)),
        )
        .route("/status/flags", get(|State(s): State<S>| status::flags(s)))
        .route("/status/buildinfo", get(status::buildinfo))
        .route(
            "/status/tsdb",
            get(|State(s): State<S>, P(p): P| status::tsdb(s, p)),
        )
        .route(
            "/status/runtimeinfo",
            get(|State(s): State<S>| status::runtimeinfo(s)),
        )
        .route(
            "/admin/tsdb/snapshot",
            post(|State(s): State<S>, P(p): P| async move { respond(admin::snapshot(s, p).await) })
                .put(|State(s): State<S>, P(p): P| async move { respond(admin::snapshot(s, p).await) }),
        )
        .route(
            "/admin/tsdb/delete_series",
            post(|State(s): State<S>, P(p): P| async move {
                respond(admin::delete_series(s, p).await)
            })
            .put(|State(s): State<S>, P(p): P| async move {
                respond(admin::delete_series(s, p).await)
            }),
        )
        .route(
            "/admin/tsdb/clean_tombstones",
            post(|State(s): State<S>| async move { respond(admin::clean_tombstones(s).await) })
                .put(|State(s): State<S>| async move { respond(admin::clean_tombstones(s).await) }),
        )
        .route(
            "/write",
            post(|State(s): State<S>, h: HeaderMap, b: axum::body::Body| write::write(s, h, b)),
        );
    Router::new()
        .nest("/api/v1", api)
        .route(
            "/-/healthy",
            get(lifecycle::healthy).head(lifecycle::healthy),
        )
        .route("/-/ready", get(|State(s): State<S>| lifecycle::ready(s)))
        .route(
            "/-/reload",
            post(|State(s): State<S>| lifecycle::reload(s))
                .put(|State(s): State<S>| lifecycle::reload(s)),
        )
        .route("/metrics", get(|State(s): State<S>| lifecycle::metrics(s)))
        .route("/", get(ui))
        .route("/graph", get(ui))
        .fallback(not_found)
        // Remote write bodies are read with their own limit (write.rs); query forms
        // keep the default.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn ui() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

/// Query-string and form-body parameters, merged as Prometheus does.
struct P(Params);

impl<St: Send + Sync> axum::extract::FromRequest<St> for P {
    type Rejection = Response;
    async fn from_request(req: axum::extract::Request, _: &St) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // Forms are small; 16 MiB covers very long match[] lists.
        let body = if parts.method == Method::POST {
            axum::body::to_bytes(body, 16 << 20)
                .await
                .map_err(|e| json::ApiError::bad_data(e.to_string()).into_response())?
        } else {
            Bytes::new()
        };
        Ok(P(Params::from_request(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
        )))
    }
}

fn respond(r: Result<Response, json::ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn query_h(State(s): State<S>, P(p): P) -> Response {
    respond(query::query(s, p).await)
}
async fn query_range_h(State(s): State<S>, P(p): P) -> Response {
    respond(query::query_range(s, p).await)
}
async fn series_h(State(s): State<S>, P(p): P) -> Response {
    respond(query::series(s, p).await)
}
async fn labels_h(State(s): State<S>, P(p): P) -> Response {
    respond(query::labels(s, p).await)
}
async fn label_values_h(State(s): State<S>, Path(name): Path<String>, uri: Uri) -> Response {
    let p = Params::from_request(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new());
    respond(query::label_values(s, p, name).await)
}
async fn format_query_h(P(p): P) -> Response {
    respond(query::format_query(p).await)
}
async fn parse_query_h(P(p): P) -> Response {
    respond(query::parse_query(p).await)
}
async fn targets_h(State(s): State<S>, P(p): P) -> Response {
    respond(status::targets(s, p).await)
}
