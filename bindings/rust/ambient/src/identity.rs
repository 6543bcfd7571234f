//! SPIFFE identities: IDs, Istio identities, trust bundles, X509-SVID
//! verification and our own credentials.
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::ptr;

use ambient_sys as sys;

use crate::Error;

/// Turns an `ambient_error*` into a `Result`.
///
/// # Safety
/// `err` must be NULL or an owned error from libambient.
pub(crate) unsafe fn check(err: *mut sys::ambient_error) -> Result<(), Error> {
    match Error::take(err) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

pub(crate) fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error {
        code: sys::AMBIENT_ERR_INVALID_ARGUMENT,
        detail: 0,
        message: "string contains a NUL byte".into(),
    })
}

pub(crate) fn lent(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the C ABI returns NUL-terminated strings valid during this call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn bytes(b: &[u8]) -> (*const c_char, usize) {
    (b.as_ptr().cast(), b.len())
}

/// Detail codes (`ambient_spiffe_id_error`) of SPIFFE ID parse failures.
pub mod spiffe_id_error {
    use ambient_sys as sys;
    pub const EMPTY: i32 = sys::AMBIENT_SPIFFE_ID_EMPTY;
    pub const BAD_SCHEME: i32 = sys::AMBIENT_SPIFFE_ID_BAD_SCHEME;
    pub const MISSING_TRUST_DOMAIN: i32 = sys::AMBIENT_SPIFFE_ID_MISSING_TRUST_DOMAIN;
    pub const BAD_TRUST_DOMAIN_CHAR: i32 = sys::AMBIENT_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR;
    pub const BAD_PATH_CHAR: i32 = sys::AMBIENT_SPIFFE_ID_BAD_PATH_CHAR;
    pub const EMPTY_SEGMENT: i32 = sys::AMBIENT_SPIFFE_ID_EMPTY_SEGMENT;
    pub const DOT_SEGMENT: i32 = sys::AMBIENT_SPIFFE_ID_DOT_SEGMENT;
    pub const TRAILING_SLASH: i32 = sys::AMBIENT_SPIFFE_ID_TRAILING_SLASH;
    pub const TOO_LONG: i32 = sys::AMBIENT_SPIFFE_ID_TOO_LONG;
    pub const TRUST_DOMAIN_TOO_LONG: i32 = sys::AMBIENT_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG;
}

/// Detail codes (`ambient_svid_error`) of X509-SVID verification failures.
pub mod svid_error {
    use ambient_sys as sys;
    pub const EMPTY_CHAIN: i32 = sys::AMBIENT_SVID_EMPTY_CHAIN;
    pub const MALFORMED_CERTIFICATE: i32 = sys::AMBIENT_SVID_MALFORMED_CERTIFICATE;
    pub const NO_URI_SAN: i32 = sys::AMBIENT_SVID_NO_URI_SAN;
    pub const MULTIPLE_URI_SANS: i32 = sys::AMBIENT_SVID_MULTIPLE_URI_SANS;
    pub const INVALID_SPIFFE_ID: i32 = sys::AMBIENT_SVID_INVALID_SPIFFE_ID;
    pub const LEAF_ID_WITHOUT_PATH: i32 = sys::AMBIENT_SVID_LEAF_ID_WITHOUT_PATH;
    pub const LEAF_IS_CA: i32 = sys::AMBIENT_SVID_LEAF_IS_CA;
    pub const NO_KEY_USAGE: i32 = sys::AMBIENT_SVID_NO_KEY_USAGE;
    pub const LEAF_KEY_CERT_SIGN: i32 = sys::AMBIENT_SVID_LEAF_KEY_CERT_SIGN;
    pub const LEAF_CRL_SIGN: i32 = sys::AMBIENT_SVID_LEAF_CRL_SIGN;
    pub const NO_DIGITAL_SIGNATURE: i32 = sys::AMBIENT_SVID_NO_DIGITAL_SIGNATURE;
    pub const TRUST_DOMAIN_NOT_ALLOWED: i32 = sys::AMBIENT_SVID_TRUST_DOMAIN_NOT_ALLOWED;
    pub const NO_BUNDLE: i32 = sys::AMBIENT_SVID_NO_BUNDLE;
    pub const EXPIRED: i32 = sys::AMBIENT_SVID_EXPIRED;
    pub const NOT_YET_VALID: i32 = sys::AMBIENT_SVID_NOT_YET_VALID;
    pub const UNTRUSTED: i32 = sys::AMBIENT_SVID_UNTRUSTED;
    pub const BAD_SIGNATURE: i32 = sys::AMBIENT_SVID_BAD_SIGNATURE;
    pub const CHAIN_INVALID: i32 = sys::AMBIENT_SVID_CHAIN_INVALID;
    pub const UNEXPECTED_IDENTITY: i32 = sys::AMBIENT_SVID_UNEXPECTED_IDENTITY;
}

/// A validated SPIFFE ID, `spiffe://trust_domain/path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    id: String,
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    /// Validates `id`. Errors: `AMBIENT_ERR_INVALID_ARGUMENT` with a
    /// [`spiffe_id_error`] detail and a message naming the offset.
    pub fn parse(id: &str) -> Result<SpiffeId, Error> {
        let (p, n) = bytes(id.as_bytes());
        let mut out = ptr::null_mut();
        // SAFETY: p/n describe live bytes; out receives an owned object.
        unsafe {
            check(sys::ambient_spiffe_id_parse(p, n, &mut out))?;
            Ok(Self::take(out))
        }
    }

    /// The allocation-free check; the error's detail is the reason.
    pub fn validate(id: &str) -> Result<(), Error> {
        let (p, n) = bytes(id.as_bytes());
        let mut reason: sys::ambient_spiffe_id_error = 0;
        // SAFETY: p/n describe live bytes.
        let rc = unsafe { sys::ambient_spiffe_id_validate(p, n, &mut reason) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error {
                code: rc,
                detail: reason,
                message: String::new(),
            })
        }
    }

    /// Copies and frees an owned `ambient_spiffe_id`.
    ///
    /// # Safety
    /// `p` must be an owned, non-NULL object from libambient.
    pub(crate) unsafe fn take(p: *mut sys::ambient_spiffe_id) -> SpiffeId {
        let out = SpiffeId {
            id: lent(sys::ambient_spiffe_id_get0_string(p)),
            trust_domain: lent(sys::ambient_spiffe_id_get0_trust_domain(p)),
            path: lent(sys::ambient_spiffe_id_get0_path(p)),
        };
        sys::ambient_spiffe_id_free(p);
        out
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }
    /// The trust domain name, such as "example.org".
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }
    /// The path, "" or "/a/b".
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Istio's view of a SPIFFE ID: `spiffe://TD/ns/NS/sa/SA`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IstioIdentity {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

