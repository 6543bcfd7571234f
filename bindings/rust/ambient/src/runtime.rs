//! libambient's optional epoll runtime and its turnkey HBONE pieces: a
//! server, a pooled client and a forwarder. Everything runs on the thread
//! that runs the [`Loop`]; objects made on a loop borrow it, so the loop
//! outlives them. (A proxy with its own event loop drives
//! [`crate::hbone::Connection`] instead.)
use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::CString;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::time::Duration;

use ambient_sys as sys;

use crate::hbone::TlsContext;
use crate::identity::{check, cstring, lent};
use crate::netns::{log_trampoline, LogFn};
use crate::{copied_string, Error};

/// An option object of the C ABI, freed on drop.
pub(crate) struct Owned<T> {
    pub(crate) ptr: *mut T,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    /// Takes the result of an `_new(void)` call: NULL is out of memory.
    pub(crate) fn new(ptr: *mut T, free: unsafe extern "C" fn(*mut T)) -> Result<Owned<T>, Error> {
        if ptr.is_null() {
            return Err(Error::out_of_memory());
        }
        Ok(Owned { ptr, free })
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: made by the matching _new call, freed once.
        unsafe { (self.free)(self.ptr) }
    }
}

/// An `ambient_hbone_target` of `via`, `authority` and `expected`.
fn hbone_target(
    via: &str,
    authority: &str,
    expected: &[&str],
) -> Result<Owned<sys::ambient_hbone_target>, Error> {
    // SAFETY: no arguments; the result is owned by the guard.
    let t = Owned::new(
        unsafe { sys::ambient_hbone_target_new() },
        sys::ambient_hbone_target_free,
    )?;
    let (v, a) = (cstring(via)?, cstring(authority)?);
    // SAFETY: live object and strings (copied by the calls).
    unsafe {
        check(sys::ambient_hbone_target_set_via(t.ptr, v.as_ptr()))?;
        check(sys::ambient_hbone_target_set_authority(t.ptr, a.as_ptr()))?;
        for id in expected {
            let id = cstring(id)?;
            check(sys::ambient_hbone_target_add_expected(t.ptr, id.as_ptr()))?;
        }
    }
    Ok(t)
}

/// An `ambient_workload_info` with `fields` set (None: unknown),
/// `addresses` and `hbone`.
pub(crate) fn workload_info(
    fields: &[(sys::ambient_workload_field, Option<&str>)],
    addresses: &[String],
    hbone: bool,
) -> Result<Owned<sys::ambient_workload_info>, Error> {
    // SAFETY: no arguments; the result is owned by the guard.
    let w = Owned::new(
        unsafe { sys::ambient_workload_info_new() },
        sys::ambient_workload_info_free,
    )?;
    for (field, value) in fields {
        let value = value.map(cstring).transpose()?;
        // SAFETY: live object; the string (or NULL) is copied.
        unsafe {
            check(sys::ambient_workload_info_set(
                w.ptr,
                *field,
                opt_ptr(&value),
            ))?
        };
    }
    for ip in addresses {
        let ip = cstring(ip)?;
        // SAFETY: live object and string (copied).
        unsafe { check(sys::ambient_workload_info_add_address(w.ptr, ip.as_ptr()))? };
    }
    // SAFETY: live object.
    unsafe { sys::ambient_workload_info_set_hbone(w.ptr, c_int::from(hbone)) };
    Ok(w)
}

fn log_parts(log: Option<Box<LogFn>>) -> (*mut Box<LogFn>, sys::ambient_log_fn) {
    match log {
        None => (ptr::null_mut(), None),
        Some(l) => (Box::into_raw(Box::new(l)), Some(log_trampoline)),
    }
}

/// A single-threaded epoll event loop. `Send` (make it on one thread, run
/// it on another), not `Sync`; [`Loop::stopper`] stops it from any thread.
pub struct Loop {
    ptr: *mut sys::ambient_runtime_loop,
}

// SAFETY: the loop may move between threads while it does not run; all use
// is through &self on one thread at a time (not Sync).
unsafe impl Send for Loop {}

/// Stops a running [`Loop`], or posts work to it, from any thread
/// (borrowed from the loop).
#[derive(Clone, Copy)]
pub struct Stopper<'l> {
    ptr: *mut sys::ambient_runtime_loop,
    _loop: PhantomData<&'l Loop>,
}

