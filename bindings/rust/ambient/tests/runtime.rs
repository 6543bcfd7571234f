//! The turnkey HBONE server and pooled client on one libambient loop, over
//! loopback, in front of an echo upstream.
mod common;
use common::pki;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ambient::hbone::{Role, TlsContext};
use ambient::runtime::{Limit, Loop, NodeProxyOptions, NodeSvid, NodeWorkload, TunnelResult};
use ambient_sys as sys;

const WEB: &str = "spiffe://example.org/ns/default/sa/web";
const DB: &str = "spiffe://example.org/ns/default/sa/db";

fn contexts() -> (TlsContext, TlsContext) {
    let f = pki();
    (
        TlsContext::from_pem(Role::Server, &f["db.pem"], &f["db.key"], &f["ca.pem"]).unwrap(),
        TlsContext::from_pem(Role::Client, &f["leaf.pem"], &f["leaf.key"], &f["ca.pem"]).unwrap(),
    )
}

/// An upstream that echoes one connection; returns its address and a
/// counter of accepted connections.
fn echo_upstream() -> (String, Arc<Mutex<u32>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let n = Arc::new(Mutex::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            *n2.lock().unwrap() += 1;
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf);
            let _ = c.write_all(&buf);
            let _ = c.shutdown(Shutdown::Write);
        }
    });
    (addr, n)
}

/// Sends `msg` through one tunnel and returns (echo, result, access log).
fn tunnel_once(allow: &[&str], msg: &'static [u8]) -> (Vec<u8>, TunnelResult, Vec<String>, u32) {
    let (server_tls, client_tls) = contexts();
    let (echo, accepted) = echo_upstream();
    let lp = Loop::new().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let server = lp
        .server(
            &server_tls,
            "127.0.0.1:0",
            allow,
            Some(Box::new(move |_level, component, message| {
                l2.lock().unwrap().push(format!("{component}: {message}"));
            })),
        )
        .unwrap();
    let client = lp.client(&client_tls, None).unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let outcome: Rc<RefCell<Option<TunnelResult>>> = Rc::new(RefCell::new(None));
    let o2 = outcome.clone();
    client
        .tunnel(
            &server.address(),
            &echo,
            &[DB],
            theirs.as_fd(),
            theirs.as_fd(),
            move |r| *o2.borrow_mut() = Some(r),
        )
        .unwrap();
    let peer = std::thread::spawn(move || {
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        ours.write_all(msg).unwrap();
        ours.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        let _ = ours.read_to_end(&mut back);
        back
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while outcome.borrow().is_none() {
        assert!(Instant::now() < deadline, "tunnel never ended");
        lp.run_for(Duration::from_millis(10));
    }
    drop(theirs); // after done: the descriptors were ours to keep open
    let back = peer.join().unwrap();
    // Let the server finish its side and log.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines
        .lock()
        .unwrap()
        .iter()
        .all(|l| !l.starts_with("access: "))
    {
        assert!(Instant::now() < deadline, "no access log line");
        lp.run_for(Duration::from_millis(10));
    }
    assert!(server.metrics().contains("istio_tcp"));
    let r = outcome.borrow_mut().take().unwrap();
    let log = lines.lock().unwrap().clone();
    let n = *accepted.lock().unwrap();
    (back, r, log, n)
}

#[test]
fn tunnel_through_the_turnkey_server_echoes() {
    let msg: &'static [u8] = b"hello through libambient's loop";
    let (back, r, log, accepted) = tunnel_once(&[WEB], msg);
    assert_eq!(back, msg);
    assert_eq!(r.http_status, 200);
    assert_eq!(r.result, Ok(()));
    assert_eq!(accepted, 1);
    assert!(
        log.iter()
            .any(|l| l.contains("connection complete") && l.contains(WEB)),
        "{log:?}"
    );
}

#[test]
fn client_outside_the_allow_list_gets_401() {
    let (back, r, _log, accepted) =
        tunnel_once(&["spiffe://example.org/ns/default/sa/other"], b"x");
    assert!(back.is_empty());
    assert_eq!(r.http_status, 401);
    assert!(r.result.is_err());
    assert_eq!(accepted, 0, "the upstream was reached");
}

#[test]
fn forwarder_and_bad_arguments() {
    let (server_tls, client_tls) = contexts();
    let (echo, _) = echo_upstream();
    let lp = Loop::new().unwrap();
    let e = lp
        .server(&client_tls, "127.0.0.1:0", &[], None)
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    let e = lp.server(&server_tls, "nonsense", &[], None).err().unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    // An allow entry that is not a full SPIFFE ID is refused, with the reason.
    for bad in ["cluster.local/ns/default/sa/demo", "spiffe://td/ns/a/sa/b/"] {
        let e = lp
            .server(&server_tls, "127.0.0.1:0", &[bad], None)
            .err()
            .unwrap();
        assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains("allow[0]"), "{bad}: {}", e.message);
    }
    let server = lp.server(&server_tls, "127.0.0.1:0", &[], None).unwrap();
    let e = lp
        .server(&server_tls, &server.address(), &[], None)
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_ALREADY_EXISTS);
    let client = lp.client(&client_tls, None).unwrap();
    // A refused tunnel says why, not just the code's name.
    let (_x, y) = UnixStream::pair().unwrap();
    let e = client
        .tunnel(
            "localhost:15008",
            "127.0.0.1:2",
            &[],
            y.as_fd(),
            y.as_fd(),
            |_| {},
        )
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    assert!(e.message.contains("numeric IP:port"), "{}", e.message);
    assert!(e.to_string().contains("localhost:15008"), "{e}");
    let fwd = lp
        .forwarder(&client, "127.0.0.1:0", &server.address(), &echo, &[DB])
        .unwrap();
    let addr = fwd.address();
    let peer = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"forwarded").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        let _ = c.read_to_end(&mut back);
        back
    });
    let stopper = lp.stopper();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !peer.is_finished() {
        assert!(
            Instant::now() < deadline,
            "forwarded connection never ended"
        );
        lp.run_for(Duration::from_millis(10));
    }
    stopper.stop();
    assert_eq!(peer.join().unwrap(), b"forwarded");
    // A tunnel still waiting when the client goes learns it was cancelled.
    let (_a, b) = UnixStream::pair().unwrap();
    let outcome: Rc<RefCell<Option<TunnelResult>>> = Rc::new(RefCell::new(None));
    let o2 = outcome.clone();
    client
        .tunnel(
            "127.0.0.1:1",
            "127.0.0.1:2",
            &[],
            b.as_fd(),
            b.as_fd(),
            move |r| *o2.borrow_mut() = Some(r),
        )
        .unwrap();
    drop(fwd);
    drop(client);
    let r = outcome
        .borrow_mut()
        .take()
        .expect("done called by the time the client is gone");
    assert!(r.result.is_err());
    // The loop goes without running again: the dial still in flight goes
    // with it (LeakSanitizer checks under scripts/test-bindings-asan.sh).
}

