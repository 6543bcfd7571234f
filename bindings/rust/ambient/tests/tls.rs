//! An in-memory mutual-TLS handshake through BoringSSL (the copy libambient
//! already loaded, reached with dlsym) with ambient's verifier and
//! credentials installed on both SSL_CTXs.
mod common;
use common::pki;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};

use ambient::identity::{
    ssl_peer_id, ssl_verify_error, svid_error, Credentials, SvidVerifier, TrustBundles,
    VerifyOptions,
};
use ambient_sys as sys;

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

struct Ssl {
    tls_method: unsafe extern "C" fn() -> *const c_void,
    ctx_new: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    new: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void),
    set_bio: unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void),
    connect_state: unsafe extern "C" fn(*mut c_void),
    accept_state: unsafe extern "C" fn(*mut c_void),
    handshake: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_error: unsafe extern "C" fn(*const c_void, c_int) -> c_int,
    bio_pair: unsafe extern "C" fn(*mut *mut c_void, usize, *mut *mut c_void, usize) -> c_int,
}

fn sym<T: Copy>(name: &str) -> T {
    let c = CString::new(name).unwrap();
    // SAFETY: RTLD_DEFAULT (NULL) lookup of a function libambient's BoringSSL
    // exports; the caller gives its C signature.
    let p = unsafe { dlsym(std::ptr::null_mut(), c.as_ptr()) };
    assert!(
        !p.is_null(),
        "{name} not loaded (is libambient linked with BoringSSL?)"
    );
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: T is a function pointer type of the right signature.
    unsafe { std::mem::transmute_copy(&p) }
}

fn ssl() -> Ssl {
    // Make sure libambient (and with it BoringSSL) is loaded.
    ambient::check_runtime().unwrap();
    Ssl {
        tls_method: sym("TLS_method"),
        ctx_new: sym("SSL_CTX_new"),
        ctx_free: sym("SSL_CTX_free"),
        new: sym("SSL_new"),
        free: sym("SSL_free"),
        set_bio: sym("SSL_set_bio"),
        connect_state: sym("SSL_set_connect_state"),
        accept_state: sym("SSL_set_accept_state"),
        handshake: sym("SSL_do_handshake"),
        get_error: sym("SSL_get_error"),
        bio_pair: sym("BIO_new_bio_pair"),
    }
}

/// Runs a handshake between a client and a server SSL_CTX configured by the
/// closures; returns (client SSL, server SSL, handshake ok) — the caller
/// inspects and then frees them with `done`.
struct Pair<'a> {
    s: &'a Ssl,
    ctxs: [*mut c_void; 2],
    ssls: [*mut c_void; 2],
}

impl Drop for Pair<'_> {
    fn drop(&mut self) {
        // SAFETY: objects made below, freed once.
        unsafe {
            for x in self.ssls {
                (self.s.free)(x);
            }
            for x in self.ctxs {
                (self.s.ctx_free)(x);
            }
        }
    }
}

fn handshake<'a>(
    s: &'a Ssl,
    client: (&SvidVerifier, &Credentials),
    server: (&SvidVerifier, &Credentials),
) -> (Pair<'a>, bool) {
    // SAFETY: plain BoringSSL object setup; every object is freed by Pair.
    unsafe {
        let mut p = Pair {
            s,
            ctxs: [std::ptr::null_mut(); 2],
            ssls: [std::ptr::null_mut(); 2],
        };
        for (i, (v, c)) in [client, server].into_iter().enumerate() {
            let ctx = (s.ctx_new)((s.tls_method)());
            assert!(!ctx.is_null());
            p.ctxs[i] = ctx;
            v.install_on_ssl_ctx(ctx).unwrap();
            c.install_on_ssl_ctx(ctx).unwrap();
            p.ssls[i] = (s.new)(ctx);
            assert!(!p.ssls[i].is_null());
        }
        let (mut b1, mut b2) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!((s.bio_pair)(&mut b1, 0, &mut b2, 0), 1);
        (s.set_bio)(p.ssls[0], b1, b1);
        (s.set_bio)(p.ssls[1], b2, b2);
        (s.connect_state)(p.ssls[0]);
        (s.accept_state)(p.ssls[1]);
        let mut done = [false; 2];
        for _ in 0..50 {
            for i in 0..2 {
                if done[i] {
                    continue;
                }
                let rc = (s.handshake)(p.ssls[i]);
                if rc == 1 {
                    done[i] = true;
                } else {
                    let e = (s.get_error)(p.ssls[i], rc);
                    if e != 2 && e != 3 {
                        // Not WANT_READ / WANT_WRITE: the handshake failed.
                        return (p, false);
                    }
                }
            }
            if done == [true, true] {
                return (p, true);
            }
        }
        (p, false)
    }
}

#[test]
fn mutual_tls_with_ambient_verification() {
    let f = pki();
    let s = ssl();
    let b = TrustBundles::new().unwrap();
    b.set_pem("example.org", &f["ca.pem"]).unwrap();
    b.set_pem("other.org", &f["other_ca.pem"]).unwrap();
    let web = Credentials::from_pem(&f["leaf.pem"], &f["leaf.key"]).unwrap();
    let other = Credentials::from_pem(&f["other_leaf.pem"], &f["other_leaf.key"]).unwrap();
    let any = SvidVerifier::new(&b, &VerifyOptions::default()).unwrap();
    let expect_web = SvidVerifier::new(
        &b,
        &VerifyOptions {
            expected_ids: vec!["spiffe://example.org/ns/default/sa/web".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let only_example = SvidVerifier::new(
        &b,
        &VerifyOptions {
            trust_domains: vec!["example.org".into()],
            ..Default::default()
        },
    )
    .unwrap();

    // other.org client -> web server, both accepted.
    let (p, ok) = handshake(&s, (&expect_web, &other), (&any, &web));
    assert!(ok, "handshake failed");
    // SAFETY: live SSLs owned by `p`, used from this thread.
    unsafe {
        assert_eq!(
            ssl_peer_id(p.ssls[0]).unwrap().as_str(),
            "spiffe://example.org/ns/default/sa/web"
        );
        assert_eq!(
            ssl_peer_id(p.ssls[1]).unwrap().as_str(),
            "spiffe://other.org/ns/x/sa/y"
        );
        assert!(ssl_verify_error(p.ssls[1]).is_none());
    }
    drop(p);

    // The server only admits example.org: the other.org client is refused.
    let (p, ok) = handshake(&s, (&any, &other), (&only_example, &web));
    assert!(!ok, "a refused client completed the handshake");
    // SAFETY: as above.
    unsafe {
        let e = ssl_verify_error(p.ssls[1]).expect("the server says why");
        assert_eq!(
            (e.code, e.detail),
            (
                sys::AMBIENT_ERR_PERMISSION_DENIED,
                svid_error::TRUST_DOMAIN_NOT_ALLOWED
            )
        );
        assert_eq!(
            ssl_peer_id(p.ssls[1]).unwrap_err().code,
            sys::AMBIENT_ERR_NOT_FOUND
        );
    }
    drop(p);

    // The client expects web but the server presents other.org.
    let (p, ok) = handshake(&s, (&expect_web, &web), (&any, &other));
    assert!(!ok);
    // SAFETY: as above.
    unsafe {
        let e = ssl_verify_error(p.ssls[0]).expect("the client says why");
        assert_eq!(e.detail, svid_error::UNEXPECTED_IDENTITY);
    }
}