// SAFETY: ambient_runtime_loop_stop may be called from any thread; the
// borrow keeps the loop alive.
unsafe impl Send for Stopper<'_> {}
unsafe impl Sync for Stopper<'_> {}

impl Stopper<'_> {
    /// Makes [`Loop::run`] return soon.
    pub fn stop(&self) {
        // SAFETY: the loop outlives the stopper.
        unsafe { sys::ambient_runtime_loop_stop(self.ptr) }
    }

    /// Runs `f` on the loop's thread during a later iteration of
    /// [`Loop::run`] / [`Loop::run_for`] (tasks run in the order posted),
    /// from any thread. A task still queued when the loop is dropped runs
    /// inside the drop instead, so every posted `f` runs exactly once. A
    /// panic in `f` is caught (the loop goes on). Errors:
    /// `AMBIENT_ERR_RESOURCE_EXHAUSTED` (then `f` is dropped unrun).
    pub fn post(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        post_on(self.ptr, Box::new(f))
    }
}

type Task = Box<dyn FnOnce() + Send + 'static>;

fn post_on(ptr: *mut sys::ambient_runtime_loop, f: Task) -> Result<(), Error> {
    let user = Box::into_raw(Box::new(f));
    // SAFETY: live loop (borrowed by the caller); `user` is reclaimed by
    // the trampoline, which libambient calls exactly once when it returns 0.
    let rc = unsafe { sys::ambient_runtime_loop_post(ptr, Some(task_trampoline), user.cast()) };
    if rc < 0 {
        // SAFETY: not queued: still ours.
        drop(unsafe { Box::from_raw(user) });
        return Err(crate::hbone::code_error(rc));
    }
    Ok(())
}

unsafe extern "C" fn task_trampoline(user: *mut c_void) {
    // SAFETY: made by post_on from a Box<Task>; called once.
    let f = Box::from_raw(user.cast::<Task>());
    let _ = catch_unwind(AssertUnwindSafe(f));
}

impl Loop {
    /// The C handle, for the objects other modules make on the loop.
    pub(crate) fn as_ptr(&self) -> *mut sys::ambient_runtime_loop {
        self.ptr
    }