fn node_options() -> NodeProxyOptions {
    let f = pki();
    NodeProxyOptions {
        workloads: vec![NodeWorkload {
            uid: "uid-web".into(),
            name: "web".into(),
            namespace: "shop".into(),
            service_account: Some("web".into()),
            addresses: vec!["198.18.0.10".into()],
            hbone: true,
            ..Default::default()
        }],
        trust_bundles: vec![("cluster.local".into(), f["cl_ca.pem"].clone())],
        svids: vec![NodeSvid {
            uid: "uid-web".into(),
            chain_pem: f["cl_web.pem"].clone(),
            key_pem: f["cl_web.key"].clone(),
        }],
        policies_json: None,
        dns_upstreams: None,
        xds: None,
    }
}

#[test]
fn node_proxy_refuses_bad_options_and_unknown_pods() {
    let lp = Loop::new().unwrap();
    let good = node_options();
    let mut bad = Vec::new();
    let mut o = good.clone();
    o.workloads[0].addresses = vec!["not-an-ip".into()];
    bad.push(("address", o));
    let mut o = good.clone();
    o.trust_bundles[0].1 = b"junk".to_vec();
    bad.push(("bundle", o));
    let mut o = good.clone();
    o.svids[0].key_pem = good.svids[0].chain_pem.clone();
    bad.push(("svid key", o));
    let mut o = good.clone();
    o.policies_json = Some(b"{\"policies\": [".to_vec());
    bad.push(("policies", o));
    let mut o = good.clone();
    o.dns_upstreams = Some("192.0.2.1:53,dns.example".into());
    bad.push(("dns upstreams", o));
    for (what, o) in bad {
        let e = lp.node_proxy(&o, None).err().unwrap();
        assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT, "{what}: {e}");
        assert!(!e.message.is_empty(), "{what}");
    }
    let np = lp.node_proxy(&good, None).unwrap();
    let own = ambient::netns::Netns::current().unwrap();
    let e = np
        .add_pod("uid-nobody", Some("nobody"), Some("shop"), &own)
        .unwrap_err();
    assert_eq!(e.code, sys::AMBIENT_ERR_NOT_FOUND);
    assert!(!np.remove_pod("uid-nobody").unwrap());
    assert_eq!(np.pod_count(), 0);
    assert_eq!(np.dns_metrics(), "");
    let mut with_dns = good.clone();
    with_dns.dns_upstreams = Some("192.0.2.1:53".into());
    let d = lp.node_proxy(&with_dns, None).unwrap();
    assert!(d
        .dns_metrics()
        .contains("istio_dns_requests_total{request_protocol=\"udp\"} 0\n"));
}

