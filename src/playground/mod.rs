//! The playground (`jobpoints playground`, `serve --playground`): rules edited in a browser,
//! with `check`'s diagnostics, jobs scored before → after, `diff`'s impact report and a patch
//! to take away, all computed by the library's own functions on rule files sent in a request.
//!
//! `api` is the work behind `POST /v1/check`, `/v1/eval` and `/v1/diff` (no I/O: files in,
//! JSON out); `http` the routes, the pages and the request limits; `patch` the unified diff
//! that `git apply` takes; `markdown` the impact report rendered as HTML that cannot run code.

pub mod api;
pub mod http;
mod markdown;
mod patch;