    /// A new loop. Errors: `AMBIENT_ERR_INTERNAL` (epoll/eventfd).
    pub fn new() -> Result<Loop, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: out-parameter only.
        unsafe { check(sys::ambient_runtime_loop_new(&mut out))? };
        Ok(Loop { ptr: out })
    }

    /// Dispatches events on this thread until stopped.
    pub fn run(&self) {
        // SAFETY: live handle, used from this thread only.
        unsafe { sys::ambient_runtime_loop_run(self.ptr) }
    }

    /// Dispatches events for at most `d` (or until stopped).
    pub fn run_for(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        // SAFETY: live handle.
        unsafe { sys::ambient_runtime_loop_run_for(self.ptr, ms) }
    }

    /// Runs `f` on the loop's thread during a later iteration (see
    /// [`Stopper::post`], which does the same from other threads).
    pub fn post(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        post_on(self.ptr, Box::new(f))
    }

    /// A handle that stops the loop from any thread.
    pub fn stopper(&self) -> Stopper<'_> {
        Stopper {
            ptr: self.ptr,
            _loop: PhantomData,
        }
    }

    /// An HBONE server listening on `listen` ("ip:port", `"[v6]:port"`; port
    /// 0 picks one) with the server-role `tls`. Only the client identities
    /// in `allow` may open tunnels (empty: every verified client); others
    /// get 401. `log` gets access-log lines ("connection complete ...",
    /// component "access") and other lines, on the loop thread. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` (bad address, client-role tls),
    /// `AMBIENT_ERR_ALREADY_EXISTS` (address in use),
    /// `AMBIENT_ERR_PERMISSION_DENIED` (privileged port).
    pub fn server(
        &self,
        tls: &TlsContext,
        listen: &str,
        allow: &[&str],
        log: Option<Box<LogFn>>,
    ) -> Result<Server<'_>, Error> {
        // SAFETY: no arguments; the result is owned by the guard.
        let o = Owned::new(
            unsafe { sys::ambient_hbone_server_options_new() },
            sys::ambient_hbone_server_options_free,
        )?;
        let l = cstring(listen)?;
        // SAFETY: live object and strings (copied).
        unsafe {
            check(sys::ambient_hbone_server_options_set_listen(
                o.ptr,
                l.as_ptr(),
            ))?;
            for id in allow {
                let id = cstring(id)?;
                check(sys::ambient_hbone_server_options_add_allow(
                    o.ptr,
                    id.as_ptr(),
                ))?;
            }
        }
        let (log, log_fn) = log_parts(log);
        // SAFETY: live object; `log` outlives the server (freed in Drop
        // after it, or here on failure).
        unsafe { sys::ambient_hbone_server_options_set_log(o.ptr, log_fn, log.cast()) };
        let mut out = ptr::null_mut();
        // SAFETY: live handles and options (copied by the call).
        let err = unsafe {
            Error::take(sys::ambient_hbone_server_new(
                self.ptr, tls.ptr, o.ptr, &mut out,
            ))
        };
        if let Some(e) = err {
            if !log.is_null() {
                // SAFETY: from Box::into_raw above, never handed out.
                drop(unsafe { Box::from_raw(log) });
            }
            return Err(e);
        }
        Ok(Server {
            ptr: out,
            log,
            _loop: PhantomData,
        })
    }

    /// A pooled HBONE client with the client-role `tls`; `log` as for
    /// [`Loop::server`]. Errors: `AMBIENT_ERR_INVALID_ARGUMENT` (a
    /// server-role tls).
    pub fn client(&self, tls: &TlsContext, log: Option<Box<LogFn>>) -> Result<Client<'_>, Error> {
        // SAFETY: no arguments; the result is owned by the guard.
        let o = Owned::new(
            unsafe { sys::ambient_hbone_client_options_new() },
            sys::ambient_hbone_client_options_free,
        )?;
        let (log, log_fn) = log_parts(log);
        // SAFETY: live object; `log` outlives the client (freed in Drop
        // after it, or here on failure).
        unsafe { sys::ambient_hbone_client_options_set_log(o.ptr, log_fn, log.cast()) };
        let mut out = ptr::null_mut();
        // SAFETY: live handles and options (copied by the call).
        let err = unsafe {
            Error::take(sys::ambient_hbone_client_new(
                self.ptr, tls.ptr, o.ptr, &mut out,
            ))
        };
        if let Some(e) = err {
            if !log.is_null() {
                // SAFETY: from Box::into_raw above, never handed out.
                drop(unsafe { Box::from_raw(log) });
            }
            return Err(e);
        }
        Ok(Client {
            ptr: out,
            log,
            pending: Rc::new(RefCell::new(HashSet::new())),
            _loop: PhantomData,
        })
    }

    /// A TCP listener on `listen` whose every connection becomes a tunnel
    /// through `client` to `authority` via the server at `via`, expecting
    /// one of `expected`. Errors: `AMBIENT_ERR_INVALID_ARGUMENT`,
    /// `AMBIENT_ERR_ALREADY_EXISTS`, `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn forwarder<'l>(
        &'l self,
        client: &'l Client<'l>,
        listen: &str,
        via: &str,
        authority: &str,
        expected: &[&str],
    ) -> Result<Forwarder<'l>, Error> {
        let l = cstring(listen)?;
        let target = hbone_target(via, authority, expected)?;
        let mut out = ptr::null_mut();
        // SAFETY: live handles, string and target (copied by the call); the
        // borrow keeps the client alive.
        unsafe {
            check(sys::ambient_hbone_forwarder_new(
                self.ptr,
                client.ptr,
                l.as_ptr(),
                target.ptr,
                &mut out,
            ))?;
        }
        Ok(Forwarder {
            ptr: out,
            _loop: PhantomData,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // SAFETY: every object made on the loop borrowed it, so all are gone.
        unsafe { sys::ambient_runtime_loop_free(self.ptr) }
    }
}

/// A turnkey HBONE server (see [`Loop::server`]).
pub struct Server<'l> {
    ptr: *mut sys::ambient_hbone_server,
    log: *mut Box<LogFn>,
    _loop: PhantomData<&'l Loop>,
}

