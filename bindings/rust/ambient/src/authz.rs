//! L4 authorization policy with ztunnel's semantics.
use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::os::raw::c_char;

use ambient_sys as sys;

use crate::identity::check;
use crate::runtime::Owned;
use crate::Error;

/// The policies in force (Istio `Authorization` resources). `Send + Sync`:
/// checks run on an immutable snapshot while updates swap in a new one.
pub struct PolicyStore {
    ptr: *mut sys::ambient_authz_store,
}

// SAFETY: every C function on a store is documented thread-safe.
unsafe impl Send for PolicyStore {}
unsafe impl Sync for PolicyStore {}

/// The outcome of [`PolicyStore::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why it was denied; empty when allowed.
    pub reason: String,
    /// Key ("ns/name") of the deciding policy, if one decided.
    pub policy: String,
    /// Keys of dry-run policies that matched.
    pub dry_run_hits: Vec<String>,
}

/// A connection to a workload.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub workload_namespace: &'a str,
    /// Keys "ns/name" of the policies selecting the workload.
    pub workload_policies: &'a [&'a str],
    pub src: SocketAddr,
    /// The real destination (pod IP and target port, never 15008).
    pub dst: SocketAddr,
    /// The peer's SPIFFE ID from mTLS; `None` for plaintext.
    pub src_identity: Option<&'a str>,
}

fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error {
        code: sys::AMBIENT_ERR_INVALID_ARGUMENT,
        detail: 0,
        message: "string contains a NUL byte".into(),
    })
}

/// A `sockaddr_in`/`sockaddr_in6` laid out as Linux defines them.
#[repr(C)]
struct SockAddrStorage {
    bytes: [u8; 28],
}

fn to_sockaddr(addr: &SocketAddr) -> SockAddrStorage {
    let mut s = SockAddrStorage { bytes: [0; 28] };
    match addr {
        SocketAddr::V4(a) => {
            s.bytes[0..2].copy_from_slice(&2u16.to_ne_bytes()); // AF_INET
            s.bytes[2..4].copy_from_slice(&a.port().to_be_bytes());
            s.bytes[4..8].copy_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            s.bytes[0..2].copy_from_slice(&10u16.to_ne_bytes()); // AF_INET6
            s.bytes[2..4].copy_from_slice(&a.port().to_be_bytes());
            s.bytes[8..24].copy_from_slice(&a.ip().octets());
        }
    }
    s
}

fn lent(p: *const c_char) -> String {
    // SAFETY: the C ABI never returns NULL from these getters.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl PolicyStore {
    /// An empty store: every connection is allowed.
    pub fn new() -> PolicyStore {
        // SAFETY: no preconditions.
        let ptr = unsafe { sys::ambient_authz_store_new() };
        assert!(!ptr.is_null(), "ambient: out of memory");
        PolicyStore { ptr }
    }

    /// Replaces every policy with those in `json` ({"policies": [...]}, an
    /// array, or one Authorization). On error the store is unchanged.
    pub fn replace_json(&self, json: &str) -> Result<(), Error> {
        // SAFETY: ptr is valid; json is passed with its length.
        let err = unsafe {
            sys::ambient_authz_store_replace_json(self.ptr, json.as_ptr().cast(), json.len())
        };
        unsafe { Error::take(err) }.map_or(Ok(()), Err)
    }

    /// Adds one binary `istio.security.Authorization`, replacing the one with
    /// the same key.
    pub fn upsert_proto(&self, msg: &[u8]) -> Result<(), Error> {
        // SAFETY: ptr is valid; msg is passed with its length.
        let err =
            unsafe { sys::ambient_authz_store_upsert_proto(self.ptr, msg.as_ptr(), msg.len()) };
        unsafe { Error::take(err) }.map_or(Ok(()), Err)
    }

    /// Removes policy `ns/name`; true if it existed.
    pub fn remove(&self, ns: &str, name: &str) -> Result<bool, Error> {
        let (ns, name) = (cstring(ns)?, cstring(name)?);
        // SAFETY: valid pointers for the duration of the call.
        Ok(unsafe { sys::ambient_authz_store_remove(self.ptr, ns.as_ptr(), name.as_ptr()) } == 1)
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        // SAFETY: ptr is valid.
        unsafe { sys::ambient_authz_store_size(self.ptr) }
    }

    /// Whether the store holds no policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides whether the connection in `req` is allowed.
    pub fn check(&self, req: &Request<'_>) -> Result<Decision, Error> {
        let ns = cstring(req.workload_namespace)?;
        let keys: Vec<CString> = req
            .workload_policies
            .iter()
            .map(|k| cstring(k))
            .collect::<Result<_, _>>()?;
        let key_ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
        let id = req.src_identity.map(cstring).transpose()?;
        let (src, dst) = (to_sockaddr(&req.src), to_sockaddr(&req.dst));
        // SAFETY: no arguments; the result is owned by the guard.
        let r = Owned::new(
            unsafe { sys::ambient_authz_request_new() },
            sys::ambient_authz_request_free,
        )?;
        // SAFETY: a live request; every pointer is valid for its call (the
        // strings and addresses are copied or parsed by it).
        unsafe {
            check(sys::ambient_authz_request_set_workload_namespace(
                r.ptr,
                ns.as_ptr(),
            ))?;
            check(sys::ambient_authz_request_set_workload_policies(
                r.ptr,
                if key_ptrs.is_empty() {
                    std::ptr::null()
                } else {
                    key_ptrs.as_ptr()
                },
                key_ptrs.len(),
            ))?;
            check(sys::ambient_authz_request_set_source(
                r.ptr,
                (&src as *const SockAddrStorage).cast(),
            ))?;
            check(sys::ambient_authz_request_set_destination(
                r.ptr,
                (&dst as *const SockAddrStorage).cast(),
            ))?;
            check(sys::ambient_authz_request_set_source_identity(
                r.ptr,
                id.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            ))?;
        }
        // SAFETY: no preconditions.
        let dec = unsafe { sys::ambient_authz_decision_new() };
        assert!(!dec.is_null(), "ambient: out of memory");
        // SAFETY: live store, request and decision.
        let rc = unsafe { sys::ambient_authz_check(self.ptr, r.ptr, dec) };
        let out = if rc < 0 {
            Err(Error {
                code: rc,
                detail: 0,
                message: format!("authz check: {}", crate::strerror(rc)),
            })
        } else {
            // SAFETY: dec is valid until freed below.
            let hits = (0..unsafe { sys::ambient_authz_decision_num_dry_run_hits(dec) })
                .map(|i| lent(unsafe { sys::ambient_authz_decision_get0_dry_run_hit(dec, i) }))
                .collect();
            Ok(Decision {
                allowed: rc == 1,
                reason: lent(unsafe { sys::ambient_authz_decision_get0_reason(dec) }),
                policy: lent(unsafe { sys::ambient_authz_decision_get0_policy(dec) }),
                dry_run_hits: hits,
            })
        };
        // SAFETY: dec was made above and is freed once.
        unsafe { sys::ambient_authz_decision_free(dec) };
        out
    }
}