impl IstioIdentity {
    /// Reads `uri` as ztunnel does (parts unchecked, may be empty). Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT`.
    pub fn parse(uri: &str) -> Result<IstioIdentity, Error> {
        let (p, n) = bytes(uri.as_bytes());
        let mut out = ptr::null_mut();
        // SAFETY: p/n are live; `out` is owned on success and freed here.
        unsafe {
            check(sys::ambient_istio_identity_parse(p, n, &mut out))?;
            let id = IstioIdentity {
                trust_domain: lent(sys::ambient_istio_identity_get0_trust_domain(out)),
                namespace: lent(sys::ambient_istio_identity_get0_namespace(out)),
                service_account: lent(sys::ambient_istio_identity_get0_service_account(out)),
            };
            sys::ambient_istio_identity_free(out);
            Ok(id)
        }
    }
}

/// The X.509 authorities of trust domains. Updates swap in a new snapshot
/// atomically; verifiers made from these bundles see them. `Send + Sync`.
pub struct TrustBundles {
    ptr: *mut sys::ambient_trust_bundles,
}

// SAFETY: bundles are internally synchronised (documented any-thread).
unsafe impl Send for TrustBundles {}
unsafe impl Sync for TrustBundles {}

impl TrustBundles {
    /// An empty set. Errors: `AMBIENT_ERR_FAILED_PRECONDITION` when the TLS
    /// library bound to the process is not libambient's.
    pub fn new() -> Result<TrustBundles, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: out receives an owned object on success.
        unsafe { check(sys::ambient_trust_bundles_new(&mut out))? };
        Ok(TrustBundles { ptr: out })
    }

    /// Makes the CERTIFICATE blocks of `pem` the authorities of
    /// `trust_domain` (name or SPIFFE ID). On error nothing changes.
    pub fn set_pem(&self, trust_domain: &str, pem: &[u8]) -> Result<(), Error> {
        let td = cstring(trust_domain)?;
        let (p, n) = bytes(pem);
        // SAFETY: all pointers are live for the call.
        unsafe {
            check(sys::ambient_trust_bundles_set_pem(
                self.ptr,
                td.as_ptr(),
                p,
                n,
            ))
        }
    }

    /// `set_pem` for a SPIFFE trust bundle (JWK Set).
    pub fn set_spiffe_json(&self, trust_domain: &str, json: &[u8]) -> Result<(), Error> {
        let td = cstring(trust_domain)?;
        let (p, n) = bytes(json);
        // SAFETY: all pointers are live for the call.
        unsafe {
            check(sys::ambient_trust_bundles_set_spiffe_json(
                self.ptr,
                td.as_ptr(),
                p,
                n,
            ))
        }
    }

    /// Replaces all trust domains with those of a SPIFFE bundle map,
    /// `{"trust_domains": {"td": bundle}}`. On error nothing changes.
    pub fn set_bundle_map_json(&self, json: &[u8]) -> Result<(), Error> {
        let (p, n) = bytes(json);
        // SAFETY: all pointers are live for the call.
        unsafe {
            check(sys::ambient_trust_bundles_set_bundle_map_json(
                self.ptr, p, n,
            ))
        }
    }

    /// Drops `trust_domain`. Errors: `AMBIENT_ERR_NOT_FOUND`.
    pub fn remove(&self, trust_domain: &str) -> Result<(), Error> {
        let td = cstring(trust_domain)?;
        // SAFETY: live pointers.
        unsafe { check(sys::ambient_trust_bundles_remove(self.ptr, td.as_ptr())) }
    }

    /// How many trust domains have a bundle.
    pub fn len(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::ambient_trust_bundles_count(self.ptr) }
    }

    /// Whether no trust domain has a bundle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for TrustBundles {
    fn drop(&mut self) {
        // SAFETY: we own this reference.
        unsafe { sys::ambient_trust_bundles_free(self.ptr) }
    }
}