/// One of the limits that keep an HBONE server in service under floods
/// (`ambient_hbone_limit`); see [`Server::set_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Live connections (default 4096); at the cap new ones wait in the backlog.
    MaxConnections,
    /// Connections still in their TLS handshake (default 256).
    MaxHandshakes,
    /// Milliseconds after which a connection that sent nothing is closed
    /// (default 3000; for connections accepted afterwards).
    SilentTimeoutMs,
    /// CONNECTs with an upstream connect in flight, per connection (default 100).
    MaxPendingDialsPerConnection,
    /// The same per client identity (default 1000); the excess gets 503.
    MaxPendingDialsPerIdentity,
}

impl Limit {
    fn raw(self) -> sys::ambient_hbone_limit {
        match self {
            Limit::MaxConnections => sys::AMBIENT_HBONE_MAX_CONNECTIONS,
            Limit::MaxHandshakes => sys::AMBIENT_HBONE_MAX_HANDSHAKES,
            Limit::SilentTimeoutMs => sys::AMBIENT_HBONE_SILENT_TIMEOUT_MS,
            Limit::MaxPendingDialsPerConnection => {
                sys::AMBIENT_HBONE_MAX_PENDING_DIALS_PER_CONNECTION
            }
            Limit::MaxPendingDialsPerIdentity => sys::AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY,
        }
    }
}

impl Server<'_> {
    /// Sets one limit to `value` (0 = no limit); the others keep theirs and
    /// lowering a cap closes nothing. Errors: `InvalidArgument` for a value
    /// the limit cannot take (a timeout over 2^31 - 1 ms).
    pub fn set_limit(&self, which: Limit, value: u64) -> Result<(), Error> {
        // SAFETY: live handle; the error, if any, is ours to take.
        unsafe {
            check(sys::ambient_hbone_server_set_limit(
                self.ptr,
                which.raw(),
                value,
            ))
        }
    }

    /// The bound "ip:port".
    pub fn address(&self) -> String {
        // SAFETY: live handle.
        lent(unsafe { sys::ambient_hbone_server_get0_address(self.ptr) })
    }

    /// The istio_tcp_* counters in Prometheus text format.
    pub fn metrics(&self) -> String {
        // SAFETY: live handle; the buffer (NULL of length 0 to ask for the
        // size) has the length given.
        copied_string(|buf, cap| unsafe { sys::ambient_hbone_server_metrics(self.ptr, buf, cap) })
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the server; once freed its log sink is not called.
        unsafe {
            sys::ambient_hbone_server_free(self.ptr);
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
    }
}

/// How a tunnel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelResult {
    /// The CONNECT response status (0 if none came).
    pub http_status: u16,
    /// `Ok` for a clean end.
    pub result: Result<(), Error>,
}

type DoneFn = Box<dyn FnOnce(TunnelResult)>;
type PendingSet = Rc<RefCell<HashSet<usize>>>;

struct Pending {
    done: DoneFn,
    set: PendingSet,
}

unsafe extern "C" fn done_trampoline(
    user: *mut c_void,
    code: c_int,
    http_status: c_int,
    message: *const c_char,
) {
    // SAFETY: `user` came from Box::into_raw in `tunnel` and is called once.
    let p = Box::from_raw(user.cast::<Pending>());
    if let Ok(mut s) = p.set.try_borrow_mut() {
        s.remove(&(user as usize));
    }
    let r = TunnelResult {
        http_status: u16::try_from(http_status).unwrap_or(0),
        result: if code == sys::AMBIENT_OK {
            Ok(())
        } else {
            Err(Error {
                code,
                detail: 0,
                message: lent(message),
            })
        },
    };
    let done = p.done;
    let _ = catch_unwind(AssertUnwindSafe(move || done(r)));
}

/// A pooled HBONE client (see [`Loop::client`]).
pub struct Client<'l> {
    ptr: *mut sys::ambient_hbone_client,
    log: *mut Box<LogFn>,
    pending: PendingSet,
    _loop: PhantomData<&'l Loop>,
}

