//! Request routing. Each route is a plain function from [`Received`] to
//! [`Reply`]; only `/slow` has a side effect (it sleeps).

use std::thread;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{self, Document};
use crate::reply::{status_forbids_body, Reply};
use crate::Received;

/// `/slow` never sleeps longer than this, so a typo cannot wedge a worker.
const MAX_SLEEP_MS: u64 = 30_000;
/// Size of the fake `/static/logo.png`.
const LOGO_LEN: usize = 4096;
const LOGIN_CSP: &str = "default-src 'self'; form-action 'self'; frame-ancestors 'none'";
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

pub(crate) fn route(req: &Received) -> Reply {
    let path = req.path.as_str();
    let read_only = matches!(req.method.as_str(), "GET" | "HEAD");

    if read_only {
        if path == "/api/products" {
            return cacheable(req, catalog::list(), "public, max-age=60");
        }
        if let Some(id) = path.strip_prefix("/api/products/") {
            if !id.is_empty() && !id.contains('/') {
                return product(req, id);
            }
        }
        match path {
            "/static/logo.png" => return logo(),
            "/healthz" => return Reply::json(200, &json!({ "status": "ok" })),
            _ => {}
        }
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return admin(path);
    }
    if path == "/login" {
        return login(req);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return status(code);
    }
    if path == "/slow" {
        return slow(req);
    }
    echo(req)
}

fn product(req: &Received, id: &str) -> Reply {
    match catalog::product_document(id) {
        Some(doc) => cacheable(req, &doc, "public, max-age=60"),
        None => Reply::problem(404, "Not Found", &format!("no product with id {id}")),
    }
}

/// Serves a catalog document with validators, or 304 when the client's
/// `If-None-Match` already names this version.
fn cacheable(req: &Received, doc: &Document, cache_control: &str) -> Reply {
    let not_modified = req
        .header_values("if-none-match")
        .any(|value| catalog::if_none_match_hits(value, &doc.etag));
    let reply = if not_modified {
        Reply::bodiless(304)
    } else {
        Reply::new(200, crate::reply::JSON, doc.body.clone())
    };
    reply
        .header("Cache-Control", cache_control)
        .header("ETag", doc.etag.clone())
        .header("Last-Modified", catalog::LAST_MODIFIED)
}

fn admin(path: &str) -> Reply {
    #[derive(Serialize)]
    struct Admin<'a> {
        area: &'a str,
        message: &'a str,
        path: &'a str,
    }
    let body = Admin {
        area: "admin",
        message: "admin dashboard (demo)",
        path,
    };
    Reply::json(200, &body).header("Cache-Control", "private, no-store")
}

fn login(req: &Received) -> Reply {
    if req.method != "POST" {
        return Reply::problem(405, "Method Not Allowed", "use POST /login")
            .header("Allow", "POST");
    }
    // Not a real login: it only shows what a client posted and where real
    // tokens come from in the demo.
    let user = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|body| body.get("username").cloned())
        .unwrap_or(Value::Null);
    #[derive(Serialize)]
    struct Login {
        message: &'static str,
        user: Value,
    }
    let body = Login {
        message: "demo login: mint a token with `make token ROLE=viewer`",
        user,
    };
    // A login answer sets its own policy (forms may post back to this origin), which the
    // gateway's default CSP must not overwrite.
    Reply::json(200, &body)
        .header("Cache-Control", "no-store")
        .header("Content-Security-Policy", LOGIN_CSP)
}