/// The policy of an [`SvidVerifier`]. The default accepts any identity of a
/// trust domain that has a bundle, at the system time.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// When not empty, the SPIFFE IDs the peer may have.
    pub expected_ids: Vec<String>,
    /// When not empty, the trust domains the peer may be in.
    pub trust_domains: Vec<String>,
    /// When set, the verification time in Unix seconds.
    pub time: Option<i64>,
    /// When set (and `time` is not), the clock verifiers ask for the time,
    /// from whichever thread verifies.
    pub clock: Option<VerifyClock>,
}

/// A clock for [`VerifyOptions::clock`]: returns the time in Unix seconds.
/// Verifiers made with it (also ones installed on an SSL_CTX) keep it alive;
/// it is dropped when the last of them is gone. A panic in it is caught and
/// reads as time 0 (every certificate then looks not yet valid).
#[derive(Clone)]
pub struct VerifyClock(pub std::sync::Arc<dyn Fn() -> i64 + Send + Sync>);

impl VerifyClock {
    /// Wraps `f` as a clock.
    pub fn new(f: impl Fn() -> i64 + Send + Sync + 'static) -> VerifyClock {
        VerifyClock(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for VerifyClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyClock(..)")
    }
}

type ClockFn = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

unsafe extern "C" fn clock_trampoline(user_data: *mut c_void) -> i64 {
    // SAFETY: user_data is the Box<ClockFn> made in SvidVerifier::new, alive
    // until clock_free.
    let f = &*(user_data as *const ClockFn);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())).unwrap_or(0)
}

unsafe extern "C" fn clock_free(user_data: *mut c_void) {
    // SAFETY: made by Box::into_raw in SvidVerifier::new; libambient calls
    // this exactly once.
    let b = Box::from_raw(user_data as *mut ClockFn);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(b)));
}

/// Checks X509-SVID chains against trust bundles and a policy. `Send + Sync`.
pub struct SvidVerifier {
    ptr: *mut sys::ambient_svid_verifier,
}

// SAFETY: verifiers are immutable and documented any-thread.
unsafe impl Send for SvidVerifier {}
unsafe impl Sync for SvidVerifier {}

struct OptionsGuard(*mut sys::ambient_verify_options);
impl Drop for OptionsGuard {
    fn drop(&mut self) {
        // SAFETY: owned.
        unsafe { sys::ambient_verify_options_free(self.0) }
    }
}

