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

// ---- Issue 13 part B: revocation by the verifying key, key sets as IdPs publish them, ES512,
// ---- scopes, role prefixes, and the new fields refused at load.

use crate::engine::{Engine, Request, Tally, Verdict};
use crate::keys::parse_jwks;
use crate::settings::load;
use portcullis_common::slots::{HashKey, MemoryStore};
use serde_json::Value;

/// A public JWK of `alg`'s test key, with `kid` and without `alg`.
fn bare_jwk(alg: Alg, kid: &str) -> Value {
    let pem = RSA_PEM;
    let jwk = match alg {
        Alg::RS256 | Alg::PS256 => RS256KeyPair::from_pem(pem).unwrap().public_key().to_jwk(),
        Alg::ES256 => ES256KeyPair::generate().public_key().to_jwk(),
        other => panic!("{other}"),
    };
    let mut v: Value = serde_json::from_str(&jwk).unwrap();
    v.as_object_mut().unwrap().remove("alg");
    v["kid"] = json!(kid);
    v
}

use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair, RS256KeyPair};

fn provider_with_jwks(jwks: Value, algorithms: &[Alg]) -> Provider {
    let (keys, _) = parse_jwks(jwks.to_string().as_bytes(), 32, algorithms).unwrap();
    let mut p = provider(keys);
    p.algorithms = algorithms.to_vec();
    p
}