fn is_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } == 0 {
        return true;
    }
    if std::env::var("AMBIENT_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("this test needs root and AMBIENT_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("SKIPPED: needs root (set AMBIENT_REQUIRE_PRIVILEGED=1 to make this a failure)");
    false
}

/// Whether a TCP connect to 127.0.0.1:`port` inside `ns` succeeds.
fn accepts_inside(ns: &ambient::netns::Netns, port: u16) -> bool {
    #[repr(C)]
    struct SockaddrIn {
        family: u16,
        port: u16,
        addr: u32,
        zero: [u8; 8],
    }
    extern "C" {
        fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    }
    const AF_INET: i32 = 2;
    const SOCK_STREAM: i32 = 1;
    let fd = ns.socket(AF_INET, SOCK_STREAM, 0).unwrap();
    let sa = SockaddrIn {
        family: AF_INET as u16,
        port: port.to_be(),
        addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        zero: [0; 8],
    };
    use std::os::fd::AsRawFd;
    // SAFETY: a live socket and a sockaddr_in of the stated size.
    unsafe {
        connect(
            fd.as_raw_fd(),
            &sa,
            std::mem::size_of::<SockaddrIn>() as u32,
        ) == 0
    }
}

#[test]
fn node_proxy_captures_a_pod_of_a_new_namespace() {
    if !is_root() {
        return;
    }
    let ns = ambient::netns::Netns::new_unnamed().unwrap();
    ns.loopback_up().unwrap();
    let lp = Loop::new().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let np = lp
        .node_proxy(
            &node_options(),
            Some(Box::new(move |_level, component, message| {
                l2.lock().unwrap().push(format!("{component}: {message}"));
            })),
        )
        .unwrap();
    assert!(!accepts_inside(&ns, 15008));
    np.add_pod("uid-web", None, None, &ns).unwrap();
    assert_eq!(np.pod_count(), 1);
    for port in [15001, 15006, 15008] {
        assert!(
            accepts_inside(&ns, port),
            "nothing listens on {port} in the pod"
        );
    }
    // Again with the same namespace: nothing changes.
    np.add_pod("uid-web", None, None, &ns).unwrap();
    assert_eq!(np.pod_count(), 1);
    assert!(np.remove_pod("uid-web").unwrap());
    assert_eq!(np.pod_count(), 0);
    assert!(
        !accepts_inside(&ns, 15008),
        "listener left after remove_pod"
    );

    // The same pod handed over by the Rust ZDS agent; the loop must run
    // while the agent waits for the acknowledgement.
    use ambient::netns::{Workload, ZdsAgent, ZdsAgentOptions};
    let sock = std::env::temp_dir().join(format!("ambient-rust-np-{}.sock", std::process::id()));
    let sock = sock.to_string_lossy().into_owned();
    let agent = ZdsAgent::new(&ZdsAgentOptions {
        socket_path: Some(sock.clone()),
        timeout_ms: Some(5000),
    })
    .unwrap();
    np.start_zds(&sock).unwrap();
    assert_eq!(
        np.start_zds(&sock).unwrap_err().code,
        sys::AMBIENT_ERR_FAILED_PRECONDITION
    );
    let w = Workload {
        name: "web".into(),
        namespace: "shop".into(),
        service_account: "web".into(),
    };
    let run_while = |f: &(dyn Fn() -> Result<(), ambient::Error> + Sync)| {
        std::thread::scope(|s| {
            let h = s.spawn(f);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !h.is_finished() {
                assert!(Instant::now() < deadline, "agent call never returned");
                lp.run_for(Duration::from_millis(5));
            }
            h.join().unwrap()
        })
    };
    run_while(&|| agent.wait_for_proxies(1, Duration::from_secs(10))).unwrap();
    run_while(&|| agent.add("uid-web", &w, &ns)).unwrap();
    assert_eq!(np.pod_count(), 1);
    assert!(accepts_inside(&ns, 15008));
    let stranger = Workload {
        name: "stranger".into(),
        namespace: "shop".into(),
        service_account: "x".into(),
    };
    let e = run_while(&|| agent.add("uid-stranger", &stranger, &ns)).unwrap_err();
    assert_eq!(e.code, sys::AMBIENT_ERR_ABORTED, "{e}");
    run_while(&|| agent.del("uid-web")).unwrap();
    assert_eq!(np.pod_count(), 0);
    drop(np);
    drop(agent);
    assert!(
        !lines.lock().unwrap().is_empty(),
        "the log sink saw nothing"
    );
}