impl SvidVerifier {
    /// A verifier reading `bundles` (kept alive by the verifier even after
    /// they are dropped). Errors: `AMBIENT_ERR_INVALID_ARGUMENT` for a bad
    /// expected ID (with a [`spiffe_id_error`] detail) or trust domain.
    pub fn new(bundles: &TrustBundles, options: &VerifyOptions) -> Result<SvidVerifier, Error> {
        // SAFETY: no arguments; the owned object (or NULL) is freed by the guard.
        let o = OptionsGuard(unsafe { sys::ambient_verify_options_new() });
        if o.0.is_null() {
            return Err(Error::out_of_memory());
        }
        for id in &options.expected_ids {
            let (p, n) = bytes(id.as_bytes());
            // SAFETY: live pointers.
            unsafe { check(sys::ambient_verify_options_add_expected_id(o.0, p, n))? };
        }
        for td in &options.trust_domains {
            let td = cstring(td)?;
            // SAFETY: live pointers.
            unsafe {
                check(sys::ambient_verify_options_add_trust_domain(
                    o.0,
                    td.as_ptr(),
                ))?
            };
        }
        if let Some(t) = options.time {
            // SAFETY: live handle.
            unsafe { sys::ambient_verify_options_set_time(o.0, t) };
        } else if let Some(clock) = &options.clock {
            let user: *mut ClockFn = Box::into_raw(Box::new(clock.0.clone()));
            // SAFETY: live handle; libambient owns `user` from here and
            // gives it back to clock_free exactly once.
            unsafe {
                sys::ambient_verify_options_set_clock_owned(
                    o.0,
                    Some(clock_trampoline),
                    user.cast(),
                    Some(clock_free),
                )
            };
        }
        let mut out = ptr::null_mut();
        // SAFETY: live handles; out receives an owned object.
        unsafe { check(sys::ambient_svid_verifier_new(bundles.ptr, o.0, &mut out))? };
        Ok(SvidVerifier { ptr: out })
    }

    /// Checks a PEM chain (leaf first) and returns the peer's SPIFFE ID.
    /// Errors carry a [`svid_error`] detail.
    pub fn verify_pem(&self, pem: &[u8]) -> Result<SpiffeId, Error> {
        let (p, n) = bytes(pem);
        let mut out = ptr::null_mut();
        // SAFETY: live pointers; out is owned on success.
        unsafe {
            check(sys::ambient_svid_verifier_verify_pem(
                self.ptr, p, n, &mut out,
            ))?;
            Ok(SpiffeId::take(out))
        }
    }

    /// `verify_pem` for DER certificates, leaf first.
    pub fn verify_der(&self, certs: &[&[u8]]) -> Result<SpiffeId, Error> {
        let ptrs: Vec<*const u8> = certs.iter().map(|c| c.as_ptr()).collect();
        let lens: Vec<usize> = certs.iter().map(|c| c.len()).collect();
        let mut out = ptr::null_mut();
        // SAFETY: the arrays and the certificates they point at are live.
        unsafe {
            check(sys::ambient_svid_verifier_verify_der(
                self.ptr,
                ptrs.as_ptr(),
                lens.as_ptr(),
                certs.len(),
                &mut out,
            ))?;
            Ok(SpiffeId::take(out))
        }
    }

    /// The raw handle, lent while `self` lives.
    pub fn as_ptr(&self) -> *const sys::ambient_svid_verifier {
        self.ptr
    }

    /// Makes the `SSL_CTX` `ssl_ctx` verify every peer with this
    /// verifier (a server then requires client certificates); the SSL_CTX
    /// keeps the verifier alive. Call before handshakes start. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` for NULL.
    ///
    /// # Safety
    /// `ssl_ctx` must be NULL or a live `SSL_CTX*` from the same TLS library as libambient
    /// libambient is linked with, not used by another thread meanwhile.
    pub unsafe fn install_on_ssl_ctx(
        &self,
        ssl_ctx: *mut std::os::raw::c_void,
    ) -> Result<(), Error> {
        check(sys::ambient_ssl_ctx_set_verifier(ssl_ctx, self.ptr))
    }

    /// [`SvidVerifier::install_on_ssl_ctx`] for one `SSL*`, overriding its
    /// SSL_CTX's verifier (e.g. per-destination expected identities).
    ///
    /// # Safety
    /// As for `install_on_ssl_ctx`, with a live `SSL*`.
    pub unsafe fn install_on_ssl(&self, ssl: *mut std::os::raw::c_void) -> Result<(), Error> {
        check(sys::ambient_ssl_set_verifier(ssl, self.ptr))
    }
}

impl Drop for SvidVerifier {
    fn drop(&mut self) {
        // SAFETY: we own this reference.
        unsafe { sys::ambient_svid_verifier_free(self.ptr) }
    }
}

