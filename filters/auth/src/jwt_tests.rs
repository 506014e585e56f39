//! JWT verification against tokens computed here, for every algorithm, every claim rule and
//! the known attack classes.

use serde_json::json;

use crate::jwt::{verify, Outcome, Provider, Verified};
use crate::keys::{Alg, Key};
use crate::reject::Reject;
use crate::testkit::*;

const MAX: usize = 8192;

fn check(token: &str, providers: &[Provider], now: u64) -> Outcome {
    verify(token, providers, &[None; 4][..providers.len()], now, MAX)
}

fn valid(o: Outcome) -> Verified {
    match o {
        Outcome::Valid(v) => v,
        other => panic!("expected valid, got {other:?}"),
    }
}

fn rejected(o: Outcome) -> Reject {
    match o {
        Outcome::Invalid(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn every_algorithm_verifies_its_own_tokens_and_refuses_other_keys() {
    // ES512 is not in jwt-simple: its own tests below (RFC 7515 A.4 and a signer of ours).
    for alg in Alg::ALL.into_iter().filter(|a| *a != Alg::ES512) {
        let s = signer(alg, "k1", false);
        let p = [provider(vec![s.public.clone()])];
        let token = s.token(claims("alice", json!({"roles": ["admin"]})));
        let v = valid(check(&token, &p, NOW + 1));
        assert_eq!(v.subject, "alice", "{alg}");
        assert_eq!(v.roles, vec!["admin"], "{alg}");
        assert_eq!(v.kid.as_deref(), Some("k1"), "{alg}");
        // Same algorithm and kid, different key: the signature does not verify.
        let forged = signer(alg, "k1", true).token(claims("alice", json!({})));
        assert_eq!(
            rejected(check(&forged, &p, NOW + 1)),
            Reject::SignatureInvalid,
            "{alg}"
        );
    }
}

#[test]
fn a_key_verifies_only_its_own_algorithm() {
    // The RSA material is the same for RS256 and PS256; the binding alone must refuse.
    let rs = signer(Alg::RS256, "rsa", false);
    let ps = signer(Alg::PS256, "rsa", false);
    let p = [provider(vec![rs.public.clone()])];
    let token = ps.token(claims("alice", json!({})));
    assert_eq!(
        rejected(check(&token, &p, NOW)),
        Reject::AlgorithmNotAllowed
    );
}

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let p = [provider(vec![signer(Alg::HS256, "k1", false).public])];
    for alg in ["none", "None", "NONE", "nOnE", "hs256", ""] {
        let h = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        let body = b64(payload("alice").to_string().as_bytes());
        // With an empty signature (the classic form) and with some bytes.
        let t = format!("{h}.{body}.");
        assert!(
            matches!(rejected(check(&t, &p, NOW)), Reject::TokenMalformed(_)),
            "{alg}"
        );
        let t = format!("{h}.{body}.{}", b64(b"sig"));
        assert_eq!(
            rejected(check(&t, &p, NOW)),
            Reject::AlgorithmNotAllowed,
            "{alg}"
        );
    }
    let h = b64(br#"{"typ":"JWT"}"#);
    let t = format!(
        "{h}.{}.{}",
        b64(payload("a").to_string().as_bytes()),
        b64(b"s")
    );
    assert!(matches!(
        rejected(check(&t, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
}

#[test]
fn hs_rs_confusion_with_the_public_key_as_hmac_secret() {
    let rs = signer(Alg::RS256, "rsa", false);
    let p = [provider(vec![rs.public.clone()])];
    let public_pem = jwt_simple::prelude::RS256KeyPair::from_pem(RSA_PEM)
        .unwrap()
        .public_key()
        .to_pem()
        .unwrap();
    for secret in [public_pem.as_bytes(), public_pem.trim().as_bytes()] {
        let t = handmade(
            &json!({"alg": "HS256", "kid": "rsa"}),
            &payload("mallory"),
            secret,
        );
        assert_eq!(rejected(check(&t, &p, NOW)), Reject::AlgorithmNotAllowed);
        let t = handmade(&json!({"alg": "HS256"}), &payload("mallory"), secret);
        assert_eq!(rejected(check(&t, &p, NOW)), Reject::AlgorithmNotAllowed);
    }
}

#[test]
fn kid_jku_x5u_and_embedded_jwk_tricks() {
    let p = [provider(vec![Key::hmac(
        Alg::HS256,
        Some("k1".into()),
        HMAC_SECRET,
    )
    .unwrap()])];
    let attacker = b"attacker-secret-attacker-secret-attacker-secret!";
    for header in [
        json!({"alg": "HS256", "kid": "k1", "jku": "https://evil.example/jwks.json"}),
        json!({"alg": "HS256", "kid": "k1", "x5u": "https://evil.example/cert.pem"}),
        json!({"alg": "HS256", "kid": "k1", "jwk": {"kty": "oct", "k": b64(attacker)}}),
    ] {
        let t = handmade(&header, &payload("mallory"), attacker);
        assert_eq!(
            rejected(check(&t, &p, NOW)),
            Reject::SignatureInvalid,
            "{header}"
        );
    }
    // Path and SQL tricks in kid select nothing.
    for kid in ["../../../../dev/null", "' OR '1'='1", "k1\u{0}", ""] {
        let t = handmade(
            &json!({"alg": "HS256", "kid": kid}),
            &payload("m"),
            HMAC_SECRET,
        );
        assert_eq!(rejected(check(&t, &p, NOW)), Reject::KeyUnknown, "{kid:?}");
    }
    let t = handmade(
        &json!({"alg": "HS256", "kid": 7}),
        &payload("m"),
        HMAC_SECRET,
    );
    assert!(matches!(
        rejected(check(&t, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
    let long = "k".repeat(300);
    let t = handmade(
        &json!({"alg": "HS256", "kid": long}),
        &payload("m"),
        HMAC_SECRET,
    );
    assert!(matches!(
        rejected(check(&t, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
    // The legitimate key still works through the same path.
    let t = handmade(
        &json!({"alg": "HS256", "kid": "k1"}),
        &payload("alice"),
        HMAC_SECRET,
    );
    assert_eq!(valid(check(&t, &p, NOW)).subject, "alice");
}

#[test]
fn critical_headers_are_refused() {
    let p = [provider(vec![
        Key::hmac(Alg::HS256, None, HMAC_SECRET).unwrap()
    ])];
    let t = handmade(
        &json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
        &payload("a"),
        HMAC_SECRET,
    );
    assert_eq!(rejected(check(&t, &p, NOW)), Reject::CritUnsupported);
    let t = handmade(
        &json!({"alg": "HS256", "crit": []}),
        &payload("a"),
        HMAC_SECRET,
    );
    assert!(matches!(
        rejected(check(&t, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
}

#[test]
fn time_claims_with_leeway() {
    let s = signer(Alg::ES256, "k", false);
    let p = [provider(vec![s.public.clone()])];
    let t = s.token(claims("a", json!({})));
    // exp = NOW+600, leeway 60.
    assert!(matches!(check(&t, &p, NOW + 659), Outcome::Valid(_)));
    assert_eq!(rejected(check(&t, &p, NOW + 661)), Reject::Expired);
    // nbf = iat = NOW.
    assert!(matches!(check(&t, &p, NOW - 59), Outcome::Valid(_)));
    let r = rejected(check(&t, &p, NOW - 61));
    assert!(
        r == Reject::NotYetValid || r == Reject::IssuedInFuture,
        "{r:?}"
    );
    let mut c = claims("a", json!({}));
    c.invalid_before = None;
    c.issued_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 120));
    assert_eq!(
        rejected(check(&s.token(c), &p, NOW)),
        Reject::IssuedInFuture
    );
    let mut c = claims("a", json!({}));
    c.issued_at = None;
    c.invalid_before = Some(jwt_simple::prelude::Duration::from_secs(NOW + 120));
    assert_eq!(rejected(check(&s.token(c), &p, NOW)), Reject::NotYetValid);
    // A provider with no leeway is strict.
    let mut strict = provider(vec![s.public.clone()]);
    strict.leeway_secs = 0;
    assert_eq!(rejected(check(&t, &[strict], NOW + 601)), Reject::Expired);
}

#[test]
fn issuer_audience_required_claims_and_lifetime() {
    let s = signer(Alg::HS256, "k", false);
    let p = [provider(vec![s.public.clone()])];
    let t = s.token(claims("a", json!({})).with_issuer("https://evil.example"));
    assert_eq!(rejected(check(&t, &p, NOW)), Reject::IssuerUnknown);
    let t = s.token(claims("a", json!({})).with_audience("someone-else"));
    assert_eq!(rejected(check(&t, &p, NOW)), Reject::AudienceMismatch);
    // Any of the configured audiences will do.
    let t = s.token(claims("a", json!({})).with_audience("other-api"));
    assert!(matches!(check(&t, &p, NOW), Outcome::Valid(_)));
    let mut c = claims("a", json!({}));
    c.audiences = None;
    assert_eq!(
        rejected(check(&s.token(c), &p, NOW)),
        Reject::AudienceMismatch
    );
    // exp is required by default.
    let mut c = claims("a", json!({}));
    c.expires_at = None;
    assert_eq!(
        rejected(check(&s.token(c), &p, NOW)),
        Reject::ClaimMissing("exp".into())
    );
    let mut c = claims("a", json!({}));
    c.subject = None;
    assert_eq!(
        rejected(check(&s.token(c), &p, NOW)),
        Reject::ClaimMissing("sub".into())
    );
    let mut needs = provider(vec![s.public.clone()]);
    needs.required_claims = vec!["jti".into(), "org.id".into()];
    let c = claims("a", json!({"org": {"id": "acme"}})).with_jwt_id("j1");
    assert!(matches!(
        check(&s.token(c), &[needs.clone()], NOW),
        Outcome::Valid(_)
    ));
    let c = claims("a", json!({})).with_jwt_id("j1");
    assert_eq!(
        rejected(check(&s.token(c), &[needs], NOW)),
        Reject::ClaimMissing("org.id".into())
    );
    let mut short = provider(vec![s.public.clone()]);
    short.max_lifetime_secs = Some(300);
    assert_eq!(
        rejected(check(&t, &[short.clone()], NOW)),
        Reject::LifetimeTooLong
    );
    short.max_lifetime_secs = Some(600);
    assert!(matches!(check(&t, &[short], NOW), Outcome::Valid(_)));
}

#[test]
fn nested_roles_tenant_and_custom_subject() {
    let s = signer(Alg::EdDSA, "k", false);
    let mut p = provider(vec![s.public.clone()]);
    p.roles_claim = Some("realm_access.roles".into());
    p.tenant_claim = Some("org".into());
    let t = s.token(claims(
        "a",
        json!({"realm_access": {"roles": ["editor", "viewer"]}, "org": "acme"}),
    ));
    let v = valid(check(&t, &[p.clone()], NOW));
    assert_eq!(v.roles, vec!["editor", "viewer"]);
    assert_eq!(v.tenant.as_deref(), Some("acme"));
    let t = s.token(claims(
        "a",
        json!({"realm_access": {"roles": "editor"}, "org": 5}),
    ));
    assert_eq!(
        rejected(check(&t, &[p.clone()], NOW)),
        Reject::ClaimInvalid("org".into())
    );
    p.subject_claim = "email".into();
    let t = s.token(claims("a", json!({"email": "a@example.com"})));
    assert_eq!(valid(check(&t, &[p], NOW)).subject, "a@example.com");
}

#[test]
fn stripped_empty_or_tampered_signatures() {
    let s = signer(Alg::RS256, "k", false);
    let p = [provider(vec![s.public.clone()])];
    let t = s.token(claims("alice", json!({"roles": ["viewer"]})));
    let (head_body, _sig) = t.rsplit_once('.').unwrap();
    assert!(matches!(
        rejected(check(head_body, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
    assert!(matches!(
        rejected(check(&format!("{head_body}."), &p, NOW)),
        Reject::TokenMalformed(_)
    ));
    assert_eq!(
        rejected(check(&format!("{head_body}.{}", b64(b"\0")), &p, NOW)),
        Reject::SignatureInvalid
    );
    // Privilege escalation in the payload, original signature kept.
    let (head, _) = head_body.split_once('.').unwrap();
    let mut evil = payload("alice");
    evil["roles"] = json!(["admin"]);
    let evil = format!(
        "{head}.{}.{}",
        b64(evil.to_string().as_bytes()),
        t.rsplit_once('.').unwrap().1
    );
    assert_eq!(rejected(check(&evil, &p, NOW)), Reject::SignatureInvalid);
    assert!(matches!(
        rejected(check(&format!("{t}.extra"), &p, NOW)),
        Reject::TokenMalformed(_)
    ));
}

#[test]
fn ecdsa_zero_signature_is_refused() {
    // "Psychic signatures" (CVE-2022-21449): r = s = 0 must never verify.
    for alg in [Alg::ES256, Alg::ES384] {
        let s = signer(alg, "k", false);
        let p = [provider(vec![s.public.clone()])];
        let t = s.token(claims("a", json!({})));
        let (input, _) = t.rsplit_once('.').unwrap();
        let width = if alg == Alg::ES256 { 64 } else { 96 };
        let zero = format!("{input}.{}", b64(&vec![0u8; width]));
        assert_eq!(
            rejected(check(&zero, &p, NOW)),
            Reject::SignatureInvalid,
            "{alg}"
        );
    }
}

#[test]
fn malformed_oversized_and_unicode_tokens() {
    let p = [provider(vec![
        Key::hmac(Alg::HS256, None, HMAC_SECRET).unwrap()
    ])];
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "eyJ.eyJ.sig",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", // payload "not json"
        "bm90IGpzb24.e30.c2ln",                  // header "not json"
        "WzFd.e30.c2ln",                         // header is an array
        "eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln",        // payload is an array
        "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln",        // padding is not base64url
    ] {
        assert!(
            matches!(
                rejected(check(bad, &p, NOW)),
                Reject::TokenMalformed(_) | Reject::IssuerUnknown
            ),
            "{bad:?}"
        );
    }
    let unicode = format!("{}.{}.sïg", b64(b"{\"alg\":\"HS256\"}"), b64(b"{}"));
    assert!(matches!(
        rejected(check(&unicode, &p, NOW)),
        Reject::TokenMalformed(_)
    ));
    let t = handmade(
        &json!({"alg": "HS256"}),
        &json!({"iss": ISS, "sub": "ü🦀\u{202e}", "aud": AUD, "exp": NOW + 60}),
        HMAC_SECRET,
    );
    assert_eq!(valid(check(&t, &p, NOW)).subject, "ü🦀\u{202e}");
    let huge = "a".repeat(MAX + 1);
    assert_eq!(rejected(check(&huge, &p, NOW)), Reject::TokenTooLarge);
    let big_claim = handmade(
        &json!({"alg": "HS256"}),
        &json!({"iss": ISS, "x": "y".repeat(MAX)}),
        HMAC_SECRET,
    );
    assert_eq!(rejected(check(&big_claim, &p, NOW)), Reject::TokenTooLarge);
    // Deeply nested JSON is refused by the parser's recursion limit, not a crash.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let t = format!(
        "{}.{}.{}",
        b64(b"{\"alg\":\"HS256\"}"),
        b64(deep.as_bytes()),
        b64(b"s")
    );
    assert!(matches!(
        verify(&t, &p, &[None], NOW, 1 << 20),
        Outcome::Invalid(_)
    ));
}

#[test]
fn remote_providers_fail_closed_and_ask_for_unknown_kids() {
    let s = signer(Alg::ES256, "new", false);
    let mut p = provider(vec![]);
    p.remote = true;
    let t = s.token(claims("a", json!({})));
    // Never loaded: fail closed.
    assert_eq!(
        rejected(verify(&t, &[p.clone()], &[None], NOW, MAX)),
        Reject::KeysUnavailable
    );
    // Loaded, but without this kid: ask for a refetch.
    let old = signer(Alg::ES256, "old", false).public;
    let loaded = [old];
    assert_eq!(
        verify(&t, &[p.clone()], &[Some(&loaded[..])], NOW, MAX),
        Outcome::UnknownKid { provider: 0 }
    );
    let rotated = [s.public.clone()];
    assert!(matches!(
        verify(&t, &[p], &[Some(&rotated[..])], NOW, MAX),
        Outcome::Valid(_)
    ));
}

#[test]
fn several_providers_by_issuer() {
    let a = signer(Alg::HS256, "a", false);
    let b = signer(Alg::ES384, "b", false);
    let mut pb = provider(vec![b.public.clone()]);
    pb.issuer = "https://b.test".into();
    pb.name = "b".into();
    let ps = [provider(vec![a.public.clone()]), pb];
    assert_eq!(
        valid(check(&a.token(claims("x", json!({}))), &ps, NOW)).provider,
        0
    );
    let tb = b.token(claims("y", json!({})).with_issuer("https://b.test"));
    assert_eq!(valid(check(&tb, &ps, NOW)).provider, 1);
    // b's key never verifies tokens claiming a's issuer.
    let lie = b.token(claims("y", json!({})));
    assert_eq!(rejected(check(&lie, &ps, NOW)), Reject::AlgorithmNotAllowed);
}

#[test]
fn jwks_parsing_binds_algorithms() {
    use crate::keys::parse_jwks;
    let s = signer(Alg::ES256, "k", false);
    let _ = s;
    assert!(parse_jwks(b"{}", 8, &Alg::ASYMMETRIC).is_err());
    assert!(parse_jwks(b"{\"keys\":[]}", 8, &Alg::ASYMMETRIC).is_err());
    assert!(parse_jwks(b"nope", 8, &Alg::ASYMMETRIC).is_err());
    let oct = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]});
    assert!(parse_jwks(oct.to_string().as_bytes(), 8, &Alg::ASYMMETRIC).is_err());
    let enc = json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "enc", "x": "a", "y": "b"}]});
    assert!(parse_jwks(enc.to_string().as_bytes(), 8, &Alg::ASYMMETRIC).is_err());
    let many = json!({"keys": vec![json!({}); 9]});
    assert!(parse_jwks(many.to_string().as_bytes(), 8, &Alg::ASYMMETRIC)
        .unwrap_err()
        .contains("at most 8"));
}