impl Client<'_> {
    /// Relays `input` (read) and `output` (written; the same descriptor for
    /// a socket) through a new stream to `authority` via the server at
    /// `via`, whose identity must be one of `expected` (empty: any verified
    /// identity). `done` learns the outcome once, on the loop thread (with
    /// `AMBIENT_ERR_CANCELLED` if the client goes first); the descriptors
    /// must stay open until then. Errors: `AMBIENT_ERR_INVALID_ARGUMENT`.
    pub fn tunnel(
        &self,
        via: &str,
        authority: &str,
        expected: &[&str],
        input: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
        done: impl FnOnce(TunnelResult) + 'static,
    ) -> Result<(), Error> {
        // The library's own address checks, so a bad address is refused with
        // its reason (the tunnel call itself only returns a code).
        crate::address::SocketAddress::parse(via).map_err(|mut e| {
            e.message = format!(
                "via {via:?}: {} (a numeric IP:port is needed, e.g. 127.0.0.1:15008 or \
                 [::1]:15008; host names are not resolved)",
                e.message
            );
            e
        })?;
        crate::address::check_authority(authority).map_err(|mut e| {
            e.message = format!(
                "authority {authority:?}: {} (host:port with a port from 1 to 65535)",
                e.message
            );
            e
        })?;
        let target = hbone_target(via, authority, expected)?;
        let user = Box::into_raw(Box::new(Pending {
            done: Box::new(done),
            set: self.pending.clone(),
        }));
        self.pending.borrow_mut().insert(user as usize);
        // SAFETY: live handle and strings; `user` is reclaimed by the
        // trampoline, by the failure path below, or in Drop.
        let rc = unsafe {
            sys::ambient_hbone_client_tunnel(
                self.ptr,
                target.ptr,
                input.as_raw_fd(),
                output.as_raw_fd(),
                Some(done_trampoline),
                user.cast(),
            )
        };
        if rc < 0 {
            if self.pending.borrow_mut().remove(&(user as usize)) {
                // SAFETY: not called back (still in the set): ours to free.
                drop(unsafe { Box::from_raw(user) });
            }
            let mut e = crate::hbone::code_error(rc);
            e.message = format!(
                "cannot tunnel to {authority:?} via {via:?}: {}",
                crate::strerror(rc)
            );
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the client. libambient calls `done` exactly once
        // for every accepted tunnel, with AMBIENT_ERR_CANCELLED now (inside
        // the free: tunnels waiting for a connection) or from the loop's
        // next iteration / its drop (running tunnels): the trampoline
        // reclaims each Pending then, so nothing is finished here.
        unsafe {
            sys::ambient_hbone_client_free(self.ptr);
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
    }
}

/// A TCP listener turning connections into tunnels (see [`Loop::forwarder`]).
pub struct Forwarder<'l> {
    ptr: *mut sys::ambient_hbone_forwarder,
    _loop: PhantomData<&'l Loop>,
}

impl Forwarder<'_> {
    /// The bound "ip:port".
    pub fn address(&self) -> String {
        // SAFETY: live handle.
        lent(unsafe { sys::ambient_hbone_forwarder_get0_address(self.ptr) })
    }
}

impl Drop for Forwarder<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the forwarder; tunnels it made live on the client.
        unsafe { sys::ambient_hbone_forwarder_free(self.ptr) }
    }
}

/// A workload of the mesh as the node proxy knows it; its identity is
/// spiffe://trust_domain/ns/namespace/sa/service_account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeWorkload {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    /// `None`: "default".
    pub service_account: Option<String>,
    /// `None`: "cluster.local".
    pub trust_domain: Option<String>,
    /// Numeric IPs.
    pub addresses: Vec<String>,
    /// Speaks HBONE (else plain TCP to it).
    pub hbone: bool,
}

