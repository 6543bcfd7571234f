//! Network namespace handles, in-pod listeners and the node proxy end of
//! istio's ZDS protocol (ztunnel's role).
use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;

use ambient_sys as sys;

use crate::identity::{check, cstring, lent};
use crate::Error;

/// An open handle on a Linux network namespace; keeps it alive until
/// dropped. `Send + Sync` (socket making is thread-safe).
pub struct Netns {
    ptr: *mut sys::ambient_netns,
}

// SAFETY: the handle is an immutable descriptor; the C functions on it are
// documented thread-safe or any-thread.
unsafe impl Send for Netns {}
unsafe impl Sync for Netns {}

impl Netns {
    fn from_out(
        f: impl FnOnce(*mut *mut sys::ambient_netns) -> *mut sys::ambient_error,
    ) -> Result<Netns, Error> {
        let mut out = ptr::null_mut();
        // SAFETY: `f` calls an ambient_netns_open* that returns an owned
        // error or stores an owned handle.
        unsafe { check(f(&mut out))? };
        Ok(Netns { ptr: out })
    }

    /// Opens a namespace by name (under /var/run/netns) or, when it contains
    /// '/', by path. Errors: `AMBIENT_ERR_NOT_FOUND`,
    /// `AMBIENT_ERR_INVALID_ARGUMENT` (bad name, not a network namespace),
    /// `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn open(name_or_path: &str) -> Result<Netns, Error> {
        let s = cstring(name_or_path)?;
        // SAFETY: live string.
        Self::from_out(|out| unsafe { sys::ambient_netns_open(s.as_ptr(), out) })
    }

    /// Opens /proc/`pid`/ns/net.
    pub fn open_pid(pid: i32) -> Result<Netns, Error> {
        // SAFETY: no pointers besides `out`.
        Self::from_out(|out| unsafe { sys::ambient_netns_open_pid(pid, out) })
    }

    /// A handle on a duplicate of `fd` (which stays the caller's). Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT` when it is no network namespace.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<Netns, Error> {
        // SAFETY: the descriptor is live for the call.
        Self::from_out(|out| unsafe { sys::ambient_netns_open_fd(fd.as_raw_fd(), out) })
    }

    /// The calling thread's own namespace.
    pub fn current() -> Result<Netns, Error> {
        // SAFETY: no pointers besides `out`.
        Self::from_out(|out| unsafe { sys::ambient_netns_open_current(out) })
    }

    /// A brand-new unnamed namespace (loopback only, down); the kernel
    /// removes it when nothing refers to it. Needs CAP_SYS_ADMIN.
    pub fn new_unnamed() -> Result<Netns, Error> {
        // SAFETY: no pointers besides `out`.
        Self::from_out(|out| unsafe { sys::ambient_netns_new_unnamed(out) })
    }

    /// The (nsfs device, inode) identity of the namespace.
    pub fn id(&self) -> (u64, u64) {
        let (mut dev, mut ino) = (0u64, 0u64);
        // SAFETY: live handle.
        unsafe { sys::ambient_netns_id(self.ptr, &mut dev, &mut ino) };
        (dev, ino)
    }

    /// Sets the namespace's loopback device up.
    pub fn loopback_up(&self) -> Result<(), Error> {
        // SAFETY: live handle.
        unsafe { check(sys::ambient_netns_loopback_up(self.ptr)) }
    }

    /// `socket(domain, type | SOCK_CLOEXEC, protocol)` made inside the
    /// namespace; the socket stays there for life.
    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<OwnedFd, Error> {
        // SAFETY: live handle.
        let rc = unsafe { sys::ambient_netns_socket(self.ptr, domain, ty, protocol) };
        owned_fd(rc)
    }

    /// A non-blocking TCP socket of `family` (AF_INET/AF_INET6) inside the
    /// namespace with SO_MARK `mark` (0: none), for connections out of a pod.
    pub fn outbound_socket(&self, family: i32, mark: u32) -> Result<OwnedFd, Error> {
        // SAFETY: live handle.
        let rc = unsafe { sys::ambient_netns_outbound_socket(self.ptr, family, mark) };
        owned_fd(rc)
    }

    /// The socket for the last hop into a pod that keeps the client's
    /// source IP: non-blocking TCP inside the namespace, SO_MARK `mark`,
    /// IP_TRANSPARENT + IP_FREEBIND, bound to `client`'s IP (port 0) unless
    /// client and `destination` share the IP or differ in family, when a
    /// plain marked socket is made. The caller connects it.
    pub fn inbound_socket(
        &self,
        client: SocketAddr,
        destination: SocketAddr,
        mark: u32,
    ) -> Result<OwnedFd, Error> {
        let (c, cl) = to_sockaddr(&client);
        let (d, dl) = to_sockaddr(&destination);
        // SAFETY: live handle; the addresses are live for the call.
        let rc = unsafe {
            sys::ambient_netns_inbound_socket(
                self.ptr,
                c.as_ptr().cast(),
                cl,
                d.as_ptr().cast(),
                dl,
                mark,
            )
        };
        owned_fd(rc)
    }

    /// Runs `f` on the calling thread while the thread is inside this
    /// namespace, then moves the thread back, and returns `f`'s result. A
    /// panic in `f` is caught at the C boundary and resumed here, after the
    /// thread is back. Errors (f did not run): `AMBIENT_ERR_PERMISSION_DENIED`;
    /// `AMBIENT_ERR_INTERNAL` if the thread could not be moved back.
    pub fn run<R, F: FnOnce() -> R>(&self, f: F) -> Result<R, Error> {
        struct Call<F, R> {
            f: Option<F>,
            out: Option<std::thread::Result<R>>,
        }
        unsafe extern "C" fn tramp<F: FnOnce() -> R, R>(user_data: *mut c_void) -> c_int {
            let call = &mut *(user_data as *mut Call<F, R>);
            if let Some(f) = call.f.take() {
                call.out = Some(catch_unwind(AssertUnwindSafe(f)));
            }
            0
        }
        let mut call = Call::<F, R> {
            f: Some(f),
            out: None,
        };
        // SAFETY: `call` outlives the synchronous call; the trampoline
        // matches its type.
        let err = unsafe {
            sys::ambient_netns_run(
                self.ptr,
                Some(tramp::<F, R>),
                (&mut call as *mut Call<F, R>).cast(),
                ptr::null_mut(),
            )
        };
        // SAFETY: owned error or NULL.
        let checked = unsafe { check(err) };
        match call.out {
            Some(Ok(r)) => checked.map(|_| r),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(checked.err().unwrap_or(Error {
                code: sys::AMBIENT_ERR_INTERNAL,
                detail: 0,
                message: "the function did not run".into(),
            })),
        }
    }

    /// The raw handle, lent while `self` lives.
    pub fn as_ptr(&self) -> *const sys::ambient_netns {
        self.ptr
    }
}

