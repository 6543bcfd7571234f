//! Identity binding tests. The test PKI comes from
//! bindings/rust/testdata/gencerts.go (standard-library Go, run offline).
mod common;
use common::pki;

use ambient::identity::{
    spiffe_id_error, svid_error, Credentials, IstioIdentity, SpiffeId, SvidVerifier, TrustBundles,
    VerifyClock, VerifyOptions,
};
use ambient::Error;
use ambient_sys as sys;

// 2050-01-01T00:00:00Z: inside every generated certificate's validity.
const IN_VALIDITY: i64 = 2_524_608_000;
// Leaves are valid 2021-01-01 .. 2099-01-01.
const LEAF_NOT_BEFORE: i64 = 1_609_459_200;
const LEAF_NOT_AFTER: i64 = 4_070_908_800;

fn f(name: &str) -> &'static [u8] {
    pki().get(name).unwrap_or_else(|| panic!("no {name}"))
}

fn assert_err<T: std::fmt::Debug>(r: Result<T, Error>, code: i32, detail: i32) {
    match r {
        Ok(v) => panic!("expected error {code}/{detail}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!((e.code, e.detail), (code, detail), "{e:?}");
            assert!(!e.message.is_empty() || e.detail != 0, "{e:?}");
        }
    }
}

fn at(t: i64) -> VerifyOptions {
    VerifyOptions {
        time: Some(t),
        ..Default::default()
    }
}

#[test]
fn spiffe_id_parse_and_errors() {
    let id = SpiffeId::parse("spiffe://example.org/ns/default/sa/web").unwrap();
    assert_eq!(id.trust_domain(), "example.org");
    assert_eq!(id.path(), "/ns/default/sa/web");
    assert_eq!(id.to_string(), "spiffe://example.org/ns/default/sa/web");
    assert_eq!(SpiffeId::parse("spiffe://example.org").unwrap().path(), "");
    let cases = [
        ("", spiffe_id_error::EMPTY),
        ("https://example.org/a", spiffe_id_error::BAD_SCHEME),
        ("spiffe:///a", spiffe_id_error::MISSING_TRUST_DOMAIN),
        (
            "spiffe://EXAMPLE.org/a",
            spiffe_id_error::BAD_TRUST_DOMAIN_CHAR,
        ),
        ("spiffe://example.org/a%20", spiffe_id_error::BAD_PATH_CHAR),
        ("spiffe://example.org/a//b", spiffe_id_error::EMPTY_SEGMENT),
        ("spiffe://example.org/./b", spiffe_id_error::DOT_SEGMENT),
        ("spiffe://example.org/a/", spiffe_id_error::TRAILING_SLASH),
    ];
    for (input, detail) in cases {
        let e = SpiffeId::parse(input).unwrap_err();
        assert_eq!(
            (e.code, e.detail),
            (sys::AMBIENT_ERR_INVALID_ARGUMENT, detail),
            "{input:?}: {e}"
        );
        assert!(!e.message.is_empty());
        let v = SpiffeId::validate(input).unwrap_err();
        assert_eq!(
            (v.code, v.detail),
            (sys::AMBIENT_ERR_INVALID_ARGUMENT, detail),
            "{input:?}"
        );
    }
    SpiffeId::validate("spiffe://a/b").unwrap();
    let long = format!("spiffe://example.org/{}", "a".repeat(2048));
    assert_err(
        SpiffeId::parse(&long),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        spiffe_id_error::TOO_LONG,
    );
}

#[test]
fn istio_identity() {
    let id = IstioIdentity::parse("spiffe://cluster.local/ns/bookinfo/sa/reviews").unwrap();
    assert_eq!(
        id,
        IstioIdentity {
            trust_domain: "cluster.local".into(),
            namespace: "bookinfo".into(),
            service_account: "reviews".into()
        }
    );
    for bad in [
        "",
        "spiffe://td/ns/a",
        "spiffe://td/sa/a/ns/b",
        "http://td/ns/a/sa/b",
    ] {
        assert_eq!(
            IstioIdentity::parse(bad).unwrap_err().code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT,
            "{bad:?}"
        );
    }
}

