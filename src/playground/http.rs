//! The playground's routes: the page and its assets (compiled in: no CDN, no network), the
//! session (the rules being served, as files, and the example jobs), and the JSON API.
//!
//! Every API request runs within `serve`'s limits (`--max-requests` in flight, one
//! `--threads` slot while it works, `--body-timeout`) plus the playground's own: a body of at
//! most [`MAX_BODY_BYTES`] (or `--max-body-bytes` if lower), [`api::MAX_FILES`] files per rule
//! set, and a time limit per request (`--playground-timeout`). Rule files sent here are
//! untrusted: they are loaded exactly as a rules directory is (the formula sandbox, the file
//! size limit and the check budget), in memory, and never touch the served rules or the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use include_dir::{Dir, include_dir};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::playground::api::{self, ApiError, Cancel};
use jobpoints::engine::cancel::run_cancellable;
use jobpoints::live::handle::RulesHandle;

/// The page, its script and style, and the vendored editor.
static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/playground/assets");

/// The jobs panel starts with the repository's example jobs.
const EXAMPLE_JOBS: &str = include_str!("../../examples/jobs.jsonl");

/// Largest API request body: two rule sets and some jobs fit many times over.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Where the page lives.
pub const PAGE_PATH: &str = "/playground/";

/// What the playground's routes share with `serve`.
pub struct Playground {
    /// The rules being served: the session's starting point, never changed from here.
    pub rules: Arc<RulesHandle>,
    /// `serve`'s requests in flight (`--max-requests`).
    pub requests: Arc<Semaphore>,
    pub max_requests: usize,
    /// `serve`'s working slots (`--threads`).
    pub scoring: Arc<Semaphore>,
    /// `--max-body-bytes`; the playground takes at most [`MAX_BODY_BYTES`] of it.
    pub max_body_bytes: usize,
    /// `--max-jobs`; `/v1/eval` takes at most [`api::MAX_JOBS`] of it.
    pub max_jobs: u64,
    pub body_timeout: Duration,
    /// Per request, from its body's arrival to its response (`--playground-timeout`).
    pub timeout: Duration,
}

impl Playground {
    fn body_limit(&self) -> usize {
        self.max_body_bytes.min(MAX_BODY_BYTES)
    }
}

/// The playground's routes, to merge into `serve`'s router.
pub fn router(pg: Arc<Playground>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to(PAGE_PATH) }))
        .route("/playground", get(|| async { Redirect::to(PAGE_PATH) }))
        .route(PAGE_PATH, get(page))
        .route("/playground/session.json", get(session))
        .route("/playground/assets/{*path}", get(asset))
        .route("/v1/check", post(check))
        .route("/v1/eval", post(eval))
        .route("/v1/diff", post(diff))
        .with_state(pg)
}

/// Headers for the page and its assets: only this server's own scripts run, the page cannot
/// be framed, and content types are not guessed. (Inline styles are allowed: CodeMirror sets
/// `style` attributes, and a style cannot run code.)
fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn page() -> Response {
    serve_asset("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    serve_asset(&path)
}

fn serve_asset(path: &str) -> Response {
    let Some(file) = ASSETS.get_file(path) else {
        return json_error(StatusCode::NOT_FOUND, "no such file".into());
    };
    let kind = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    };
    secured(([(header::CONTENT_TYPE, kind)], file.contents()).into_response())
}

/// `GET /playground/session.json`: the rules being served (the "original" the page compares
/// edits with), the example jobs, and the limits.
async fn session(State(pg): State<Arc<Playground>>) -> Response {
    let rules = pg.rules.current();
    // Text files only: tokenizer models are binary, not edited, and never sent back.
    let files: api::Files = (rules.files.files.iter())
        .filter(|(path, _)| !jobpoints::rules::files::is_tokenizer_file(path))
        .map(|(path, bytes)| (path.clone(), String::from_utf8_lossy(bytes).into_owned()))
        .collect();
    let body = json!({
        "rules": rules.origin.to_string(),
        "ruleset": rules.hash,
        "files": files,
        "examples": EXAMPLE_JOBS,
        "patch_dir": api::PATCH_DIR,
        "version": jobpoints::engine::identity::VERSION,
        "limits": {
            "max_files": api::MAX_FILES,
            "max_jobs": pg.max_jobs.min(api::MAX_JOBS),
            "max_body_bytes": pg.body_limit(),
            "max_rule_file_bytes": jobpoints::rules::files::MAX_RULE_FILE_BYTES,
            "timeout_seconds": pg.timeout.as_secs_f64(),
        },
    });
    secured(axum::Json(body).into_response())
}