/// A `sockaddr_in`/`sockaddr_in6` as Linux lays them out (28 bytes).
fn to_sockaddr(addr: &SocketAddr) -> ([u8; 28], usize) {
    let mut b = [0u8; 28];
    match addr {
        SocketAddr::V4(a) => {
            b[0..2].copy_from_slice(&2u16.to_ne_bytes()); // AF_INET
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            (b, 16)
        }
        SocketAddr::V6(a) => {
            b[0..2].copy_from_slice(&10u16.to_ne_bytes()); // AF_INET6
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            (b, 28)
        }
    }
}

fn from_sockaddr(b: &[u8; 28], len: usize) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([b[0], b[1]]);
    let port = u16::from_be_bytes([b[2], b[3]]);
    match (family, len) {
        (2, 16..) => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        (10, 28..) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(o),
                port,
                0,
                scope,
            )))
        }
        _ => None,
    }
}

/// Where the accepted, redirected TCP connection `fd` was going
/// (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST, else the socket's local address;
/// IPv4-mapped IPv6 comes back as IPv4). Errors:
/// `AMBIENT_ERR_INVALID_ARGUMENT` for a non-IP socket.
pub fn original_destination(fd: BorrowedFd<'_>) -> Result<SocketAddr, Error> {
    let mut b = [0u8; 28];
    // SAFETY: the buffer holds 28 bytes (sizeof(struct sockaddr_in6)).
    let n = unsafe {
        sys::ambient_original_destination(fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len())
    };
    if n < 0 {
        return Err(Error {
            code: n,
            detail: 0,
            message: String::new(),
        });
    }
    from_sockaddr(&b, n as usize).ok_or(Error {
        code: sys::AMBIENT_ERR_INTERNAL,
        detail: 0,
        message: "unexpected address family".into(),
    })
}