/// The X509-SVID (PEM chain, leaf first) and key (PEM) of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSvid {
    pub uid: String,
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// What a [`NodeProxy`] knows of the mesh. The default knows nothing and
/// allows everything (no policies).
#[derive(Debug, Clone, Default)]
pub struct NodeProxyOptions {
    pub workloads: Vec<NodeWorkload>,
    /// (trust domain, PEM roots).
    pub trust_bundles: Vec<(String, Vec<u8>)>,
    pub svids: Vec<NodeSvid>,
    /// Istio Authorizations (see [`crate::authz`]).
    pub policies_json: Option<Vec<u8>>,
    /// `Some` switches the DNS proxy on: every captured pod also gets 15053
    /// (UDP and TCP), answering the mesh's names and forwarding the rest to
    /// these upstreams, comma-separated "ip:port" (or bare IPs, port 53);
    /// `Some("")` means the nameservers of this host's /etc/resolv.conf.
    pub dns_upstreams: Option<String>,
    /// `Some` takes the mesh and the pods' certificates from istiod (see
    /// [`crate::xds::XdsOptions`]); `workloads`, `svids` and `policies_json`
    /// must then be empty.
    pub xds: Option<crate::xds::XdsOptions>,
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// # Safety
/// `o` must be a live options object.
unsafe fn fill_node_options(
    o: *mut sys::ambient_node_proxy_options,
    options: &NodeProxyOptions,
) -> Result<(), Error> {
    for w in &options.workloads {
        let info = workload_info(
            &[
                (sys::AMBIENT_WORKLOAD_UID, Some(&w.uid)),
                (sys::AMBIENT_WORKLOAD_NAME, Some(&w.name)),
                (sys::AMBIENT_WORKLOAD_NAMESPACE, Some(&w.namespace)),
                (
                    sys::AMBIENT_WORKLOAD_SERVICE_ACCOUNT,
                    w.service_account.as_deref(),
                ),
                (
                    sys::AMBIENT_WORKLOAD_TRUST_DOMAIN,
                    w.trust_domain.as_deref(),
                ),
            ],
            &w.addresses,
            w.hbone,
        )?;
        check(sys::ambient_node_proxy_options_add_workload(o, info.ptr))?;
    }
    for (td, pem) in &options.trust_bundles {
        let td = cstring(td)?;
        check(sys::ambient_node_proxy_options_add_trust_bundle_pem(
            o,
            td.as_ptr(),
            pem.as_ptr().cast(),
            pem.len(),
        ))?;
    }
    for s in &options.svids {
        let uid = cstring(&s.uid)?;
        check(sys::ambient_node_proxy_options_set_svid_pem(
            o,
            uid.as_ptr(),
            s.chain_pem.as_ptr().cast(),
            s.chain_pem.len(),
            s.key_pem.as_ptr().cast(),
            s.key_pem.len(),
        ))?;
    }
    if let Some(j) = &options.policies_json {
        check(sys::ambient_node_proxy_options_set_policies_json(
            o,
            j.as_ptr().cast(),
            j.len(),
        ))?;
    }
    if let Some(x) = &options.xds {
        crate::xds::set_node_proxy_xds(o, x)?;
    }
    if let Some(u) = &options.dns_upstreams {
        let u = cstring(u)?;
        check(sys::ambient_node_proxy_options_set_dns(o, u.as_ptr()))?;
    }
    Ok(())
}

impl Loop {
    /// A node proxy (ztunnel's role, in-pod mode) with no pods. `log` gets
    /// the access log (component "access") and other lines ("zds" ones
    /// included), on the loop thread. Capturing pods needs
    /// CAP_NET_ADMIN and CAP_SYS_ADMIN. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` naming the bad workload, bundle, SVID
    /// or policy.
    pub fn node_proxy(
        &self,
        options: &NodeProxyOptions,
        log: Option<Box<LogFn>>,
    ) -> Result<NodeProxy<'_>, Error> {
        let (log, log_fn) = log_parts(log);
        // SAFETY: options are made, filled and freed here; `log` outlives
        // the proxy (freed in Drop after it, or here on failure).
        let result = unsafe {
            let o = sys::ambient_node_proxy_options_new();
            if o.is_null() {
                Err(Error {
                    code: sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
                    detail: 0,
                    message: "out of memory".into(),
                })
            } else {
                let r = fill_node_options(o, options).and_then(|()| {
                    sys::ambient_node_proxy_options_set_log(o, log_fn, log.cast());
                    let mut out = ptr::null_mut();
                    check(sys::ambient_node_proxy_new(self.ptr, o, &mut out)).map(|()| out)
                });
                sys::ambient_node_proxy_options_free(o);
                r
            }
        };
        match result {
            Ok(ptr) => Ok(NodeProxy {
                ptr,
                log,
                _loop: PhantomData,
            }),
            Err(e) => {
                if !log.is_null() {
                    // SAFETY: from Box::into_raw, no proxy uses it.
                    drop(unsafe { Box::from_raw(log) });
                }
                Err(e)
            }
        }
    }
}

