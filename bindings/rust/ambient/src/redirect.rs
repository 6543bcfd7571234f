//! istio-cni's traffic redirection rules: configure, render, and apply,
//! check or delete them inside a network namespace; the host probe sets.
use std::os::raw::{c_char, c_int};
use std::ptr;

use ambient_sys as sys;

use crate::identity::{check, cstring, lent};
use crate::netns::Netns;
use crate::Error;

/// How rules are rendered and applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// iptables-restore payloads (nft or legacy iptables).
    Iptables,
    /// Native nftables (inet tables istio-ambient-*).
    Nftables,
}

/// A redirect rule configuration, starting from istio-cni's defaults
/// (iptables, in-pod rules, IPv4 only, DNS capture on). `Send + Sync`:
/// render/apply/check/delete take `&self`, setters take `&mut self`. A
/// failed setter leaves the config as it was.
pub struct RedirectConfig {
    ptr: *mut sys::ambient_redirect_config,
}

// SAFETY: the C ABI allows concurrent reads of a config; writes need
// exclusive use, which `&mut self` guarantees.
unsafe impl Send for RedirectConfig {}
unsafe impl Sync for RedirectConfig {}

fn flag(on: bool) -> c_int {
    c_int::from(on)
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RedirectConfig {
    /// A config with istio-cni's production defaults.
    pub fn new() -> RedirectConfig {
        // SAFETY: no preconditions; NULL only when out of memory.
        let ptr = unsafe { sys::ambient_redirect_config_new() };
        assert!(!ptr.is_null(), "ambient: out of memory");
        RedirectConfig { ptr }
    }

    /// Replaces the config with the defaults changed by `ambientctl rules`
    /// flags (--backend, --host, --ipv6, --dns-capture, --pod-dns-capture,
    /// --bypass-inbound, --reroute-interface, --probe-snat-v4,
    /// --probe-snat-v6, --kubelet-uid). Errors: `AMBIENT_ERR_INVALID_ARGUMENT`
    /// naming the bad argument; the config is then unchanged.
    pub fn parse_flags<S: AsRef<str>>(&mut self, args: &[S]) -> Result<(), Error> {
        let owned = args
            .iter()
            .map(|a| cstring(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let argv: Vec<*const c_char> = owned.iter().map(|s| s.as_ptr()).collect();
        let argc = c_int::try_from(argv.len()).map_err(|_| Error {
            code: sys::AMBIENT_ERR_INVALID_ARGUMENT,
            detail: 0,
            message: "too many arguments".into(),
        })?;
        // SAFETY: argv points at argc live NUL-terminated strings.
        unsafe {
            check(sys::ambient_redirect_config_parse_flags(
                self.ptr,
                argc,
                argv.as_ptr(),
            ))
        }
    }

    /// Selects the backend.
    pub fn set_backend(&mut self, backend: Backend) -> Result<(), Error> {
        let b = match backend {
            Backend::Iptables => sys::AMBIENT_REDIRECT_IPTABLES,
            Backend::Nftables => sys::AMBIENT_REDIRECT_NFTABLES,
        };
        // SAFETY: live handle, exclusive use.
        unsafe { check(sys::ambient_redirect_config_set_backend(self.ptr, b)) }
    }

    /// Node-level probe rules (`true`) or in-pod rules (`false`).
    pub fn set_host(&mut self, on: bool) -> Result<(), Error> {
        // SAFETY: live handle, exclusive use.
        unsafe { check(sys::ambient_redirect_config_set_host(self.ptr, flag(on))) }
    }

    /// IPv6 rules and policy routing.
    pub fn set_ipv6(&mut self, on: bool) -> Result<(), Error> {
        // SAFETY: live handle, exclusive use.
        unsafe { check(sys::ambient_redirect_config_set_ipv6(self.ptr, flag(on))) }
    }

    /// Mesh-wide DNS capture.
    pub fn set_dns_capture(&mut self, on: bool) -> Result<(), Error> {
        // SAFETY: live handle, exclusive use.
        unsafe {
            check(sys::ambient_redirect_config_set_dns_capture(
                self.ptr,
                flag(on),
            ))
        }
    }

    /// Per-pod DNS capture override; `None` lets the mesh-wide value apply.
    pub fn set_pod_dns_capture(&mut self, on: Option<bool>) -> Result<(), Error> {
        let v = on.map_or(-1, flag);
        // SAFETY: live handle, exclusive use.
        unsafe {
            check(sys::ambient_redirect_config_set_pod_dns_capture(
                self.ptr, v,
            ))
        }
    }

    /// Ingress mode (no inbound capture).
    pub fn set_bypass_inbound(&mut self, on: bool) -> Result<(), Error> {
        // SAFETY: live handle, exclusive use.
        unsafe {
            check(sys::ambient_redirect_config_set_bypass_inbound(
                self.ptr,
                flag(on),
            ))
        }
    }

    /// Adds an interface whose inbound TCP is redirected as outbound.
    pub fn add_reroute_interface(&mut self, name: &str) -> Result<(), Error> {
        let s = cstring(name)?;
        // SAFETY: live handle and string.
        unsafe {
            check(sys::ambient_redirect_config_add_reroute_interface(
                self.ptr,
                s.as_ptr(),
            ))
        }
    }

    /// The IPv4 address kubelet probes are SNATed to.
    pub fn set_probe_snat_v4(&mut self, addr: &str) -> Result<(), Error> {
        let s = cstring(addr)?;
        // SAFETY: live handle and string.
        unsafe {
            check(sys::ambient_redirect_config_set_probe_snat_v4(
                self.ptr,
                s.as_ptr(),
            ))
        }
    }

    /// The IPv6 address kubelet probes are SNATed to.
    pub fn set_probe_snat_v6(&mut self, addr: &str) -> Result<(), Error> {
        let s = cstring(addr)?;
        // SAFETY: live handle and string.
        unsafe {
            check(sys::ambient_redirect_config_set_probe_snat_v6(
                self.ptr,
                s.as_ptr(),
            ))
        }
    }

    /// The kubelet UID matched by the nftables host rule.
    pub fn set_kubelet_uid(&mut self, uid: u32) -> Result<(), Error> {
        // SAFETY: live handle, exclusive use.
        unsafe { check(sys::ambient_redirect_config_set_kubelet_uid(self.ptr, uid)) }
    }

    /// The rules as istio-cni would feed them to iptables-restore (IPv4 then
    /// IPv6) or nft. Nothing on the system is touched.
    pub fn render(&self) -> Result<String, Error> {
        // The text is copied into our buffer: ask for its length, then fetch it.
        let mut len = 0usize;
        // SAFETY: live handle; a NULL buffer of capacity 0 asks for the length.
        unsafe {
            check(sys::ambient_redirect_render(
                self.ptr,
                ptr::null_mut(),
                0,
                &mut len,
            ))?
        };
        let mut buf = vec![0u8; len + 1];
        let mut again = 0usize;
        // SAFETY: live handle; buf has buf.len() bytes.
        unsafe {
            check(sys::ambient_redirect_render(
                self.ptr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut again,
            ))?
        };
        buf.truncate(again.min(len));
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Installs the rules (and, in-pod, the fwmark policy routing) in
    /// `netns` ([`Netns::open`] opens one by name, path or descriptor). All
    /// or nothing. Needs root. Errors: `AMBIENT_ERR_PERMISSION_DENIED`,
    /// `AMBIENT_ERR_FAILED_PRECONDITION` (rules refused).
    pub fn apply(&self, netns: &Netns) -> Result<(), Error> {
        // SAFETY: live handles, borrowed for the call.
        unsafe { check(sys::ambient_redirect_apply(self.ptr, netns.as_ptr())) }
    }

    /// The differences between `netns` and the expected rules, one line
    /// each; empty when there is no drift. Nothing is changed.
    pub fn check(&self, netns: &Netns) -> Result<Vec<String>, Error> {
        let mut d = ptr::null_mut();
        // SAFETY: live handles; d is owned on success.
        unsafe {
            check(sys::ambient_redirect_check(
                self.ptr,
                netns.as_ptr(),
                &mut d,
            ))?;
            Ok(take_drift(d))
        }
    }

    /// Removes from `netns` exactly what `apply` installs for this backend;
    /// removing what is not there is not an error.
    pub fn delete(&self, netns: &Netns) -> Result<(), Error> {
        // SAFETY: live handles, borrowed for the call.
        unsafe { check(sys::ambient_redirect_delete(self.ptr, netns.as_ptr())) }
    }

    // ---- Host probe sets ----
    //
    // With host rules (`set_host(true)`) kubelet's probes are SNATed only
    // when they go to an enrolled pod: one whose address is a member of a
    // probe set (ipsets istio-inpod-probes-v4/-v6 for iptables, the
    // nftables sets of those names in table inet istio-ambient-nat).
    // `apply` with a host config creates the sets; the methods below change
    // and read their members in the node's namespace for this backend.

    /// Adds the pod address `address` (IPv4 or IPv6; IPv4-mapped IPv6 counts
    /// as IPv4) with the UID `pod_uid` to the probe set of its family in
    /// `netns`; a member already there gets the new UID. Needs root.
    /// Errors: `AMBIENT_ERR_INVALID_ARGUMENT` (bad address, IPv6 with IPv6
    /// off, an empty or malformed UID), `AMBIENT_ERR_NOT_FOUND` (no set: the
    /// host rules were not applied), `AMBIENT_ERR_PERMISSION_DENIED`. On
    /// error the set is unchanged.
    pub fn probe_add(&self, netns: &Netns, address: &str, pod_uid: &str) -> Result<(), Error> {
        let (a, u) = (cstring(address)?, cstring(pod_uid)?);
        // SAFETY: live handles and strings.
        unsafe {
            check(sys::ambient_redirect_probe_add(
                self.ptr,
                netns.as_ptr(),
                a.as_ptr(),
                u.as_ptr(),
            ))
        }
    }

    /// Removes `address` from its probe set in `netns` when its UID is
    /// `pod_uid` (any UID for `None`). An absent address is not an error.
    /// Errors: as `probe_add`, plus `AMBIENT_ERR_FAILED_PRECONDITION` naming
    /// the other UID when the address belongs to another pod (nothing is
    /// removed).
    pub fn probe_remove(
        &self,
        netns: &Netns,
        address: &str,
        pod_uid: Option<&str>,
    ) -> Result<(), Error> {
        let a = cstring(address)?;
        let u = pod_uid.map(cstring).transpose()?;
        let up = u.as_ref().map_or(ptr::null(), |u| u.as_ptr());
        // SAFETY: live handles and strings (the UID may be NULL).
        unsafe {
            check(sys::ambient_redirect_probe_remove(
                self.ptr,
                netns.as_ptr(),
                a.as_ptr(),
                up,
            ))
        }
    }

    /// The members of the IPv4 probe set in `netns` and, with IPv6 on, of
    /// the IPv6 set. Errors: `AMBIENT_ERR_NOT_FOUND` (a set does not exist),
    /// `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn probe_list(&self, netns: &Netns) -> Result<Vec<ProbeMember>, Error> {
        let mut p = ptr::null_mut();
        // SAFETY: live handles; p is owned on success.
        unsafe {
            check(sys::ambient_redirect_probe_list(
                self.ptr,
                netns.as_ptr(),
                &mut p,
            ))?;
            Ok(take_probes(p))
        }
    }
}

/// One member of a host probe set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMember {
    /// The pod address, as inet_ntop spells it.
    pub address: String,
    /// The UID of the pod it belongs to ("" when the member has none).
    pub pod_uid: String,
}

/// # Safety
/// `p` must be an owned probe list from libambient.
unsafe fn take_probes(p: *mut sys::ambient_redirect_probes) -> Vec<ProbeMember> {
    let n = sys::ambient_redirect_probes_count(p);
    let out = (0..n)
        .map(|i| ProbeMember {
            address: lent(sys::ambient_redirect_probes_get0_address(p, i)),
            pod_uid: lent(sys::ambient_redirect_probes_get0_pod_uid(p, i)),
        })
        .collect();
    sys::ambient_redirect_probes_free(p);
    out
}

/// # Safety
/// `d` must be an owned drift list from libambient.
unsafe fn take_drift(d: *mut sys::ambient_redirect_drift) -> Vec<String> {
    let n = sys::ambient_redirect_drift_count(d);
    let out = (0..n)
        .map(|i| lent(sys::ambient_redirect_drift_get0(d, i)))
        .collect();
    sys::ambient_redirect_drift_free(d);
    out
}

impl Drop for RedirectConfig {
    fn drop(&mut self) {
        // SAFETY: we own the config.
        unsafe { sys::ambient_redirect_config_free(self.ptr) }
    }
}