fn owned_fd(rc: c_int) -> Result<OwnedFd, Error> {
    if rc < 0 {
        return Err(Error {
            code: rc,
            detail: 0,
            message: String::new(),
        });
    }
    // SAFETY: the C ABI gives the caller ownership of the descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

impl PartialEq for Netns {
    fn eq(&self, other: &Netns) -> bool {
        // SAFETY: live handles.
        unsafe { sys::ambient_netns_equal(self.ptr, other.ptr) == 1 }
    }
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (dev, ino) = self.id();
        write!(f, "Netns({dev}:{ino})")
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is valid while the handle lives.
        unsafe { BorrowedFd::borrow_raw(sys::ambient_netns_fd(self.ptr)) }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // SAFETY: we own the handle.
        unsafe { sys::ambient_netns_free(self.ptr) }
    }
}

/// Which in-pod listener a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Outbound,
    InboundPlaintext,
    InboundHbone,
    DnsUdp,
    DnsTcp,
}

/// Options of [`PodListeners::open`]; `None` fields keep the defaults
/// (mark 0x539, DNS on, SO_REUSEPORT on, ports 15001/15006/15008/15053).
#[derive(Debug, Clone, Default)]
pub struct PodListenerOptions {
    pub mark: Option<u32>,
    pub dns: Option<bool>,
    pub reuse_port: Option<bool>,
    /// (outbound, inbound plaintext, inbound HBONE, DNS).
    pub ports: Option<(u16, u16, u16, u16)>,
}

/// The listening sockets a node proxy opens inside one pod; closed on drop.
pub struct PodListeners {
    ptr: *mut sys::ambient_pod_listeners,
}

// SAFETY: the set is immutable after opening.
unsafe impl Send for PodListeners {}
unsafe impl Sync for PodListeners {}

impl PodListeners {
    /// Opens the set inside `ns`, all or nothing. Errors:
    /// `AMBIENT_ERR_ALREADY_EXISTS` (port held), `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn open(ns: &Netns, options: &PodListenerOptions) -> Result<PodListeners, Error> {
        // SAFETY: options are created, set and freed here; handles are live.
        unsafe {
            let o = sys::ambient_pod_listener_options_new();
            if o.is_null() {
                return Err(Error {
                    code: sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
                    detail: 0,
                    message: "out of memory".into(),
                });
            }
            if let Some(m) = options.mark {
                sys::ambient_pod_listener_options_set_mark(o, m);
            }
            if let Some(d) = options.dns {
                sys::ambient_pod_listener_options_set_dns(o, c_int::from(d));
            }
            if let Some(r) = options.reuse_port {
                sys::ambient_pod_listener_options_set_reuse_port(o, c_int::from(r));
            }
            if let Some((a, b, c, d)) = options.ports {
                sys::ambient_pod_listener_options_set_ports(o, a, b, c, d);
            }
            let mut out = ptr::null_mut();
            let err = sys::ambient_pod_listeners_open(ns.ptr, o, &mut out);
            sys::ambient_pod_listener_options_free(o);
            check(err)?;
            Ok(PodListeners { ptr: out })
        }
    }

    /// How many sockets the set holds.
    pub fn len(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::ambient_pod_listeners_count(self.ptr) }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The non-blocking listening descriptor `i`, lent.
    pub fn fd(&self, i: usize) -> Option<BorrowedFd<'_>> {
        // SAFETY: live handle; the descriptor lives as long as the set.
        let fd = unsafe { sys::ambient_pod_listeners_fd(self.ptr, i) };
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// The kind of socket `i`.
    pub fn kind(&self, i: usize) -> Option<ListenerKind> {
        // SAFETY: live handle.
        match unsafe { sys::ambient_pod_listeners_kind(self.ptr, i) } {
            sys::AMBIENT_LISTENER_OUTBOUND => Some(ListenerKind::Outbound),
            sys::AMBIENT_LISTENER_INBOUND_PLAINTEXT => Some(ListenerKind::InboundPlaintext),
            sys::AMBIENT_LISTENER_INBOUND_HBONE => Some(ListenerKind::InboundHbone),
            sys::AMBIENT_LISTENER_DNS_UDP => Some(ListenerKind::DnsUdp),
            sys::AMBIENT_LISTENER_DNS_TCP => Some(ListenerKind::DnsTcp),
            _ => None,
        }
    }

    /// The bound address of socket `i`, such as `"[::]:15001"`.
    pub fn address(&self, i: usize) -> Option<String> {
        let mut buf = [0 as c_char; 64];
        // SAFETY: live handle; buf has the stated capacity.
        let n = unsafe { sys::ambient_pod_listeners_address(self.ptr, i, buf.as_mut_ptr(), 64) };
        (n >= 0).then(|| lent(buf.as_ptr()))
    }
}

