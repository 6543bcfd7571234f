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
use crate::Error;

fn cstrings(ss: &[&str]) -> Result<(Vec<CString>, Vec<*const c_char>), Error> {
    let owned = ss
        .iter()
        .map(|s| cstring(s))
        .collect::<Result<Vec<CString>, Error>>()?;
    let ptrs = owned.iter().map(|s| s.as_ptr()).collect();
    Ok((owned, ptrs))
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

/// Stops a running [`Loop`] from any thread (borrowed from the loop).
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
}

impl Loop {
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

    /// A handle that stops the loop from any thread.
    pub fn stopper(&self) -> Stopper<'_> {
        Stopper {
            ptr: self.ptr,
            _loop: PhantomData,
        }
    }

    /// An HBONE server listening on `listen` ("ip:port", "[v6]:port"; port
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
        let l = cstring(listen)?;
        let (_owned, ptrs) = cstrings(allow)?;
        let (log, log_fn) = log_parts(log);
        let mut out = ptr::null_mut();
        // SAFETY: live handles and strings; `log` outlives the server (freed
        // in Drop after it, or here on failure).
        let err = unsafe {
            Error::take(sys::ambient_hbone_server_new(
                self.ptr,
                tls.ptr,
                l.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                log_fn,
                log.cast(),
                &mut out,
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
        let (log, log_fn) = log_parts(log);
        let mut out = ptr::null_mut();
        // SAFETY: as in `server`.
        let err = unsafe {
            Error::take(sys::ambient_hbone_client_new(
                self.ptr,
                tls.ptr,
                log_fn,
                log.cast(),
                &mut out,
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
        let (l, v, a) = (cstring(listen)?, cstring(via)?, cstring(authority)?);
        let (_owned, ptrs) = cstrings(expected)?;
        let mut out = ptr::null_mut();
        // SAFETY: live handles and strings; the borrow keeps the client alive.
        unsafe {
            check(sys::ambient_hbone_forwarder_new(
                self.ptr,
                client.ptr,
                l.as_ptr(),
                v.as_ptr(),
                a.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
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

impl Server<'_> {
    /// The bound "ip:port".
    pub fn address(&self) -> String {
        // SAFETY: live handle.
        lent(unsafe { sys::ambient_hbone_server_get0_address(self.ptr) })
    }

    /// The istio_tcp_* counters in Prometheus text format.
    pub fn metrics(&self) -> String {
        // SAFETY: live handle; a NULL buffer of length 0 asks for the size.
        let n = unsafe { sys::ambient_hbone_server_metrics(self.ptr, ptr::null_mut(), 0) };
        let mut buf = vec![0u8; n + 1];
        // SAFETY: buf has n + 1 bytes.
        let m =
            unsafe { sys::ambient_hbone_server_metrics(self.ptr, buf.as_mut_ptr().cast(), n + 1) };
        buf.truncate(m.min(n));
        String::from_utf8_lossy(&buf).into_owned()
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
        let (v, a) = (cstring(via)?, cstring(authority)?);
        let (_owned, ptrs) = cstrings(expected)?;
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
                v.as_ptr(),
                a.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
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
            return Err(crate::hbone::code_error(rc));
        }
        Ok(())
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the client; after the free no callback runs, so
        // what is still pending is ours to finish.
        unsafe {
            sys::ambient_hbone_client_free(self.ptr);
            if !self.log.is_null() {
                drop(Box::from_raw(self.log));
            }
        }
        let left: Vec<usize> = self.pending.borrow_mut().drain().collect();
        for user in left {
            // SAFETY: never called back, so never reclaimed.
            let p = unsafe { Box::from_raw(user as *mut Pending) };
            let done = p.done;
            let _ = catch_unwind(AssertUnwindSafe(move || {
                done(TunnelResult {
                    http_status: 0,
                    result: Err(Error {
                        code: sys::AMBIENT_ERR_CANCELLED,
                        detail: 0,
                        message: "HBONE client dropped".into(),
                    }),
                })
            }));
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