#[test]
fn a_kidless_token_cannot_dodge_revocation_of_its_key() {
    let kp = ES256KeyPair::generate();
    let mut jwk: Value = serde_json::from_str(&kp.public_key().to_jwk()).unwrap();
    jwk["kid"] = json!("leaked");
    let kidless = kp.sign(claims("mallory", json!({}))).unwrap();
    let with_kid = ES256KeyPair::from_bytes(&kp.to_bytes())
        .unwrap()
        .with_key_id("leaked")
        .sign(claims("a", json!({})))
        .unwrap();
    let mut p = [provider_with_jwks(
        json!({"keys": [jwk.clone()]}),
        &Alg::ASYMMETRIC,
    )];
    // By default a kid-less token meets no key that has a kid.
    assert_eq!(rejected(check(&kidless, &p, NOW + 1)), Reject::KeyUnknown);
    // Opted in, it verifies, and the kid reported (the one revocation checks) is the key's.
    p[0].kidless_tokens_any_key = true;
    let v = valid(check(&kidless, &p, NOW + 1));
    assert_eq!(v.kid.as_deref(), Some("leaked"));
    let v = valid(check(&with_kid, &p, NOW + 1));
    assert_eq!(v.kid.as_deref(), Some("leaked"));

    // Through the engine: a revoked kid refuses the kid-less token too (opted in).
    let config = json!({
        "providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "jwks": {"keys": [jwk]},
                       "kidless_tokens_any_key": true}],
        "revocation": {"entries": [{"kid": "leaked"}]}
    });
    let policy = load(
        config.to_string().as_bytes(),
        &|_| None,
        HashKey::from_bytes([1; 16]),
    )
    .unwrap();
    let mut store = MemoryStore::new();
    let p = &policy;
    p.revocation.apply(
        &mut store,
        &p.revocation_entries,
        p.revocation_ttl,
        NOW,
        false,
    );
    let mut engine = Engine::new(policy);
    let auth = format!("Bearer {kidless}");
    let headers = vec![("authorization".to_string(), auth)];
    let req = Request {
        method: "GET",
        authority: "a",
        path: "/x",
        headers: &headers,
    };
    let v = engine.decide(&req, NOW + 1, &store, false, &mut Tally::default());
    assert!(
        matches!(
            v,
            Verdict::Deny {
                reason: "token_revoked",
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn jwks_without_alg_binds_the_algorithms_its_key_type_allows() {
    let rsa = bare_jwk(Alg::RS256, "r");
    let p = [provider_with_jwks(json!({"keys": [rsa]}), &Alg::ASYMMETRIC)];
    for alg in [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
    ] {
        let t = signer(alg, "r", false).token(claims("a", json!({})));
        assert_eq!(valid(check(&t, &p, NOW + 1)).subject, "a", "{alg}");
    }
    // Confusion: the RSA key never verifies an HS token (its public key as the secret), nor an
    // ES token naming its kid.
    let n_e = RS256KeyPair::from_pem(RSA_PEM)
        .unwrap()
        .public_key()
        .to_pem()
        .unwrap();
    let hs = handmade(
        &json!({"alg": "HS256", "kid": "r"}),
        &payload("a"),
        n_e.as_bytes(),
    );
    assert_eq!(
        rejected(check(&hs, &p, NOW + 1)),
        Reject::AlgorithmNotAllowed
    );
    let es = signer(Alg::ES256, "r", false).token(claims("a", json!({})));
    assert_eq!(
        rejected(check(&es, &p, NOW + 1)),
        Reject::AlgorithmNotAllowed
    );

    // An EC key without alg verifies its curve's algorithm only, never an RS token.
    let ec = ES256KeyPair::generate().with_key_id("e");
    let mut ec_jwk: Value = serde_json::from_str(&ec.public_key().to_jwk()).unwrap();
    ec_jwk["kid"] = json!("e");
    let p2 = [provider_with_jwks(
        json!({"keys": [ec_jwk]}),
        &Alg::ASYMMETRIC,
    )];
    let t = ec.sign(claims("a", json!({}))).unwrap();
    assert_eq!(valid(check(&t, &p2, NOW + 1)).subject, "a");
    let rs = signer(Alg::RS256, "e", false).token(claims("a", json!({})));
    assert_eq!(
        rejected(check(&rs, &p2, NOW + 1)),
        Reject::AlgorithmNotAllowed
    );

    // The provider's `algorithms` narrows what an alg-less key may do.
    let p = [provider_with_jwks(
        json!({"keys": [bare_jwk(Alg::RS256, "r")]}),
        &[Alg::RS256],
    )];
    let ps = signer(Alg::PS256, "r", false).token(claims("a", json!({})));
    assert_eq!(
        rejected(check(&ps, &p, NOW + 1)),
        Reject::AlgorithmNotAllowed
    );
    let rs = signer(Alg::RS256, "r", false).token(claims("a", json!({})));
    assert_eq!(valid(check(&rs, &p, NOW + 1)).subject, "a");
}

#[test]
fn unusable_keys_are_skipped_naming_their_kid() {
    let doc = json!({"keys": [
        {"kty": "RSA", "use": "enc", "kid": "enc-key", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "secp256k1", "kid": "k1-curve", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
        {"kty": "XYZ", "kid": "odd"},
        {"kty": "RSA", "alg": "RS256", "kid": "rs-as-es", "crv": "P-256"},
        {"kty": "EC", "crv": "P-256", "alg": "RS256", "kid": "mismatch", "x": "AA", "y": "AA"},
        bare_jwk(Alg::ES256, "good")
    ]});
    let (keys, skipped) = parse_jwks(doc.to_string().as_bytes(), 32, &Alg::ASYMMETRIC).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].alg, Alg::ES256);
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    for kid in [
        "enc-key", "k1-curve", "shared", "odd", "rs-as-es", "mismatch",
    ] {
        assert!(
            skipped.iter().any(|s| s.contains(kid)),
            "{kid}: {skipped:?}"
        );
    }
    // Inline: the usable keys load, the others are reported; none usable is refused.
    let config =
        json!({"providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "jwks": doc}]});
    let policy = load(
        config.to_string().as_bytes(),
        &|_| None,
        HashKey::from_bytes([1; 16]),
    )
    .unwrap();
    assert_eq!(policy.skipped_keys.len(), 6);
    assert!(policy.skipped_keys[0].starts_with("t: jwks keys[0] (kid \"enc-key\")"));
    let config = json!({"providers": [{"name": "t", "issuer": ISS, "audiences": [AUD],
                                       "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}]});
    let e = load(
        config.to_string().as_bytes(),
        &|_| None,
        HashKey::from_bytes([1; 16]),
    )
    .unwrap_err();
    assert_eq!(e.field, "providers[0].jwks");
    assert!(e.message.contains("no usable key"), "{e}");
}

/// RFC 7515 Appendix A.4: the ES512 example (public key, signing input, signature).
#[test]
fn es512_rfc7515_a4_vector() {
    let jwk = json!({"kty": "EC", "crv": "P-521",
        "x": "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
        "y": "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"});
    let keys = Key::from_jwk(&jwk, &Alg::ASYMMETRIC).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].alg, Alg::ES512);
    let crate::keys::Material::ES512(vk) = &keys[0].material else {
        panic!("not an ES512 key")
    };
    let signed = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA";
    let sig = "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";
    assert!(crate::keys::es512_signature_ok(vk, signed, sig));
    assert!(!crate::keys::es512_signature_ok(
        vk,
        "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZB",
        sig
    ));
    let mut bad = sig.to_string();
    bad.replace_range(10..11, "A");
    assert!(!crate::keys::es512_signature_ok(vk, signed, &bad));
    // A private part, a coordinate of the wrong size, a point off the curve: refused.
    let mut private = jwk.clone();
    private["d"] = json!(
        "AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C"
    );
    assert!(Key::from_jwk(&private, &Alg::ASYMMETRIC).is_err());
    let mut short = jwk.clone();
    short["x"] = json!("AekpBQ8ST8a8");
    assert!(Key::from_jwk(&short, &Alg::ASYMMETRIC).is_err());
    let mut off = jwk.clone();
    off["y"] = off["x"].clone();
    assert!(Key::from_jwk(&off, &Alg::ASYMMETRIC).is_err());
}

#[test]
fn es512_tokens_verify_with_claim_rules() {
    use p521::ecdsa::signature::Signer as _;
    let mut secret = [9u8; 66];
    secret[0] = 1;
    let sk = p521::ecdsa::SigningKey::from_slice(&secret).unwrap();
    let point = sk.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let jwk = json!({"kty": "EC", "crv": "P-521", "kid": "p", "x": b64(&bytes[1..67]), "y": b64(&bytes[67..133])});
    let p = [provider_with_jwks(json!({"keys": [jwk]}), &Alg::ASYMMETRIC)];
    let sign = |payload: &Value| {
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"ES512","kid":"p"}"#),
            b64(payload.to_string().as_bytes())
        );
        let sig: p521::ecdsa::Signature = sk.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    };
    let v = valid(check(&sign(&payload("alice")), &p, NOW + 1));
    assert_eq!(v.subject, "alice");
    assert_eq!(v.kid.as_deref(), Some("p"));
    let mut expired = payload("a");
    expired["exp"] = json!(NOW - 3600);
    assert_eq!(rejected(check(&sign(&expired), &p, NOW)), Reject::Expired);
    let mut other_aud = payload("a");
    other_aud["aud"] = json!("someone-else");
    assert_eq!(
        rejected(check(&sign(&other_aud), &p, NOW)),
        Reject::AudienceMismatch
    );
    // An ES256 token naming the P-521 key's kid: another algorithm, refused.
    let es256 = signer(Alg::ES256, "p", false).token(claims("a", json!({})));
    assert_eq!(
        rejected(check(&es256, &p, NOW + 1)),
        Reject::AlgorithmNotAllowed
    );
}

#[test]
fn scopes_are_granted_verbatim_and_roles_and_scopes_take_the_issuer_prefix() {
    let s = signer(Alg::HS256, "k", false);
    let mut p = [provider(vec![s.public.clone()])];
    p[0].scopes_claim = Some("scope".into());
    p[0].role_prefix = Some("partner:".into());
    let t = s.token(claims(
        "a",
        json!({"scope": "read write *", "roles": ["admin"]}),
    ));
    let v = valid(check(&t, &p, NOW + 1));
    // `*` would be our wildcard permission: a scope holding it is dropped.
    assert_eq!(v.scopes, vec!["partner:read", "partner:write"]);
    assert_eq!(v.roles, vec!["partner:admin"]);
    p[0].role_prefix = None;
    p[0].scopes_claim = Some("scp".into());
    let t = s.token(claims("a", json!({"scp": ["read", "write"]})));
    assert_eq!(valid(check(&t, &p, NOW + 1)).scopes, vec!["read", "write"]);
    let t = s.token(claims("a", json!({"scp": 7})));
    assert_eq!(
        rejected(check(&t, &p, NOW + 1)),
        Reject::ClaimInvalid("scp".into())
    );

    // Through the engine: `write` satisfies the rule, `writer` does not.
    let env = |name: &str| (name == "S").then(|| HMAC_SECRET.to_vec());
    let config = json!({
        "providers": [{"name": "t", "issuer": ISS, "audiences": [AUD], "scopes_claim": "scope",
                       "hmac_keys": [{"alg": "HS256", "secret_env": "S"}]}],
        "rules": [{"path": "/api/write", "methods": ["POST"], "any_of": ["write"]}]
    });
    let policy = load(
        config.to_string().as_bytes(),
        &env,
        HashKey::from_bytes([1; 16]),
    )
    .unwrap();
    let mut engine = Engine::new(policy);
    let store = MemoryStore::new();
    let mut post = |scope: &str| {
        let t = s.token(claims("a", json!({ "scope": scope })));
        let headers = vec![("authorization".to_string(), format!("Bearer {t}"))];
        let req = Request {
            method: "POST",
            authority: "a",
            path: "/api/write",
            headers: &headers,
        };
        match engine.decide(&req, NOW + 1, &store, false, &mut Tally::default()) {
            Verdict::Pass { .. } => "pass",
            Verdict::Deny { reason, .. } => reason,
            Verdict::FetchKeys { .. } => "fetch",
        }
    };
    assert_eq!(post("read write"), "pass");
    assert_eq!(post("read writer"), "forbidden");
    assert_eq!(post("wri"), "forbidden");
    assert_eq!(post("*"), "forbidden");
}

#[test]
fn new_provider_fields_are_refused_naming_the_field() {
    let env = |name: &str| (name == "S").then(|| HMAC_SECRET.to_vec());
    let bad = |provider: Value, extra: Value| {
        let mut c = json!({ "providers": [provider] });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        load(c.to_string().as_bytes(), &env, HashKey::from_bytes([1; 16])).unwrap_err()
    };
    let base = |field: &str, value: Value| {
        let mut p = json!({"name": "t", "issuer": ISS, "audiences": [AUD],
                           "hmac_keys": [{"alg": "HS256", "secret_env": "S"}]});
        p[field] = value;
        p
    };
    let cases = [
        (base("audiences", json!([])), "providers[0].audiences"),
        (base("audiences", json!([""])), "providers[0].audiences"),
        (
            base("allow_any_audience", json!(true)),
            "providers[0].allow_any_audience",
        ),
        (base("algorithms", json!([])), "providers[0].algorithms"),
        (
            base("algorithms", json!(["RS256", "HS256"])),
            "providers[0].algorithms[1]",
        ),
        (
            base("algorithms", json!(["none"])),
            "providers[0].algorithms[0]",
        ),
        (base("scopes_claim", json!("")), "providers[0].scopes_claim"),
        (
            base("scopes_claim", json!("a..b")),
            "providers[0].scopes_claim",
        ),
        (base("role_prefix", json!("")), "providers[0].role_prefix"),
        (
            base("role_prefix", json!("a,b")),
            "providers[0].role_prefix",
        ),
        (
            base(
                "remote_jwks",
                json!({"cluster": "c", "path": "/k", "jwks_cluster": "x"}),
            ),
            "providers[0].remote_jwks.jwks_cluster",
        ),
        (
            base(
                "remote_jwks",
                json!({"cluster": "c", "discovery_path": "/d", "jwks_cluster": ""}),
            ),
            "providers[0].remote_jwks.jwks_cluster",
        ),
        (
            base(
                "remote_jwks",
                json!({"cluster": "c", "path": "/k", "allow_insecure_http": true}),
            ),
            "providers[0].remote_jwks.allow_insecure_http",
        ),
    ];
    for (provider, field) in cases {
        let e = bad(provider.clone(), json!({}));
        assert_eq!(e.field, field, "{provider}: {e}");
    }
    // Wrong types and unknown values are refused naming the field too.
    let e = bad(base("kidless_tokens_any_key", json!("yes")), json!({}));
    assert!(e.to_string().contains("kidless_tokens_any_key"), "{e}");
    let e = bad(base("revocation_table_full", json!("ignore")), json!({}));
    assert!(e.to_string().contains("revocation_table_full"), "{e}");
    // Revocation table sizing.
    let ok = base("audiences", json!([AUD]));
    let poll = json!({"cluster": "c", "path": "/r", "max_entries": 10000});
    let e = bad(
        ok.clone(),
        json!({"revocation": {"slots": 256, "ways": 8, "poll": poll}}),
    );
    assert_eq!(e.field, "revocation.slots");
    assert!(e.message.contains("hold 1024"), "{e}");
    let e = bad(
        ok.clone(),
        json!({"revocation": {"poll": {"cluster": "c", "path": "/r", "max_entries": 0}}}),
    );
    assert_eq!(e.field, "revocation.poll.max_entries");
    let e = bad(
        ok.clone(),
        json!({"revocation": {"ways": 1, "poll": {"cluster": "c", "path": "/r", "max_entries": 1000000}}}),
    );
    assert_eq!(e.field, "revocation.poll.max_entries");
}

#[test]
fn the_revocation_table_is_sized_from_what_it_must_hold() {
    let env = |name: &str| (name == "S").then(|| HMAC_SECRET.to_vec());
    let with = |revocation: Value| {
        let c = json!({
            "providers": [{"name": "t", "issuer": ISS, "audiences": [AUD],
                           "hmac_keys": [{"alg": "HS256", "secret_env": "S"}]}],
            "revocation": revocation
        });
        load(c.to_string().as_bytes(), &env, HashKey::from_bytes([1; 16])).unwrap()
    };
    // The default poll (10 000 entries) at half load of 8 ways: 2 500 slots, 20 000 entries.
    let p = with(json!({"poll": {"cluster": "c", "path": "/r"}}));
    assert_eq!(p.revocation.capacity(), 20_000);
    // Nothing to hold: the minimum table.
    assert_eq!(with(json!({})).revocation.capacity(), 256 * 8);
    // Explicit slots that hold the list at a safe load are kept.
    let p = with(json!({"slots": 2500, "poll": {"cluster": "c", "path": "/r"}}));
    assert_eq!(p.revocation.capacity(), 20_000);
    // Default 16 KiB tokens.
    assert_eq!(p.max_token_bytes, 16 * 1024);
}

/// Every provider block of docs/idp-recipes.md loads as written (placeholders and all), so the
/// recipes cannot drift from the configuration they document.
#[test]
fn every_idp_recipe_loads() {
    let doc = include_str!("../../../docs/idp-recipes.md");
    let blocks: Vec<&str> = doc
        .split("```json")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 5, "one provider block per IdP");
    for block in blocks {
        let provider: Value = serde_json::from_str(block).unwrap();
        let config = json!({ "providers": [provider] });
        let policy = load(
            config.to_string().as_bytes(),
            &|_| None,
            HashKey::from_bytes([1; 16]),
        );
        assert!(policy.is_ok(), "{block}: {:?}", policy.err());
    }
}

#[test]
fn a_role_prefix_applies_to_scopes_too() {
    // A partner issuer with a prefix must not grant our `admin:access` through a scope.
    let s = signer(Alg::HS256, "k", false);
    let mut p = [provider(vec![s.public.clone()])];
    p[0].scopes_claim = Some("scope".into());
    p[0].role_prefix = Some("partner:".into());
    let t = s.token(claims("a", json!({"scope": "admin:access read"})));
    let v = valid(check(&t, &p, NOW + 1));
    assert_eq!(v.scopes, vec!["partner:admin:access", "partner:read"]);
    // Without a prefix, scopes stay verbatim.
    p[0].role_prefix = None;
    let v = valid(check(&t, &p, NOW + 1));
    assert_eq!(v.scopes, vec!["admin:access", "read"]);
}