async fn check(State(pg): State<Arc<Playground>>, headers: HeaderMap, body: Body) -> Response {
    let served = api::served_models(&pg.rules.current().files.files);
    run(pg, &headers, body, move |bytes, _| {
        api::check(parse(bytes)?, &served)
    })
    .await
}

async fn eval(State(pg): State<Arc<Playground>>, headers: HeaderMap, body: Body) -> Response {
    let max_jobs = pg.max_jobs.min(api::MAX_JOBS);
    let served = api::served_models(&pg.rules.current().files.files);
    run(pg, &headers, body, move |bytes, cancel| {
        api::eval(parse(bytes)?, &served, max_jobs, cancel)
    })
    .await
}

async fn diff(State(pg): State<Arc<Playground>>, headers: HeaderMap, body: Body) -> Response {
    let served = api::served_models(&pg.rules.current().files.files);
    run(pg, &headers, body, move |bytes, cancel| {
        api::diff(parse(bytes)?, &served, cancel)
    })
    .await
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Bad(format!("bad request body: {e}")))
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// An error after which the connection is closed: the rest of the body was not read.
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Sets its flag when dropped: work for a client that went away stops.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One API request: admitted (or 503), its JSON body read within the limits, then `work` on
/// a working slot, within the time limit.
async fn run<F>(pg: Arc<Playground>, headers: &HeaderMap, body: Body, work: F) -> Response
where
    F: FnOnce(&[u8], &Cancel) -> Result<Vec<u8>, ApiError> + Send + 'static,
{
    let Ok(_permit) = pg.requests.clone().try_acquire_owned() else {
        let mut r = closing(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many requests in progress (at most {}, see --max-requests); retry shortly",
                pg.max_requests
            ),
        ));
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    // Only JSON: a browser cannot send that to another origin without asking first (CORS
    // preflight, which this server never grants), so no other web page can drive the API.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return closing(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/json`".into(),
        ));
    }
    let limit = pg.body_limit();
    let too_large = || {
        closing(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes"),
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match tokio::time::timeout(pg.body_timeout, read_body(body, limit)).await {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return too_large(),
        Ok(Err(e)) => {
            return closing(json_error(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            ));
        }
        Err(_) => {
            return closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s (see --body-timeout)",
                    pg.body_timeout.as_secs_f64()
                ),
            ));
        }
    };
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = cancel.0.clone();
    let scoring = pg.scoring.clone();
    let worked = tokio::time::timeout(pg.timeout, async move {
        let slot = scoring.acquire_owned().await.ok()?;
        // Loading rules and scoring is CPU work: off the async workers. The slot is held until
        // the work really ends, even after a timeout, so `--threads` still bounds it.
        // The work looks at its flag in its long loops (loading and checking rules, diffing,
        // scoring), so a request past its deadline gives its slot back at once.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            run_cancellable(&flag, || work(&bytes, &flag))
        })
        .await
        .ok()
    })
    .await;
    match worked {
        Err(_) => {
            cancel.0.store(true, Ordering::Relaxed);
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {} s (see --playground-timeout)",
                    pg.timeout.as_secs_f64()
                ),
            )
        }
        Ok(None) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request could not be worked on".into(),
        ),
        Ok(Some(Ok(body))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Ok(Some(Err(e))) => match e {
            ApiError::Bad(m) => json_error(StatusCode::BAD_REQUEST, m),
            ApiError::TooLarge(m) => json_error(StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::RulesInvalid(doc) => {
                (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(doc)).into_response()
            }
            ApiError::Cancelled => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request was cancelled".into(),
            ),
        },
    }
}

/// The whole body, or `None` past `max` bytes.
async fn read_body(mut body: Body, max: usize) -> Result<Option<Vec<u8>>, axum::Error> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > max {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}
