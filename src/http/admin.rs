//! `/api/v1/admin/tsdb/*` behind `--web.enable-admin-api`, as Prometheus: `snapshot`
//! answers `{"name": ...}` (the directory under `<data>/snapshots/`), `delete_series`
//! and `clean_tombstones` answer 204. Disabled, each answers 503 `unavailable`.

use super::AppState;
use super::json::{self, ApiError, ErrorType};
use super::params::Params;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn enabled(state: &AppState) -> Result<(), ApiError> {
    if state.admin_enabled {
        Ok(())
    } else {
        Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
    }
}

/// Runs storage work off the async workers; a storage failure is a 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::tsdb::TsdbError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::new(ErrorType::Internal, e.to_string())),
        Err(e) => Err(ApiError::new(ErrorType::Internal, e.to_string())),
    }
}

pub async fn snapshot(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    enabled(&state)?;
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => v
            .parse::<bool>()
            .map_err(|_| ApiError::param("skip_head", format!("{v:?} is not a boolean")))?,
    };
    let name = snapshot_name(crate::model::time::now_ms());
    let db = state.db.clone();
    let n = name.clone();
    blocking(move || db.snapshot(&db.snapshot_dir(&n), skip_head)).await?;
    json::success(&serde_json::json!({ "name": name }))
}

pub async fn delete_series(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    enabled(&state)?;
    let sets = p.matchers()?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = p.time_or("start", i64::MIN)?;
    let end = p.time_or("end", i64::MAX)?;
    let db = state.db.clone();
    blocking(move || {
        for ms in &sets {
            db.delete_series(ms, start, end)?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn clean_tombstones(state: Arc<AppState>) -> Result<Response, ApiError> {
    enabled(&state)?;
    let db = state.db.clone();
    blocking(move || db.clean_tombstones()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `20171210T211224Z-2be650b6d019eb54`: the UTC time and 64 random bits, as Prometheus
/// names snapshots.
fn snapshot_name(now_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let random = crate::tsdb::block::ulid::new();
    let bits = xxhash_rust::xxh3::xxh3_64(random.as_bytes());
    format!("{}-{bits:016x}", t.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_look_like_prometheus_s() {
        let a = snapshot_name(1_512_940_344_000);
        assert!(a.starts_with("20171210T211224Z-"), "{a}");
        assert_eq!(a.len(), "20171210T211224Z-".len() + 16);
        assert_ne!(a, snapshot_name(1_512_940_344_000));
    }
}