impl Drop for PodListeners {
    fn drop(&mut self) {
        // SAFETY: we own the set.
        unsafe { sys::ambient_pod_listeners_free(self.ptr) }
    }
}

/// A pod handed over by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
}

/// What the ZDS proxy reports besides pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZdsEvent {
    /// The agent's snapshot was applied.
    SnapshotComplete,
    /// The connection to the agent ended (with the reason).
    Disconnected(String),
}

/// The host side of a [`ZdsProxy`]. Called from the proxy's own thread, one
/// call at a time. A panic refuses the pod (add) or is swallowed; it never
/// crosses into C.
pub trait ZdsHandler: Send + 'static {
    /// Serve pod `uid` in `netns` (now owned by the handler). `Err(reason)`
    /// refuses it: the agent gets the reason and the pod is offered again
    /// every retry interval until accepted or deleted.
    fn add(&mut self, uid: &str, workload: &Workload, netns: Netns) -> Result<(), String>;
    /// Stop serving pod `uid`.
    fn remove(&mut self, uid: &str);
    /// Snapshot complete / disconnected.
    fn event(&mut self, _event: ZdsEvent) {}
}

/// Options of a [`ZdsProxy`]; `None` keeps the defaults (socket
/// /var/run/ztunnel/ztunnel.sock, backoff 10 ms doubling to 15 s, retry of
/// refused pods every 5 s).
#[derive(Debug, Clone, Default)]
pub struct ZdsProxyOptions {
    pub socket_path: Option<String>,
    /// (initial, max) reconnect backoff in milliseconds.
    pub backoff_ms: Option<(u32, u32)>,
    /// Retry interval for refused pods in milliseconds; 0 disables retries.
    pub retry_interval_ms: Option<u32>,
}

type HandlerCell = Mutex<Box<dyn ZdsHandler>>;

/// A log sink: (level, component, message).
pub type LogFn = dyn Fn(crate::LogLevel, &str, &str) + Send + Sync + 'static;

/// The node proxy end of ZDS: connects to the agent and receives pods.
pub struct ZdsProxy {
    ptr: *mut sys::ambient_zds_proxy,
    // Both freed after the proxy (whose thread calls into them) is freed.
    handler: *mut HandlerCell,
    log: *mut Box<LogFn>,
}

// SAFETY: start/stop need &mut self; ready and workload_count are any-thread.
unsafe impl Send for ZdsProxy {}
unsafe impl Sync for ZdsProxy {}

unsafe extern "C" fn add_trampoline(
    user_data: *mut c_void,
    uid: *const c_char,
    workload: *const sys::ambient_zds_workload,
    netns: *mut sys::ambient_netns,
    reason: *mut c_char,
    reason_cap: usize,
) -> c_int {
    // The handle is ours from here on, whatever happens.
    let netns = Netns { ptr: netns };
    let cell = &*(user_data as *const HandlerCell);
    let uid = lent(uid);
    let w = Workload {
        name: lent(sys::ambient_zds_workload_name(workload)),
        namespace: lent(sys::ambient_zds_workload_namespace(workload)),
        service_account: lent(sys::ambient_zds_workload_service_account(workload)),
    };
    let result = catch_unwind(AssertUnwindSafe(|| match cell.lock() {
        Ok(mut h) => h.add(&uid, &w, netns),
        Err(_) => Err("handler poisoned by an earlier panic".to_string()),
    }))
    .unwrap_or_else(|_| Err("handler panicked".to_string()));
    match result {
        Ok(()) => 0,
        Err(why) => {
            if reason_cap > 0 && !reason.is_null() {
                let b = why.as_bytes();
                let n = b.len().min(reason_cap - 1);
                ptr::copy_nonoverlapping(b.as_ptr(), reason.cast::<u8>(), n);
                *reason.add(n) = 0;
            }
            1
        }
    }
}

