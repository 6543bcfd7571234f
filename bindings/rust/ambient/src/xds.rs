//! Istio's control plane, as separable pieces. A [`CaClient`] gets workload
//! certificates from the Istio CA alone (no xDS) on a [`Loop`]: for each
//! identity acquired it makes a key inside the process, has the CA sign it,
//! checks the answer and renews it half-way through its validity. Like every
//! loop-hosted object, it is used on the thread that runs the loop.
//! [`XdsOptions`] make a [`crate::runtime::NodeProxy`] take its whole mesh
//! from istiod (`NodeProxyOptions::xds`).
use std::ffi::CString;
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ambient_sys as sys;

use crate::identity::{check, cstring, lent, Credentials};
use crate::runtime::Loop;
use crate::{copied_string, Error};

/// How a [`CaClient`] reaches the CA. `None` / `false` keep libambient's
/// defaults (plaintext, server name "istiod.istio-system.svc", no token,
/// cluster id "Kubernetes", 10 s timeout, 24 h validity, impersonation on).
#[derive(Debug, Clone, Default)]
pub struct CaClientOptions {
    /// `"host:port"` or `"[v6]:port"`. Required.
    pub address: String,
    /// Switches TLS on: the CA's certificate must chain to these PEM roots.
    pub roots_pem_file: Option<String>,
    pub server_name: Option<String>,
    /// Sent as `authorization: Bearer` (re-read when it changes).
    pub token_file: Option<String>,
    pub cluster_id: Option<String>,
    /// Timeout of one CreateCertificate call.
    pub timeout: Option<Duration>,
    /// Validity asked of the CA.
    pub validity: Option<Duration>,
    /// Leave out the ImpersonatedIdentity metadata (a workload asking for
    /// its own certificate with its own token).
    pub no_impersonate: bool,
}

/// Where an acquired identity's certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaState {
    /// No certificate yet; the first fetch is queued or in flight.
    Initializing,
    /// A valid certificate is held.
    Available,
    /// The last fetch failed and no valid certificate is held.
    Unavailable,
}

/// What a [`CaCertificate`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaStatus {
    pub state: CaState,
    /// End of the held certificate's validity; `None` when none is held.
    pub not_after: Option<SystemTime>,
    /// Fetches failed in a row.
    pub failures: u32,
    /// Why the last fetch failed ("" when it succeeded).
    pub last_error: String,
}

struct Options(*mut sys::ambient_ca_client_options);

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: made by ambient_ca_client_options_new, freed once.
        unsafe { sys::ambient_ca_client_options_free(self.0) }
    }
}

type Setter = unsafe extern "C" fn(
    *mut sys::ambient_ca_client_options,
    *const c_char,
) -> *mut sys::ambient_error;

fn fill(o: &Options, options: &CaClientOptions) -> Result<(), Error> {
    let address = cstring(&options.address)?;
    // SAFETY: live options; strings are copied.
    unsafe {
        check(sys::ambient_ca_client_options_set_address(
            o.0,
            address.as_ptr(),
        ))?
    };
    let strings: [(&Option<String>, Setter); 4] = [
        (
            &options.roots_pem_file,
            sys::ambient_ca_client_options_set_roots_pem_file,
        ),
        (
            &options.server_name,
            sys::ambient_ca_client_options_set_server_name,
        ),
        (
            &options.token_file,
            sys::ambient_ca_client_options_set_token_file,
        ),
        (
            &options.cluster_id,
            sys::ambient_ca_client_options_set_cluster_id,
        ),
    ];
    for (value, set) in strings {
        if let Some(v) = value {
            let v: CString = cstring(v)?;
            // SAFETY: as above.
            unsafe { check(set(o.0, v.as_ptr()))? };
        }
    }
    if let Some(t) = options.timeout {
        let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1);
        // SAFETY: live options.
        unsafe { check(sys::ambient_ca_client_options_set_timeout_ms(o.0, ms))? };
    }
    if let Some(v) = options.validity {
        // SAFETY: live options.
        unsafe {
            check(sys::ambient_ca_client_options_set_validity_s(
                o.0,
                v.as_secs().max(1),
            ))?
        };
    }
    if options.no_impersonate {
        // SAFETY: live options.
        unsafe { sys::ambient_ca_client_options_set_impersonate(o.0, 0) };
    }
    Ok(())
}

