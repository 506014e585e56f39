//! The HTTPS listener: dev-CA handshake, TLS 1.2 minimum, AEAD-only suites, ALPN, and the plain
//! HTTP listener's redirect.

use portcullis_tests::{tls, Chain};
use rustls::version::{TLS12, TLS13};

const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;
const ECDHE_ECDSA_AES128_CBC_SHA: u16 = 0xc009;
const ECDHE_RSA_AES128_CBC_SHA: u16 = 0xc013;
const TLS_1_1: u16 = 0x0302;
const TLS_1_2: u16 = 0x0303;
const ALERT: u8 = 0x15;
const HANDSHAKE: u8 = 0x16;
const PROTOCOL_VERSION: u8 = 70;
const HANDSHAKE_FAILURE: u8 = 40;

#[test]
fn handshakes_with_the_dev_ca_and_negotiates_alpn() {
    let chain = Chain::start();
    for (version, name) in [(&TLS13, "TLSv1_3"), (&TLS12, "TLSv1_2")] {
        let config = tls::client_config(&chain.certs, &[version], &[b"h2", b"http/1.1"]);
        let stream = tls::handshake(chain.https_port, config).unwrap();
        assert_eq!(
            format!("{:?}", stream.conn.protocol_version().unwrap()),
            name
        );
        assert_eq!(stream.conn.alpn_protocol(), Some(&b"h2"[..]));
    }
    let config = tls::client_config(&chain.certs, &[&TLS13], &[b"http/1.1"]);
    let stream = tls::handshake(chain.https_port, config).unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn a_client_not_trusting_the_dev_ca_fails_verification() {
    let chain = Chain::start();
    let other = portcullis_tests::ScratchDir::new("other-ca");
    let other_certs = portcullis_tests::make_certs(&other.0);
    let config = tls::client_config(&other_certs, &[&TLS13], &[b"http/1.1"]);
    let err = tls::handshake(chain.https_port, config).unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("invalid peer certificate"),
        "{err}"
    );
}

#[test]
fn tls_1_1_and_cbc_suites_are_refused() {
    let chain = Chain::start();
    let suites = [
        ECDHE_ECDSA_AES128_GCM,
        ECDHE_ECDSA_AES128_CBC_SHA,
        ECDHE_RSA_AES128_CBC_SHA,
    ];
    // Control: the same hello claiming TLS 1.2 gets a ServerHello, so the refusal below is
    // about the version and nothing else.
    let answer = tls::raw_hello(chain.https_port, TLS_1_2, &suites);
    assert_eq!(answer.first(), Some(&HANDSHAKE), "{answer:?}");

    let answer = tls::raw_hello(chain.https_port, TLS_1_1, &suites);
    assert_eq!(answer.first(), Some(&ALERT), "{answer:?}");
    assert_eq!(answer.get(6), Some(&PROTOCOL_VERSION), "{answer:?}");

    // TLS 1.2 offering only CBC suites: no shared cipher.
    let answer = tls::raw_hello(
        chain.https_port,
        TLS_1_2,
        &[ECDHE_ECDSA_AES128_CBC_SHA, ECDHE_RSA_AES128_CBC_SHA],
    );
    assert_eq!(answer.first(), Some(&ALERT), "{answer:?}");
    assert_eq!(answer.get(6), Some(&HANDSHAKE_FAILURE), "{answer:?}");
}

#[test]
fn plain_http_redirects_to_https() {
    let chain = Chain::start();
    let resp = ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .get(&format!(
            "http://localhost:{}/api/products?page=2",
            chain.http_port
        ))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://localhost:{}/api/products?page=2", chain.https_port).as_str())
    );
    assert!(
        chain.upstream.received().is_empty(),
        "the redirect must not reach the upstream"
    );
}