pub(crate) unsafe extern "C" fn log_trampoline(
    user_data: *mut c_void,
    level: sys::ambient_log_level,
    component: *const c_char,
    message: *const c_char,
    message_len: usize,
) {
    let f = &*(user_data as *const Box<LogFn>);
    let component = lent(component);
    let msg = if message.is_null() {
        String::new()
    } else {
        String::from_utf8_lossy(std::slice::from_raw_parts(
            message.cast::<u8>(),
            message_len,
        ))
        .into_owned()
    };
    let level = crate::LogLevel::from_raw(level);
    let _ = catch_unwind(AssertUnwindSafe(|| f(level, &component, &msg)));
}

unsafe extern "C" fn remove_trampoline(user_data: *mut c_void, uid: *const c_char) {
    let cell = &*(user_data as *const HandlerCell);
    let uid = lent(uid);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(mut h) = cell.lock() {
            h.remove(&uid);
        }
    }));
}

unsafe extern "C" fn event_trampoline(
    user_data: *mut c_void,
    event: sys::ambient_zds_event,
    detail: *const c_char,
) {
    let cell = &*(user_data as *const HandlerCell);
    let ev = if event == sys::AMBIENT_ZDS_SNAPSHOT_COMPLETE {
        ZdsEvent::SnapshotComplete
    } else {
        ZdsEvent::Disconnected(if detail.is_null() {
            String::new()
        } else {
            CStr::from_ptr(detail).to_string_lossy().into_owned()
        })
    };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(mut h) = cell.lock() {
            h.event(ev);
        }
    }));
}

impl ZdsProxy {
    /// A proxy calling `handler`; it does not connect until [`start`].
    /// Errors: `AMBIENT_ERR_INVALID_ARGUMENT` for a path over 107 bytes or a
    /// bad backoff.
    ///
    /// [`start`]: ZdsProxy::start
    pub fn new(options: &ZdsProxyOptions, handler: Box<dyn ZdsHandler>) -> Result<ZdsProxy, Error> {
        Self::build(options, handler, None)
    }

    /// [`ZdsProxy::new`] with a log sink (component "zds"), called from the
    /// proxy's thread.
    pub fn with_log(
        options: &ZdsProxyOptions,
        handler: Box<dyn ZdsHandler>,
        log: Box<LogFn>,
    ) -> Result<ZdsProxy, Error> {
        Self::build(options, handler, Some(log))
    }

    fn build(
        options: &ZdsProxyOptions,
        handler: Box<dyn ZdsHandler>,
        log: Option<Box<LogFn>>,
    ) -> Result<ZdsProxy, Error> {
        let handler: *mut HandlerCell = Box::into_raw(Box::new(Mutex::new(handler)));
        let log: *mut Box<LogFn> = log.map_or(ptr::null_mut(), |l| Box::into_raw(Box::new(l)));
        let free_boxes = || {
            // SAFETY: both came from Box::into_raw above and are not in use.
            unsafe {
                drop(Box::from_raw(handler));
                if !log.is_null() {
                    drop(Box::from_raw(log));
                }
            }
        };
        // SAFETY: options are created, set and freed here; `handler` is
        // reclaimed on every failure path and in Drop.
        unsafe {
            let o = sys::ambient_zds_proxy_options_new();
            if o.is_null() {
                free_boxes();
                return Err(Error {
                    code: sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
                    detail: 0,
                    message: "out of memory".into(),
                });
            }
            let result = (|| {
                if !log.is_null() {
                    sys::ambient_zds_proxy_options_set_log(o, Some(log_trampoline), log.cast());
                }
                if let Some(p) = &options.socket_path {
                    let p = cstring(p)?;
                    check(sys::ambient_zds_proxy_options_set_socket_path(
                        o,
                        p.as_ptr(),
                    ))?;
                }
                if let Some((a, b)) = options.backoff_ms {
                    check(sys::ambient_zds_proxy_options_set_backoff(o, a, b))?;
                }
                if let Some(r) = options.retry_interval_ms {
                    sys::ambient_zds_proxy_options_set_retry_interval(o, r);
                }
                sys::ambient_zds_proxy_options_set_callbacks(
                    o,
                    Some(add_trampoline),
                    Some(remove_trampoline),
                    Some(event_trampoline),
                    handler.cast(),
                );
                let mut out = ptr::null_mut();
                check(sys::ambient_zds_proxy_new(o, &mut out))?;
                Ok(out)
            })();
            sys::ambient_zds_proxy_options_free(o);
            match result {
                Ok(ptr) => Ok(ZdsProxy { ptr, handler, log }),
                Err(e) => {
                    free_boxes();
                    Err(e)
                }
            }
        }
    }

