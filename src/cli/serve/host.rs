//! The `Host` check against DNS rebinding: a web page on `evil.example` can make its name
//! resolve to this server's address, and the victim's browser then sends the page's
//! requests here as same-origin ones. Its `Host` header still names the page's domain, so
//! every request that costs work or changes something (any method but GET and HEAD) must
//! name this server: an IP address (what the server is bound to, or any other address of the
//! machine), `localhost`, or a name given with `--allow-host`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The names `--allow-host` lets through besides IP addresses and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    /// Lowercase names, without a port.
    names: Vec<String>,
    /// `--allow-host '*'`: any name (the check is off).
    any: bool,
}

impl AllowedHosts {
    pub fn new(names: &[String]) -> Self {
        AllowedHosts {
            any: names.iter().any(|n| n == "*"),
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Host` header value may do work here.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = host_name(host).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.iter().any(|n| n == name)
    }
}

/// `host` without its port and without the brackets of an IPv6 address.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Middleware: 403 for a request other than GET or HEAD whose `Host` is not allowed. A
/// request without `Host` (HTTP/1.0) is let through: browsers always send one.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let host = (request.headers().get(header::HOST)).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    match host {
        Some(host) if !allowed.allows(host) => {
            let shown: String = host.chars().take(100).collect();
            let mut r = (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({ "error": format!(
                    "Host `{shown}` is not this server: use its IP address or `localhost`, \
                     or start it with `--allow-host NAME` to accept a name"
                )})),
            )
                .into_response();
            // The body was not read.
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            r
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_allowed_names_pass_other_names_do_not() {
        let none = AllowedHosts::new(&[]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "10.0.0.7:80",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:1",
        ] {
            assert!(none.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "t",
            "127.0.0.1.evil.example",
            "",
        ] {
            assert!(!none.allows(bad), "{bad}");
        }
        let some = AllowedHosts::new(&["Scorer.Internal".into()]);
        assert!(some.allows("scorer.internal:8080"));
        assert!(some.allows("scorer.internal."));
        assert!(!some.allows("evil.example"));
        assert!(AllowedHosts::new(&["*".into()]).allows("evil.example"));
    }
}