#[test]
fn post_runs_on_the_loop_thread_and_queued_tasks_run_at_drop() {
    let lp = Loop::new().unwrap();
    let seen: Arc<Mutex<Vec<(u32, std::thread::ThreadId)>>> = Arc::new(Mutex::new(Vec::new()));
    let stopper = lp.stopper();
    std::thread::scope(|s| {
        let seen = seen.clone();
        s.spawn(move || {
            for i in 0..3 {
                let seen = seen.clone();
                stopper
                    .post(move || seen.lock().unwrap().push((i, std::thread::current().id())))
                    .unwrap();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            stopper.stop();
        });
        lp.run();
    });
    let here = std::thread::current().id();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(0, here), (1, here), (2, here)],
        "in order, on the thread running the loop"
    );
    // A panic in a task is caught; the loop goes on.
    lp.post(|| panic!("task broke")).unwrap();
    lp.run_for(Duration::from_millis(10));
    // Tasks still queued when the loop is dropped run then (and are freed).
    let late = seen.clone();
    lp.post(move || late.lock().unwrap().push((9, std::thread::current().id())))
        .unwrap();
    drop(lp);
    assert_eq!(seen.lock().unwrap().last(), Some(&(9, here)));
    assert_eq!(
        Arc::strong_count(&seen),
        1,
        "the task's closure was dropped"
    );
}

#[test]
fn client_dropped_with_a_running_tunnel_reports_cancelled_once() {
    let (server_tls, client_tls) = contexts();
    let (echo, accepted) = echo_upstream();
    // The echo upstream takes one connection; the second round's server
    // connects to this listener (its queue completes the connect).
    let spare = TcpListener::bind("127.0.0.1:0").unwrap();
    for run_after in [true, false] {
        let lp = Loop::new().unwrap();
        // Log closures on both: the aborted tunnel's access lines come after
        // the drops and must not reach the (freed) closures.
        let server = lp
            .server(
                &server_tls,
                "127.0.0.1:0",
                &[],
                Some(Box::new(|_level, _component, _message| {})),
            )
            .unwrap();
        let client = lp
            .client(
                &client_tls,
                Some(Box::new(|_level, _component, _message| {})),
            )
            .unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let calls: Rc<RefCell<Vec<TunnelResult>>> = Rc::new(RefCell::new(Vec::new()));
        let c2 = calls.clone();
        let upstream = if run_after {
            echo.clone()
        } else {
            spare.local_addr().unwrap().to_string()
        };
        client
            .tunnel(
                &server.address(),
                &upstream,
                &[DB],
                theirs.as_fd(),
                theirs.as_fd(),
                move |r| c2.borrow_mut().push(r),
            )
            .unwrap();
        // Running: the server has opened the upstream connection.
        ours.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while run_after && *accepted.lock().unwrap() == 0 {
            assert!(
                Instant::now() < deadline,
                "the tunnel never reached the upstream"
            );
            lp.run_for(Duration::from_millis(10));
        }
        lp.run_for(Duration::from_millis(50));
        assert!(calls.borrow().is_empty());
        drop(client);
        if run_after {
            lp.run_for(Duration::from_millis(20));
            assert_eq!(calls.borrow().len(), 1, "done on the loop's next iteration");
        }
        drop(server);
        drop(lp);
        let calls = calls.borrow();
        assert_eq!(calls.len(), 1, "done exactly once");
        assert_eq!(
            calls[0].result.as_ref().unwrap_err().code,
            sys::AMBIENT_ERR_CANCELLED
        );
        drop(theirs); // after done
    }
}

/// The flood limits reach the server: a silent connection is closed after
/// the lowered silent timeout (the default would keep it 3 s), and a value
/// the limit cannot take is refused.
#[test]
fn server_limits_reach_the_server() {
    let (server_tls, _) = contexts();
    let lp = Loop::new().unwrap();
    let server = lp.server(&server_tls, "127.0.0.1:0", &[], None).unwrap();
    server.set_limit(Limit::SilentTimeoutMs, 200).unwrap();
    server.set_limit(Limit::MaxConnections, 100).unwrap();
    let e = server
        .set_limit(Limit::SilentTimeoutMs, 1 << 40)
        .err()
        .unwrap();
    assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT);
    let mut c = std::net::TcpStream::connect(server.address()).unwrap();
    let start = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        std::thread::spawn(move || {
            let n = c.read(&mut [0u8; 1]);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            n.map_err(|e| e.kind())
        })
    };
    while !done.load(std::sync::atomic::Ordering::SeqCst)
        && start.elapsed() < Duration::from_secs(3)
    {
        lp.run_for(Duration::from_millis(20));
    }
    // The server aborts it (RST): a reset (or EOF), not our 2 s timeout.
    let got = reader.join().unwrap();
    assert!(
        got == Ok(0) || got == Err(std::io::ErrorKind::ConnectionReset),
        "the server did not close the silent connection: {got:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "closed after {:?}",
        start.elapsed()
    );
}