    /// Starts the proxy's thread: connect, serve, reconnect with backoff.
    /// Errors: `AMBIENT_ERR_FAILED_PRECONDITION` when already started.
    pub fn start(&mut self) -> Result<(), Error> {
        // SAFETY: live handle.
        unsafe { check(sys::ambient_zds_proxy_start(self.ptr)) }
    }

    /// Closes the connection and joins the thread; pods are not removed.
    /// Idempotent.
    pub fn stop(&mut self) {
        // SAFETY: live handle; not called from a callback (those get no
        // access to the proxy).
        unsafe { sys::ambient_zds_proxy_stop(self.ptr) }
    }

    /// Ready in ztunnel's sense: connected, snapshot applied, no refused pod
    /// pending.
    pub fn ready(&self) -> bool {
        // SAFETY: live handle.
        unsafe { sys::ambient_zds_proxy_ready(self.ptr) == 1 }
    }

    /// How many pods are being served.
    pub fn workload_count(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::ambient_zds_proxy_workload_count(self.ptr) }
    }
}

impl Drop for ZdsProxy {
    fn drop(&mut self) {
        // SAFETY: freeing the proxy joins its thread, so no callback runs
        // afterwards; then the handler can go.
        unsafe {
            sys::ambient_zds_proxy_free(self.ptr);
            drop(Box::from_raw(self.handler));
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
    }
}

/// Options of a [`ZdsAgent`]; `None` keeps the defaults (socket
/// /var/run/ztunnel/ztunnel.sock, 5 s per message and ack).
#[derive(Debug, Clone, Default)]
pub struct ZdsAgentOptions {
    pub socket_path: Option<String>,
    pub timeout_ms: Option<u32>,
}

/// The node agent end of ZDS (istio-cni's role): listens and hands pods'
/// namespaces to the proxies that connect. `Send + Sync`.
pub struct ZdsAgent {
    ptr: *mut sys::ambient_zds_agent,
    // Freed after the agent (whose thread and callers call into it).
    log: *mut Box<LogFn>,
}

// SAFETY: the agent's functions are documented thread-safe.
unsafe impl Send for ZdsAgent {}
unsafe impl Sync for ZdsAgent {}

impl ZdsAgent {
    /// Listens on the socket path (replacing a stale socket file). Errors:
    /// `AMBIENT_ERR_INVALID_ARGUMENT`, `AMBIENT_ERR_ALREADY_EXISTS` (a
    /// non-socket file in the way), `AMBIENT_ERR_NOT_FOUND` (no directory),
    /// `AMBIENT_ERR_PERMISSION_DENIED`.
    pub fn new(options: &ZdsAgentOptions) -> Result<ZdsAgent, Error> {
        Self::build(options, None)
    }

    /// [`ZdsAgent::new`] with a log sink (component "zds"). It is called
    /// from the agent's thread and from callers of its methods, at times
    /// with the agent's lock held: it must not call the agent.
    pub fn with_log(options: &ZdsAgentOptions, log: Box<LogFn>) -> Result<ZdsAgent, Error> {
        Self::build(options, Some(log))
    }