impl Loop {
    /// A CA client on this loop, connecting to the CA at once. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` (no or a malformed address, a roots
    /// file without certificates), `AMBIENT_ERR_NOT_FOUND` /
    /// `AMBIENT_ERR_PERMISSION_DENIED` (an unreadable roots file, named).
    pub fn ca_client(&self, options: &CaClientOptions) -> Result<CaClient<'_>, Error> {
        // SAFETY: no arguments; owned by the guard.
        let o = unsafe { sys::ambient_ca_client_options_new() };
        if o.is_null() {
            return Err(Error::out_of_memory());
        }
        let o = Options(o);
        fill(&o, options)?;
        let mut out = ptr::null_mut();
        // SAFETY: live loop and options (copied by the call).
        unsafe { check(sys::ambient_ca_client_new(self.as_ptr(), o.0, &mut out))? };
        Ok(CaClient {
            ptr: out,
            _loop: PhantomData,
        })
    }
}

/// A client of the Istio CA on a [`Loop`] (see [`Loop::ca_client`]).
/// Dropping it closes the connection; certificates acquired keep their last
/// certificate and are no longer renewed.
pub struct CaClient<'l> {
    ptr: *mut sys::ambient_ca_client,
    _loop: PhantomData<&'l Loop>,
}

impl<'l> CaClient<'l> {
    /// Counts one use of `spiffe_id` in; a new identity is fetched at once
    /// (the answer comes while the loop runs). Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` for an empty or malformed SPIFFE ID.
    pub fn acquire(&self, spiffe_id: &str) -> Result<CaCertificate<'l>, Error> {
        let id = cstring(spiffe_id)?;
        let mut out = ptr::null_mut();
        // SAFETY: live client; the ID is copied.
        unsafe {
            check(sys::ambient_ca_client_acquire(
                self.ptr,
                id.as_ptr(),
                &mut out,
            ))?
        };
        Ok(CaCertificate {
            ptr: out,
            _loop: PhantomData,
        })
    }
}

impl Drop for CaClient<'_> {
    fn drop(&mut self) {
        // SAFETY: owned, freed once, on the loop's thread (not Send).
        unsafe { sys::ambient_ca_client_free(self.ptr) }
    }
}

/// One use of an identity's certificate; the certificate is dropped with its
/// last use (certificates and [`Credentials`] taken from them).
pub struct CaCertificate<'l> {
    ptr: *mut sys::ambient_ca_certificate,
    _loop: PhantomData<&'l Loop>,
}

impl CaCertificate<'_> {
    /// The SPIFFE ID acquired.
    pub fn id(&self) -> String {
        // SAFETY: live handle; the string is lent while it lives.
        lent(unsafe { sys::ambient_ca_certificate_get0_id(self.ptr) })
    }

    /// Where the certificate stands.
    pub fn status(&self) -> CaStatus {
        // SAFETY: live handle, loop thread.
        let (state, not_after, failures) = unsafe {
            (
                sys::ambient_ca_certificate_state(self.ptr),
                sys::ambient_ca_certificate_not_after(self.ptr),
                sys::ambient_ca_certificate_failures(self.ptr),
            )
        };
        CaStatus {
            state: match state {
                sys::AMBIENT_CA_INITIALIZING => CaState::Initializing,
                sys::AMBIENT_CA_AVAILABLE => CaState::Available,
                _ => CaState::Unavailable,
            },
            not_after: u64::try_from(not_after)
                .ok()
                .filter(|s| *s > 0)
                .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            failures,
            // SAFETY: live handle; buf/cap from copied_string.
            last_error: copied_string(|buf, cap| unsafe {
                sys::ambient_ca_certificate_last_error(self.ptr, buf, cap)
            }),
        }
    }

    /// The held chain (PEM, leaf first) and its private key (PEM, PKCS#8):
    /// the key leaves libambient only through this call; prefer
    /// [`CaCertificate::credentials`]. Errors:
    /// `AMBIENT_ERR_FAILED_PRECONDITION` when no certificate is held yet.
    pub fn pem(&self) -> Result<(Vec<u8>, Vec<u8>), Error> {
        Ok((
            self.copied(sys::ambient_ca_certificate_chain_pem)?,
            self.copied(sys::ambient_ca_certificate_key_pem)?,
        ))
    }

    /// The workload trust root the CA's chain ended with (PEM): the trust
    /// bundle of the identity's trust domain. Errors:
    /// `AMBIENT_ERR_FAILED_PRECONDITION` when no certificate is held yet or
    /// the client is gone.
    pub fn root_pem(&self) -> Result<Vec<u8>, Error> {
        self.copied(sys::ambient_ca_certificate_root_pem)
    }

    fn copied(&self, get: PemGetter) -> Result<Vec<u8>, Error> {
        let call = |buf: *mut c_char, cap: usize, n: &mut usize| -> Result<(), Error> {
            // SAFETY: live handle; buf holds cap bytes (or is NULL with 0).
            unsafe { check(get(self.ptr, buf, cap, n)) }
        };
        let mut n = 0usize;
        call(ptr::null_mut(), 0, &mut n)?;
        let mut buf = vec![0u8; n + 1];
        call(buf.as_mut_ptr().cast(), buf.len(), &mut n)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Credentials that always hold the identity's current certificate (for
    /// TLS contexts); they keep the identity acquired while they live.
    pub fn credentials(&self) -> Result<Credentials, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: live handle; out is owned on success.
        unsafe {
            check(sys::ambient_ca_certificate_get1_credentials(
                self.ptr, &mut out,
            ))?
        };
        Ok(Credentials::from_owned(out))
    }
}