impl Default for PolicyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PolicyStore {
    fn drop(&mut self) {
        // SAFETY: ptr came from ambient_authz_store_new and is freed once.
        unsafe { sys::ambient_authz_store_free(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: &str = r#"{"policies": [
      {"name": "deny-evil", "namespace": "app", "scope": "NAMESPACE", "action": "DENY",
       "rules": [{"clauses": [{"matches": [{"namespaces": [{"exact": "evil"}]}]}]}]},
      {"name": "allow-front", "namespace": "app", "scope": "WORKLOAD_SELECTOR", "action": "ALLOW",
       "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "cluster.local/ns/front/sa/web"}]}]}]}]}
    ]}"#;

    fn req<'a>(id: Option<&'a str>, sel: &'a [&'a str], src: &str, dst: &str) -> Request<'a> {
        Request {
            workload_namespace: "app",
            workload_policies: sel,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_identity: id,
        }
    }

    #[test]
    fn decides_like_ztunnel() {
        let store = PolicyStore::new();
        store.replace_json(POLICIES).unwrap();
        let sel = ["app/allow-front"];
        let d = store
            .check(&req(
                Some("spiffe://cluster.local/ns/front/sa/web"),
                &sel,
                "198.18.0.1:1",
                "198.18.0.2:9080",
            ))
            .unwrap();
        assert!(d.allowed);
        assert_eq!(d.policy, "app/allow-front");
        let d = store
            .check(&req(
                Some("spiffe://cluster.local/ns/x/sa/y"),
                &sel,
                "[2001:db8::1]:1",
                "[2001:db8::2]:9080",
            ))
            .unwrap();
        assert!(!d.allowed);
        assert_eq!(d.reason, "allow policies exist, but none allowed");
        let d = store
            .check(&req(
                Some("spiffe://cluster.local/ns/evil/sa/y"),
                &[],
                "198.18.0.1:1",
                "198.18.0.2:9080",
            ))
            .unwrap();
        assert_eq!(d.reason, "explicitly denied by app/deny-evil");
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        let store = PolicyStore::new();
        store.replace_json(POLICIES).unwrap();
        let e = store
            .replace_json(r#"{"policies": [{"name": "x", "bogus": 1}]}"#)
            .unwrap_err();
        assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
        assert_eq!(store.len(), 2);
        let e = store
            .check(&req(
                Some("spiffe://bad"),
                &[],
                "198.18.0.1:1",
                "198.18.0.2:2",
            ))
            .unwrap_err();
        assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
        assert!(store.upsert_proto(&[0xff]).is_err());
        assert!(store.remove("app", "deny-evil").unwrap());
        assert!(!store.remove("app", "deny-evil").unwrap());
    }

    #[test]
    fn shared_across_threads() {
        let store = std::sync::Arc::new(PolicyStore::new());
        store.replace_json(POLICIES).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let d = s
                            .check(&req(
                                Some("spiffe://cluster.local/ns/evil/sa/y"),
                                &[],
                                "198.18.0.1:1",
                                "198.18.0.2:2",
                            ))
                            .unwrap();
                        assert!(!d.allowed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