/// Our own certificate chain and private key, rotated atomically.
/// `Send + Sync`.
pub struct Credentials {
    ptr: *mut sys::ambient_credentials,
}

// SAFETY: credentials are internally synchronised (documented any-thread).
unsafe impl Send for Credentials {}
unsafe impl Sync for Credentials {}

impl Credentials {
    /// Takes an owned `ambient_credentials*` (non-NULL).
    pub(crate) fn from_owned(ptr: *mut sys::ambient_credentials) -> Credentials {
        Credentials { ptr }
    }

    /// Loads a PEM chain (leaf first) and PEM key (ECDSA P-256 or RSA >=
    /// 2048). Errors: `AMBIENT_ERR_INVALID_ARGUMENT` for unreadable PEM, an
    /// unsupported or mismatched key, or a leaf without one SPIFFE ID.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Credentials, Error> {
        let (cp, cn) = bytes(chain);
        let (kp, kn) = bytes(key);
        let mut out = ptr::null_mut();
        // SAFETY: live pointers; out is owned on success.
        unsafe { check(sys::ambient_credentials_new_pem(cp, cn, kp, kn, &mut out))? };
        Ok(Credentials { ptr: out })
    }

    /// Replaces the pair for new handshakes; on error nothing changes.
    pub fn rotate(&self, chain: &[u8], key: &[u8]) -> Result<(), Error> {
        let (cp, cn) = bytes(chain);
        let (kp, kn) = bytes(key);
        // SAFETY: live pointers.
        unsafe {
            check(sys::ambient_credentials_rotate_pem(
                self.ptr, cp, cn, kp, kn,
            ))
        }
    }

    /// The SPIFFE ID of the current leaf.
    pub fn id(&self) -> Result<SpiffeId, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: live handle; out is owned on success.
        unsafe {
            check(sys::ambient_credentials_get1_id(self.ptr, &mut out))?;
            Ok(SpiffeId::take(out))
        }
    }

    /// The current leaf's notBefore, in Unix seconds.
    pub fn not_before(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::ambient_credentials_not_before(self.ptr) }
    }

    /// The current leaf's notAfter, in Unix seconds.
    pub fn not_after(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::ambient_credentials_not_after(self.ptr) }
    }

    /// When to renew (half-way through the validity), in Unix seconds.
    pub fn refresh_at(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::ambient_credentials_refresh_at(self.ptr) }
    }

    /// The raw handle, lent while `self` lives.
    pub fn as_ptr(&self) -> *mut sys::ambient_credentials {
        self.ptr
    }

    /// Makes every handshake of the `SSL_CTX` `ssl_ctx` present the
    /// current pair (picked per handshake, so rotation applies to new
    /// handshakes); the SSL_CTX keeps the credentials alive. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` for NULL.
    ///
    /// # Safety
    /// `ssl_ctx` must be NULL or a live `SSL_CTX*` from the same TLS library as libambient
    /// libambient is linked with, not used by another thread meanwhile.
    pub unsafe fn install_on_ssl_ctx(
        &self,
        ssl_ctx: *mut std::os::raw::c_void,
    ) -> Result<(), Error> {
        check(sys::ambient_ssl_ctx_use_credentials(ssl_ctx, self.ptr))
    }
}

/// The SPIFFE ID ambient verified for the peer of the `SSL*`
/// `ssl`. Errors: `AMBIENT_ERR_NOT_FOUND` when no ambient verification
/// succeeded on it.
///
/// # Safety
/// `ssl` must be NULL or a live `SSL*`, used from its owning thread.
pub unsafe fn ssl_peer_id(ssl: *const std::os::raw::c_void) -> Result<SpiffeId, Error> {
    let mut out = ptr::null_mut();
    check(sys::ambient_ssl_get1_peer_id(ssl, &mut out))?;
    Ok(SpiffeId::take(out))
}

/// Why ambient rejected the peer of the `SSL*` `ssl` (an error
/// with a [`svid_error`] detail), or `None` when it did not.
///
/// # Safety
/// As for [`ssl_peer_id`].
pub unsafe fn ssl_verify_error(ssl: *const std::os::raw::c_void) -> Option<Error> {
    Error::take(sys::ambient_ssl_get1_verify_error(ssl))
}

impl Drop for Credentials {
    fn drop(&mut self) {
        // SAFETY: we own this reference.
        unsafe { sys::ambient_credentials_free(self.ptr) }
    }
}