/// A PNG signature followed by deterministic pseudo-random filler: already
/// "compressed" data that a compression filter should leave alone.
fn logo() -> Reply {
    let mut bytes = PNG_SIGNATURE.to_vec();
    let mut state: u32 = 0x2545_f491;
    while bytes.len() < LOGO_LEN {
        // xorshift32: cheap, stable across platforms, and incompressible enough.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(LOGO_LEN);
    Reply::new(200, "image/png", bytes).header("Cache-Control", "public, max-age=86400")
}

fn status(code: &str) -> Reply {
    let code = code
        .parse::<u16>()
        .ok()
        .filter(|code| (100..=599).contains(code))
        .unwrap_or(400);
    if status_forbids_body(code) {
        return Reply::bodiless(code);
    }
    Reply::json(code, &json!({ "status": code }))
}

fn slow(req: &Received) -> Reply {
    let requested = req
        .query
        .iter()
        .find(|(k, _)| k == "ms")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let Some(requested) = requested else {
        return Reply::problem(
            400,
            "Bad Request",
            "query parameter ms must be a whole number of milliseconds",
        );
    };
    let ms = requested.min(MAX_SLEEP_MS);
    thread::sleep(Duration::from_millis(ms));
    Reply::json(200, &json!({ "slept_ms": ms }))
}

/// Mirrors the request back so tests can see exactly what the filters passed on.
fn echo(req: &Received) -> Reply {
    #[derive(Serialize)]
    struct Echo<'a> {
        method: &'a str,
        path: &'a str,
        query: &'a [(String, String)],
        headers: &'a [(String, String)],
        body: Option<&'a str>,
        body_base64: Option<String>,
        body_bytes: usize,
    }
    let (text, base64) = match std::str::from_utf8(&req.body) {
        Ok(text) => (Some(text), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&req.body)),
        ),
    };
    let body = Echo {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
        body: text,
        body_base64: base64,
        body_bytes: req.body.len(),
    };
    Reply::json(200, &body).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str) -> Received {
        let (path, query) = crate::query::split_target(target);
        Received {
            method: method.into(),
            path,
            query,
            headers: vec![],
            body: vec![],
        }
    }

    fn body_json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn products_list_and_conditional_get() {
        let list = route(&req("GET", "/api/products"));
        assert_eq!(list.status, 200);
        assert_eq!(list.get("content-type"), Some("application/json"));
        assert_eq!(list.get("cache-control"), Some("public, max-age=60"));
        assert_eq!(list.get("last-modified"), Some(catalog::LAST_MODIFIED));
        let etag = list.get("etag").unwrap().to_string();

        let mut again = req("HEAD", "/api/products");
        again
            .headers
            .push(("if-none-match".into(), format!("\"other\", {etag}")));
        let not_modified = route(&again);
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.body.is_empty());
        assert_eq!(not_modified.get("etag"), Some(etag.as_str()));
        assert_eq!(not_modified.get("content-type"), None);
    }

    #[test]
    fn product_by_id_and_unknown_id() {
        let one = route(&req("GET", "/api/products/3"));
        assert_eq!(one.status, 200);
        assert_eq!(body_json(&one)["id"], 3);

        let missing = route(&req("GET", "/api/products/99"));
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.get("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            body_json(&missing),
            json!({"type":"about:blank","title":"Not Found","status":404,"detail":"no product with id 99"})
        );
    }

    #[test]
    fn non_read_methods_on_products_fall_through_to_echo() {
        let reply = route(&req("POST", "/api/products"));
        assert_eq!(body_json(&reply)["method"], "POST");
    }

    #[test]
    fn admin_area_login_and_health() {
        let admin = route(&req("GET", "/admin/users"));
        assert_eq!(admin.get("cache-control"), Some("private, no-store"));
        assert_eq!(body_json(&admin)["path"], "/admin/users");
        assert_eq!(body_json(&route(&req("GET", "/admin")))["area"], "admin");
        // "/administrator" is not under /admin/.
        assert_eq!(
            body_json(&route(&req("GET", "/administrator")))["path"],
            "/administrator"
        );
        assert_eq!(
            body_json(&route(&req("GET", "/administrator")))["method"],
            "GET"
        );

        let mut login = req("POST", "/login");
        login.body = br#"{"username":"ada","password":"x"}"#.to_vec();
        let reply = route(&login);
        assert_eq!(reply.status, 200);
        assert_eq!(body_json(&reply)["user"], "ada");
        assert_eq!(reply.get("cache-control"), Some("no-store"));

        let mut not_json = req("POST", "/login");
        not_json.body = b"username=ada".to_vec();
        assert_eq!(body_json(&route(&not_json))["user"], Value::Null);

        let wrong = route(&req("GET", "/login"));
        assert_eq!(wrong.status, 405);
        assert_eq!(wrong.get("allow"), Some("POST"));

        assert_eq!(
            body_json(&route(&req("GET", "/healthz"))),
            json!({"status":"ok"})
        );
    }

    #[test]
    fn logo_is_a_png_of_fixed_size() {
        let logo = route(&req("GET", "/static/logo.png"));
        assert_eq!(logo.get("content-type"), Some("image/png"));
        assert_eq!(logo.body.len(), LOGO_LEN);
        assert_eq!(logo.body[..8], PNG_SIGNATURE);
        assert_eq!(logo.body, route(&req("GET", "/static/logo.png")).body);
    }

    #[test]
    fn status_route_validates_the_code() {
        let teapot = route(&req("DELETE", "/status/418"));
        assert_eq!(teapot.status, 418);
        assert_eq!(body_json(&teapot), json!({"status":418}));
        assert_eq!(route(&req("GET", "/status/600")).status, 400);
        assert_eq!(route(&req("GET", "/status/abc")).status, 400);
        let no_content = route(&req("GET", "/status/204"));
        assert_eq!(no_content.status, 204);
        assert!(no_content.body.is_empty());
    }

    #[test]
    fn slow_sleeps_and_rejects_bad_durations() {
        let started = std::time::Instant::now();
        let reply = route(&req("GET", "/slow?ms=30"));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(body_json(&reply), json!({"slept_ms":30}));
        assert_eq!(route(&req("GET", "/slow?ms=-1")).status, 400);
        assert_eq!(route(&req("GET", "/slow")).status, 400);
    }

    #[test]
    fn echo_reports_binary_bodies_as_base64() {
        let mut r = req("PUT", "/echo/x?a=1");
        r.body = vec![0xff, 0x00, 0x41];
        let echoed = body_json(&route(&r));
        assert_eq!(echoed["body"], Value::Null);
        assert_eq!(echoed["body_base64"], "/wBB");
        assert_eq!(echoed["body_bytes"], 3);
        assert_eq!(echoed["query"], json!([["a", "1"]]));
    }
}
