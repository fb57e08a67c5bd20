//! A scrape target inside the test process: an axum server on a loopback port whose
//! routes serve whatever the test sets, and can change at runtime (body, Content-Type,
//! status, a delay that makes the scrape hang, a huge body). It counts requests per path
//! so tests can tell that scraping goes on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::task::JoinHandle;

/// The Content-Type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Content-Type of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one path answers.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
    /// Time to wait before answering: longer than `scrape_timeout` makes a hanging target.
    pub delay: Duration,
}

impl Route {
    /// A text-format 0.0.4 body, answered at once with 200.
    pub fn text(body: impl Into<Bytes>) -> Route {
        Route {
            status: 200,
            content_type: TEXT_CONTENT_TYPE.to_owned(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// An OpenMetrics 1.0 body (which must end with `# EOF` to be valid).
    pub fn openmetrics(body: impl Into<Bytes>) -> Route {
        Route {
            content_type: OPENMETRICS_CONTENT_TYPE.to_owned(),
            ..Route::text(body)
        }
    }

    pub fn with_status(self, status: u16) -> Route {
        Route { status, ..self }
    }

    pub fn with_content_type(self, content_type: &str) -> Route {
        Route {
            content_type: content_type.to_owned(),
            ..self
        }
    }

    pub fn with_delay(self, delay: Duration) -> Route {
        Route { delay, ..self }
    }
}

/// A valid text-format body of at least `bytes` bytes (`huge_metric{i="..."} 1` lines),
/// for body-size limits.
pub fn huge_body(bytes: usize) -> Bytes {
    let mut body = String::with_capacity(bytes + 64);
    let mut i = 0u64;
    while body.len() < bytes {
        body.push_str(&format!("huge_metric{{i=\"{i:012}\"}} 1\n"));
        i += 1;
    }
    Bytes::from(body)
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, u64>,
    last_headers: HashMap<String, HeaderMap>,
}

/// The in-test exposition server; stops when dropped.
pub struct Exposition {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Exposition {
    /// Binds a free loopback port and serves until dropped. Unknown paths answer 404.
    pub async fn start() -> Exposition {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the exposition server");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let state = Arc::new(Mutex::new(State::default()));
        let handler_state = Arc::clone(&state);
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let state = Arc::clone(&handler_state);
            async move { serve(&state, uri, headers).await }
        });
        let task = tokio::spawn(async move {
            // The server only ends with the test; an accept error would show up as
            // failed scrapes in the test's own assertions.
            let _ = axum::serve(listener, app).await;
        });
        Exposition { addr, state, task }
    }

    /// Starts a server that answers `path` with `route`.
    pub async fn serving(path: &str, route: Route) -> Exposition {
        let exposition = Exposition::start().await;
        exposition.set(path, route);
        exposition
    }

    /// `127.0.0.1:<port>`: the scrape target and the `instance` label Prometheus gives it.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Makes `path` answer `route` from the next request on.
    pub fn set(&self, path: &str, route: Route) {
        self.lock().routes.insert(path.to_owned(), route);
    }

    /// Changes only the body of `path`, keeping its other settings.
    pub fn set_body(&self, path: &str, body: impl Into<Bytes>) {
        let mut state = self.lock();
        let route = state
            .routes
            .get_mut(path)
            .unwrap_or_else(|| panic!("set_body: no route {path}"));
        route.body = body.into();
    }

    /// Makes `path` answer 404 from the next request on.
    pub fn remove(&self, path: &str) {
        self.lock().routes.remove(path);
    }

    /// How many requests `path` has received.
    pub fn hits(&self, path: &str) -> u64 {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// The headers of the last request to `path` (to check `Accept` or the scrape timeout
    /// header a scraper sends).
    pub fn last_headers(&self, path: &str) -> Option<HeaderMap> {
        self.lock().last_headers.get(path).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("exposition state lock")
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(state: &Mutex<State>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let route = {
        let mut state = state.lock().expect("exposition state lock");
        *state.hits.entry(path.clone()).or_insert(0) += 1;
        state.last_headers.insert(path.clone(), headers);
        state.routes.get(&path).cloned()
    };
    let Some(route) = route else {
        return plain(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from("no such route\n"),
        );
    };
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let status = StatusCode::from_u16(route.status).expect("a valid HTTP status in a Route");
    plain(status, &route.content_type, route.body)
}

fn plain(status: StatusCode, content_type: &str, body: Bytes) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("a response from valid parts")
}