/// A node proxy on a [`Loop`] (see [`Loop::node_proxy`]): captures pods,
/// opening the in-pod listeners (15001, 15006, 15008) in each pod's
/// namespace, and carries their traffic over HBONE.
pub struct NodeProxy<'l> {
    ptr: *mut sys::ambient_node_proxy,
    log: *mut Box<LogFn>,
    _loop: PhantomData<&'l Loop>,
}

impl NodeProxy<'_> {
    /// ztunnel's readiness: the ZDS session (when started) is connected with
    /// its snapshot applied and no pod pending, and, with xDS, both xDS types
    /// were ACKed and every identity in use has a certificate.
    pub fn ready(&self) -> bool {
        // SAFETY: live proxy, loop thread (not Send).
        unsafe { sys::ambient_node_proxy_ready(self.ptr) == 1 }
    }

    /// Captures pod `uid` in `netns` (a duplicate of its descriptor is
    /// kept). The workload is found by uid, else by namespace/name. Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT`, `AMBIENT_ERR_NOT_FOUND` (unknown
    /// workload, no SVID), `AMBIENT_ERR_FAILED_PRECONDITION` (SVID not the
    /// workload's identity), `AMBIENT_ERR_ALREADY_EXISTS` (a port taken in
    /// the pod), `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn add_pod(
        &self,
        uid: &str,
        name: Option<&str>,
        namespace: Option<&str>,
        netns: &crate::netns::Netns,
    ) -> Result<(), Error> {
        let pod = workload_info(
            &[
                (sys::AMBIENT_WORKLOAD_UID, Some(uid)),
                (sys::AMBIENT_WORKLOAD_NAME, name),
                (sys::AMBIENT_WORKLOAD_NAMESPACE, namespace),
            ],
            &[],
            true,
        )?;
        // SAFETY: live handles and description (copied; the proxy keeps
        // its own duplicate of the netns descriptor).
        unsafe {
            check(sys::ambient_node_proxy_add_pod(
                self.ptr,
                pod.ptr,
                netns.as_ptr(),
            ))
        }
    }

    /// Releases pod `uid` (listeners closed, HBONE connections aborted);
    /// `true` when it was captured.
    pub fn remove_pod(&self, uid: &str) -> Result<bool, Error> {
        let uid = cstring(uid)?;
        // SAFETY: live handle and string.
        let rc = unsafe { sys::ambient_node_proxy_remove_pod(self.ptr, uid.as_ptr()) };
        if rc < 0 {
            return Err(crate::hbone::code_error(rc));
        }
        Ok(rc == 1)
    }

    /// How many pods are captured.
    pub fn pod_count(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::ambient_node_proxy_pod_count(self.ptr) }
    }

    /// The DNS proxy's istio_dns_* counters in Prometheus text format; empty
    /// when the options did not switch DNS on.
    pub fn dns_metrics(&self) -> String {
        // SAFETY: live handle; the buffer (NULL of length 0 to ask for the
        // size) has the length given.
        copied_string(|buf, cap| unsafe { sys::ambient_node_proxy_dns_metrics(self.ptr, buf, cap) })
    }

    /// Connects to the node agent's ZDS socket (and keeps reconnecting) on
    /// the loop, with no thread of its own; pods the agent adds or deletes
    /// are captured or released on the loop, which must run for them to be
    /// acknowledged.
    /// Errors: `AMBIENT_ERR_INVALID_ARGUMENT`, `AMBIENT_ERR_FAILED_PRECONDITION`
    /// (already started).
    pub fn start_zds(&self, socket_path: &str) -> Result<(), Error> {
        let p = cstring(socket_path)?;
        // SAFETY: live handle and string.
        unsafe { check(sys::ambient_node_proxy_start_zds(self.ptr, p.as_ptr())) }
    }
}

impl Drop for NodeProxy<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the proxy; freeing closes its ZDS connection, so the
        // log sink is not called afterwards.
        unsafe {
            sys::ambient_node_proxy_free(self.ptr);
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
    }
}