type PemGetter = unsafe extern "C" fn(
    *const sys::ambient_ca_certificate,
    *mut c_char,
    usize,
    *mut usize,
) -> *mut sys::ambient_error;

impl Drop for CaCertificate<'_> {
    fn drop(&mut self) {
        // SAFETY: owned, freed once, on the loop's thread (not Send).
        unsafe { sys::ambient_ca_certificate_free(self.ptr) }
    }
}

/// How a node proxy reaches istiod, as ztunnel's settings do
/// (`NodeProxyOptions::xds`): workloads and policies over delta xDS,
/// certificates from the Istio CA (prefetched for this node's pods, renewed;
/// the CA's roots become the trust bundles). Pods handed over are matched to
/// this node's xDS workloads by namespace, name and service account, and open
/// inbound connections are checked again after every policy push. `None`
/// keeps libambient's defaults.
#[derive(Debug, Clone, Default)]
pub struct XdsOptions {
    /// istiod's xDS address, `"host:port"` (XDS_ADDRESS). Required.
    pub address: String,
    /// A separate CA (CA_ADDRESS); `None`: istiod is the CA.
    pub ca_address: Option<String>,
    /// TLS: roots istiod's certificate must chain to.
    pub roots_pem_file: Option<String>,
    pub server_name: Option<String>,
    pub token_file: Option<String>,
    pub cluster_id: Option<String>,
    /// This node (NODE_NAME). Required.
    pub node_name: String,
    /// The proxy's own pod (POD_NAME, POD_NAMESPACE).
    pub pod: Option<(String, String)>,
    /// The proxy's own IP (INSTANCE_IP).
    pub instance_ip: Option<String>,
    /// More node metadata (`ISTIO_META_<KEY>`).
    pub metadata: Vec<(String, String)>,
}

struct XdsOwned(*mut sys::ambient_xds_options);

impl Drop for XdsOwned {
    fn drop(&mut self) {
        // SAFETY: made by ambient_xds_options_new, freed once.
        unsafe { sys::ambient_xds_options_free(self.0) }
    }
}

type XdsSetter =
    unsafe extern "C" fn(*mut sys::ambient_xds_options, *const c_char) -> *mut sys::ambient_error;

/// Gives `x` to the node proxy options `o`.
///
/// # Safety
/// `o` must be a live options object.
pub(crate) unsafe fn set_node_proxy_xds(
    o: *mut sys::ambient_node_proxy_options,
    x: &XdsOptions,
) -> Result<(), Error> {
    let xo = sys::ambient_xds_options_new();
    if xo.is_null() {
        return Err(Error::out_of_memory());
    }
    let xo = XdsOwned(xo);
    let strings: [(Option<&String>, XdsSetter); 7] = [
        (Some(&x.address), sys::ambient_xds_options_set_address),
        (
            x.ca_address.as_ref(),
            sys::ambient_xds_options_set_ca_address,
        ),
        (
            x.roots_pem_file.as_ref(),
            sys::ambient_xds_options_set_roots_pem_file,
        ),
        (
            x.server_name.as_ref(),
            sys::ambient_xds_options_set_server_name,
        ),
        (
            x.token_file.as_ref(),
            sys::ambient_xds_options_set_token_file,
        ),
        (
            x.cluster_id.as_ref(),
            sys::ambient_xds_options_set_cluster_id,
        ),
        (
            x.instance_ip.as_ref(),
            sys::ambient_xds_options_set_instance_ip,
        ),
    ];
    for (value, set) in strings {
        if let Some(v) = value {
            let v = cstring(v)?;
            check(set(xo.0, v.as_ptr()))?;
        }
    }
    if !x.node_name.is_empty() {
        let n = cstring(&x.node_name)?;
        check(sys::ambient_xds_options_set_node_name(xo.0, n.as_ptr()))?;
    }
    if let Some((name, ns)) = &x.pod {
        let (name, ns) = (cstring(name)?, cstring(ns)?);
        check(sys::ambient_xds_options_set_pod(
            xo.0,
            name.as_ptr(),
            ns.as_ptr(),
        ))?;
    }
    for (k, v) in &x.metadata {
        let (k, v) = (cstring(k)?, cstring(v)?);
        check(sys::ambient_xds_options_add_metadata(
            xo.0,
            k.as_ptr(),
            v.as_ptr(),
        ))?;
    }
    check(sys::ambient_node_proxy_options_set_xds(o, xo.0))
}