    fn build(options: &ZdsAgentOptions, log: Option<Box<LogFn>>) -> Result<ZdsAgent, Error> {
        let log: *mut Box<LogFn> = log.map_or(ptr::null_mut(), |l| Box::into_raw(Box::new(l)));
        let free_log = || {
            if !log.is_null() {
                // SAFETY: from Box::into_raw above; no agent uses it.
                drop(unsafe { Box::from_raw(log) });
            }
        };
        // SAFETY: options are created, set and freed here; `log` is
        // reclaimed on failure and in Drop.
        unsafe {
            let o = sys::ambient_zds_agent_options_new();
            if o.is_null() {
                free_log();
                return Err(Error {
                    code: sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
                    detail: 0,
                    message: "out of memory".into(),
                });
            }
            let result = (|| {
                if let Some(p) = &options.socket_path {
                    let p = cstring(p)?;
                    check(sys::ambient_zds_agent_options_set_socket_path(
                        o,
                        p.as_ptr(),
                    ))?;
                }
                if let Some(t) = options.timeout_ms {
                    check(sys::ambient_zds_agent_options_set_timeout(o, t))?;
                }
                if !log.is_null() {
                    sys::ambient_zds_agent_options_set_log(o, Some(log_trampoline), log.cast());
                }
                let mut out = ptr::null_mut();
                check(sys::ambient_zds_agent_new(o, &mut out))?;
                Ok(ZdsAgent { ptr: out, log })
            })();
            sys::ambient_zds_agent_options_free(o);
            if result.is_err() {
                free_log();
            }
            result
        }
    }

    /// Records pod `uid` with (a duplicate of) `netns` and sends it to the
    /// newest proxy, waiting for the ack. Errors: `AMBIENT_ERR_UNAVAILABLE`
    /// when no proxy is connected (the pod still goes out with the next
    /// snapshot); `AMBIENT_ERR_ABORTED` with the proxy's reason when it
    /// refused; `AMBIENT_ERR_INVALID_ARGUMENT`.
    pub fn add(&self, uid: &str, workload: &Workload, netns: &Netns) -> Result<(), Error> {
        let pod = crate::runtime::workload_info(
            &[
                (sys::AMBIENT_WORKLOAD_UID, Some(uid)),
                (sys::AMBIENT_WORKLOAD_NAME, Some(&workload.name)),
                (sys::AMBIENT_WORKLOAD_NAMESPACE, Some(&workload.namespace)),
                (
                    sys::AMBIENT_WORKLOAD_SERVICE_ACCOUNT,
                    Some(&workload.service_account),
                ),
            ],
            &[],
            true,
        )?;
        // SAFETY: live handles; the description is copied by the call.
        unsafe { check(sys::ambient_zds_agent_add(self.ptr, pod.ptr, netns.ptr)) }
    }

    /// Records a pod whose namespace cannot be opened (KeepWorkload).
    pub fn keep(&self, uid: &str) -> Result<(), Error> {
        let uid = cstring(uid)?;
        // SAFETY: live handle and string.
        unsafe { check(sys::ambient_zds_agent_keep(self.ptr, uid.as_ptr())) }
    }

    /// Forgets pod `uid` and tells every connected proxy, waiting for acks.
    pub fn del(&self, uid: &str) -> Result<(), Error> {
        let uid = cstring(uid)?;
        // SAFETY: live handle and string.
        unsafe { check(sys::ambient_zds_agent_del(self.ptr, uid.as_ptr())) }
    }

    /// How many proxies are connected and past their snapshot.
    pub fn proxy_count(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::ambient_zds_agent_proxy_count(self.ptr) }
    }

    /// Blocks until at least `n` proxies are connected and past their
    /// snapshot. Errors: `AMBIENT_ERR_DEADLINE_EXCEEDED`.
    pub fn wait_for_proxies(&self, n: usize, timeout: std::time::Duration) -> Result<(), Error> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: live handle.
        unsafe { check(sys::ambient_zds_agent_wait_for_proxies(self.ptr, n, ms)) }
    }
}

impl Drop for ZdsAgent {
    fn drop(&mut self) {
        // SAFETY: we own the agent; freeing stops it and removes the socket;
        // after that nothing calls the log sink.
        unsafe {
            sys::ambient_zds_agent_free(self.ptr);
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
    }
}