#[test]
fn verify_against_pem_bundles() {
    let b = TrustBundles::new().unwrap();
    assert!(b.is_empty());
    b.set_pem("example.org", f("ca.pem")).unwrap();
    assert_eq!(b.len(), 1);
    // Bad input is refused and changes nothing.
    assert_err(
        b.set_pem("example.org", b"junk"),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        0,
    );
    assert_eq!(
        b.set_pem("a b", f("ca.pem")).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(b.len(), 1);

    let v = SvidVerifier::new(&b, &at(IN_VALIDITY)).unwrap();
    let id = v.verify_pem(f("leaf.pem")).unwrap();
    assert_eq!(id.as_str(), "spiffe://example.org/ns/default/sa/web");
    assert_eq!(v.verify_der(&[f("leaf.der")]).unwrap(), id);
    assert_err(
        v.verify_der(&[]),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::EMPTY_CHAIN,
    );
    assert_err(
        v.verify_der(&[b"junk"]),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::MALFORMED_CERTIFICATE,
    );
    assert_err(
        v.verify_pem(f("other_leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::NO_BUNDLE,
    );
    b.set_pem("other.org", f("ca.pem")).unwrap();
    assert_err(
        v.verify_pem(f("other_leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::UNTRUSTED,
    );
    // The verifier sees bundle updates.
    b.set_pem("other.org", f("other_ca.pem")).unwrap();
    assert_eq!(
        v.verify_pem(f("other_leaf.pem")).unwrap().trust_domain(),
        "other.org"
    );
    b.remove("other.org").unwrap();
    assert_err(b.remove("other.org"), sys::AMBIENT_ERR_NOT_FOUND, 0);

    // The verifier keeps the bundles alive.
    drop(b);
    v.verify_pem(f("leaf.pem")).unwrap();
}

#[test]
fn verify_policy_and_time() {
    let b = TrustBundles::new().unwrap();
    b.set_pem("example.org", f("ca.pem")).unwrap();
    b.set_pem("other.org", f("other_ca.pem")).unwrap();
    let v = SvidVerifier::new(
        &b,
        &VerifyOptions {
            expected_ids: vec!["spiffe://example.org/ns/default/sa/db".into()],
            time: Some(IN_VALIDITY),
            ..Default::default()
        },
    )
    .unwrap();
    assert_err(
        v.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_PERMISSION_DENIED,
        svid_error::UNEXPECTED_IDENTITY,
    );
    let v = SvidVerifier::new(
        &b,
        &VerifyOptions {
            trust_domains: vec!["example.org".into()],
            time: Some(IN_VALIDITY),
            ..Default::default()
        },
    )
    .unwrap();
    v.verify_pem(f("leaf.pem")).unwrap();
    assert_err(
        v.verify_pem(f("other_leaf.pem")),
        sys::AMBIENT_ERR_PERMISSION_DENIED,
        svid_error::TRUST_DOMAIN_NOT_ALLOWED,
    );
    let expired = SvidVerifier::new(&b, &at(LEAF_NOT_AFTER + 1)).unwrap();
    assert_err(
        expired.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::EXPIRED,
    );
    let early = SvidVerifier::new(&b, &at(LEAF_NOT_BEFORE - 1)).unwrap();
    assert_err(
        early.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::NOT_YET_VALID,
    );
    let bad = SvidVerifier::new(
        &b,
        &VerifyOptions {
            expected_ids: vec!["spiffe://example.org/a//b".into()],
            ..Default::default()
        },
    );
    assert_err(
        bad.map(|_| ()),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        spiffe_id_error::EMPTY_SEGMENT,
    );
}

#[test]
fn spiffe_bundle_json() {
    let b = TrustBundles::new().unwrap();
    b.set_spiffe_json("example.org", f("bundle.json")).unwrap();
    let v = SvidVerifier::new(&b, &at(IN_VALIDITY)).unwrap();
    v.verify_pem(f("leaf.pem")).unwrap();
    assert_err(
        b.set_spiffe_json("example.org", b"{\"keys\": ["),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        0,
    );
    assert_err(
        b.set_spiffe_json("example.org", b"{}"),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        0,
    );
    b.set_bundle_map_json(f("bundle_map.json")).unwrap();
    assert_eq!(b.len(), 1, "a bundle map replaces every trust domain");
    v.verify_pem(f("other_leaf.pem")).unwrap();
    assert_err(
        v.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::NO_BUNDLE,
    );
    assert_err(
        b.set_bundle_map_json(b"[1]"),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        0,
    );
    assert_eq!(b.len(), 1);
}

#[test]
fn credentials_load_and_rotate() {
    let mut chain = f("leaf.pem").to_vec();
    chain.extend_from_slice(f("ca.pem"));
    let c = Credentials::from_pem(&chain, f("leaf.key")).unwrap();
    assert_eq!(
        c.id().unwrap().as_str(),
        "spiffe://example.org/ns/default/sa/web"
    );
    assert_eq!(c.not_before(), LEAF_NOT_BEFORE);
    assert_eq!(c.not_after(), LEAF_NOT_AFTER);
    assert_eq!(
        c.refresh_at(),
        LEAF_NOT_BEFORE + (LEAF_NOT_AFTER - LEAF_NOT_BEFORE) / 2
    );

    assert_err(
        c.rotate(f("other_leaf.pem"), f("leaf.key")),
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        0,
    );
    assert_eq!(c.id().unwrap().trust_domain(), "example.org");
    c.rotate(f("other_leaf.pem"), f("other_leaf.key")).unwrap();
    assert_eq!(c.id().unwrap().as_str(), "spiffe://other.org/ns/x/sa/y");

    let e = Credentials::from_pem(f("leaf.pem"), b"junk").err().unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    let e = Credentials::from_pem(f("ca.pem"), f("ca.key"))
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT, "a CA is no leaf");
    let e = Credentials::from_pem(f("no_uri.pem"), f("no_uri.key"))
        .err()
        .unwrap();
    assert_eq!(
        e.code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT,
        "a leaf without SPIFFE ID"
    );
}

#[test]
fn handles_are_send_and_sync_across_threads() {
    let b = std::sync::Arc::new(TrustBundles::new().unwrap());
    b.set_pem("example.org", f("ca.pem")).unwrap();
    let v = std::sync::Arc::new(SvidVerifier::new(&b, &at(IN_VALIDITY)).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (b, v) = (b.clone(), v.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    if i == 0 {
                        b.set_pem("example.org", f("ca.pem")).unwrap();
                    } else {
                        v.verify_pem(f("leaf.pem")).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn ssl_hooks_refuse_null() {
    let b = TrustBundles::new().unwrap();
    let v = SvidVerifier::new(&b, &VerifyOptions::default()).unwrap();
    let null = std::ptr::null_mut();
    // SAFETY: NULL is allowed and must be refused.
    unsafe {
        assert_eq!(
            v.install_on_ssl_ctx(null).unwrap_err().code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            v.install_on_ssl(null).unwrap_err().code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ambient::identity::ssl_peer_id(null).unwrap_err().code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
    }
    let mut chain = f("leaf.pem").to_vec();
    chain.extend_from_slice(f("ca.pem"));
    let c = Credentials::from_pem(&chain, f("leaf.key")).unwrap();
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            c.install_on_ssl_ctx(null).unwrap_err().code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
    }
}

#[test]
fn verify_clock_is_asked_and_dropped_with_the_last_verifier() {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::sync::Arc;
    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let b = TrustBundles::new().unwrap();
    b.set_pem("example.org", f("ca.pem")).unwrap();
    let now = Arc::new(AtomicI64::new(IN_VALIDITY));
    let drops = Arc::new(AtomicUsize::new(0));
    let (n, t) = (now.clone(), Tracked(drops.clone()));
    let options = VerifyOptions {
        clock: Some(VerifyClock::new(move || {
            let _keep = &t;
            n.load(Ordering::SeqCst)
        })),
        ..Default::default()
    };
    let v1 = SvidVerifier::new(&b, &options).unwrap();
    let v2 = SvidVerifier::new(&b, &options).unwrap();
    drop(options);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the verifiers keep the clock"
    );
    v1.verify_pem(f("leaf.pem")).unwrap();
    now.store(LEAF_NOT_AFTER + 1, Ordering::SeqCst);
    assert_err(
        v1.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::EXPIRED,
    );
    drop(v1);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "v2 still uses it");
    // A panicking clock reads as time 0: not yet valid, and no unwinding into C.
    let panicky = SvidVerifier::new(
        &b,
        &VerifyOptions {
            clock: Some(VerifyClock::new(|| panic!("clock broke"))),
            ..Default::default()
        },
    )
    .unwrap();
    assert_err(
        panicky.verify_pem(f("leaf.pem")),
        sys::AMBIENT_ERR_UNAUTHENTICATED,
        svid_error::NOT_YET_VALID,
    );
    drop(v2);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "dropped once, with the last verifier"
    );
}
