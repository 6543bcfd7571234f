//! Netns binding tests: handles, in-pod listeners (root), and the ZDS proxy
//! end against ambientctl's ZDS agent (the C ABI's agent end) handing over
//! this process's own namespace, which needs no privilege.
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ambient::netns::{
    ListenerKind, Netns, PodListenerOptions, PodListeners, Workload, ZdsEvent, ZdsHandler,
    ZdsProxy, ZdsProxyOptions,
};
use ambient_sys as sys;

#[test]
fn handles_name_the_same_namespace() {
    let cur = Netns::current().unwrap();
    let by_path = Netns::open("/proc/self/ns/net").unwrap();
    let by_pid = Netns::open_pid(std::process::id() as i32).unwrap();
    assert_eq!(cur, by_path);
    assert_eq!(by_path, by_pid);
    let md = std::fs::metadata("/proc/self/ns/net").unwrap();
    assert_eq!(cur.id(), (md.dev(), md.ino()));
    let dup = Netns::from_fd(cur.as_fd()).unwrap();
    assert_eq!(dup, cur);
    drop(dup);
    assert_eq!(
        Netns::open("/proc/self/ns/net").unwrap(),
        cur,
        "the original survives"
    );

    let f = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(
        Netns::from_fd(f.as_fd()).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    let missing = format!("ambient-rs-missing-{}", std::process::id());
    assert_eq!(
        Netns::open(&missing).unwrap_err().code,
        sys::AMBIENT_ERR_NOT_FOUND
    );
    assert_eq!(
        Netns::open("/proc/self/ns/uts").unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        Netns::open_pid(0).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
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

#[test]
fn pod_listeners_in_a_new_namespace() {
    if !is_root() {
        return;
    }
    let ns = Netns::new_unnamed().unwrap();
    assert_ne!(ns, Netns::current().unwrap());
    ns.loopback_up().unwrap();
    let set = PodListeners::open(&ns, &PodListenerOptions::default()).unwrap();
    assert!(set.len() >= 4, "{} sockets", set.len());
    let mut saw = Vec::new();
    for i in 0..set.len() {
        let kind = set.kind(i).unwrap();
        let addr = set.address(i).unwrap();
        let port = match kind {
            ListenerKind::Outbound => ":15001",
            ListenerKind::InboundPlaintext => ":15006",
            ListenerKind::InboundHbone => ":15008",
            ListenerKind::DnsUdp | ListenerKind::DnsTcp => ":15053",
        };
        assert!(addr.ends_with(port), "{kind:?} at {addr}");
        assert!(set.fd(i).is_some());
        saw.push(kind);
    }
    for k in [
        ListenerKind::Outbound,
        ListenerKind::InboundPlaintext,
        ListenerKind::InboundHbone,
    ] {
        assert!(saw.contains(&k), "{k:?} missing: {saw:?}");
    }
    assert!(set.kind(set.len()).is_none() && set.address(set.len()).is_none());
    // The ports are taken inside that namespace only.
    let again = PodListeners::open(
        &ns,
        &PodListenerOptions {
            reuse_port: Some(false),
            dns: Some(false),
            ..Default::default()
        },
    );
    assert_eq!(again.err().unwrap().code, sys::AMBIENT_ERR_ALREADY_EXISTS);
    let s = ns.outbound_socket(2, 0x539).unwrap();
    drop(s);
}

#[derive(Debug)]
enum Seen {
    Add(String, Workload, bool),
    Remove(String),
    Event(ZdsEvent),
}

struct Recorder {
    tx: mpsc::Sender<Seen>,
    refuse: Option<String>,
}

impl ZdsHandler for Recorder {
    fn add(&mut self, uid: &str, w: &Workload, netns: Netns) -> Result<(), String> {
        let ours = netns == Netns::current().unwrap();
        let _ = self.tx.send(Seen::Add(uid.to_string(), w.clone(), ours));
        match &self.refuse {
            Some(r) => Err(r.clone()),
            None => Ok(()),
        }
    }
    fn remove(&mut self, uid: &str) {
        let _ = self.tx.send(Seen::Remove(uid.to_string()));
    }
    fn event(&mut self, e: ZdsEvent) {
        let _ = self.tx.send(Seen::Event(e));
    }
}

fn ambientctl() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("AMBIENT_BUILD_DIR")?)
        .join("examples/ambientctl/ambientctl");
    p.exists().then_some(p)
}

/// ambientctl's agent process; killed on Drop, and its socket file removed
/// (a killed agent cannot remove it itself).
struct Agent(Child, String);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn start_agent(ctl: &PathBuf, sock: &str, uid: &str, hold_ms: u32) -> Agent {
    let mut child = Command::new(ctl)
        .args([
            "zds",
            "agent",
            "--socket",
            sock,
            "--oneshot",
            "--timeout-ms",
            "10000",
        ])
        .args(["--hold-ms", &hold_ms.to_string()])
        .args(["--pod", &format!("{uid}=/proc/self/ns/net")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Wait until it listens and has recorded the pod, so the pod goes out
    // in the snapshot (an add refused outside a snapshot ends ambientctl).
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening"), "agent said {line:?}");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("pod uid={uid} ")),
        "agent said {line:?}"
    );
    std::thread::spawn(move || {
        let mut rest = String::new();
        while out.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {}
    });
    Agent(child, sock.to_string())
}

fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("no callback within 10 s")
}

fn temp_sock(tag: &str) -> String {
    std::env::temp_dir()
        .join(format!("ambient-rs-zds-{}-{tag}.sock", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn zds_proxy_receives_pods_from_the_agent() {
    let Some(ctl) = ambientctl() else {
        eprintln!("SKIPPED: no ambientctl under AMBIENT_BUILD_DIR");
        return;
    };
    let sock = temp_sock("ok");
    let mut agent = start_agent(&ctl, &sock, "uid-rs-1", 500);
    let (tx, rx) = mpsc::channel();
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = logged.clone();
    let mut proxy = ZdsProxy::with_log(
        &ZdsProxyOptions {
            socket_path: Some(sock.clone()),
            backoff_ms: Some((10, 100)),
            ..Default::default()
        },
        Box::new(Recorder { tx, refuse: None }),
        Box::new(move |level, component, message| {
            sink.lock()
                .unwrap()
                .push(format!("{level} {component} {message}"));
        }),
    )
    .unwrap();
    assert!(!proxy.ready());
    proxy.start().unwrap();
    assert_eq!(
        proxy.start().unwrap_err().code,
        sys::AMBIENT_ERR_FAILED_PRECONDITION
    );
    // The pod comes in the snapshot or right after it (the agent records it
    // just after it starts listening), so accept either order.
    let (mut added, mut snapshot) = (false, false);
    while !(added && snapshot) {
        match next(&rx) {
            Seen::Add(uid, w, ours) => {
                assert!(!added, "added twice");
                added = true;
                assert_eq!(uid, "uid-rs-1");
                assert_eq!(
                    w,
                    Workload {
                        name: "uid-rs-1".into(),
                        namespace: "default".into(),
                        service_account: "default".into()
                    }
                );
                assert!(ours, "the handed-over netns is the agent's (= ours)");
            }
            Seen::Event(ZdsEvent::SnapshotComplete) => snapshot = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(proxy.ready());
    assert_eq!(proxy.workload_count(), 1);
    match next(&rx) {
        Seen::Remove(uid) => assert_eq!(uid, "uid-rs-1"),
        other => panic!("expected remove, got {other:?}"),
    }
    let status = agent.0.wait().unwrap();
    assert!(
        status.success(),
        "agent: every add and delete acked ({status})"
    );
    proxy.stop();
    proxy.stop();
    assert!(!proxy.ready());
    drop(proxy);
    let logged = logged.lock().unwrap();
    assert!(
        logged.iter().any(|l| l.contains(" zds ")),
        "the log sink saw {logged:?}"
    );
}

#[test]
fn zds_proxy_refusal_reaches_the_agent_and_is_retried() {
    let Some(ctl) = ambientctl() else {
        eprintln!("SKIPPED: no ambientctl under AMBIENT_BUILD_DIR");
        return;
    };
    let sock = temp_sock("refuse");
    let _agent = start_agent(&ctl, &sock, "uid-rs-2", 3000);
    let (tx, rx) = mpsc::channel();
    let mut proxy = ZdsProxy::new(
        &ZdsProxyOptions {
            socket_path: Some(sock),
            retry_interval_ms: Some(100),
            ..Default::default()
        },
        Box::new(Recorder {
            tx,
            refuse: Some("not today".into()),
        }),
    )
    .unwrap();
    proxy.start().unwrap();
    let mut adds = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while adds < 3 && Instant::now() < deadline {
        if let Seen::Add(uid, _, _) = next(&rx) {
            assert_eq!(uid, "uid-rs-2");
            adds += 1;
        }
    }
    assert_eq!(
        adds, 3,
        "a refused pod is offered again every retry interval"
    );
    assert!(
        !proxy.ready(),
        "a refused pod pending keeps the proxy unready"
    );
    assert_eq!(proxy.workload_count(), 0);
    drop(proxy);
}

#[test]
fn zds_proxy_bad_options() {
    let h = || {
        let (tx, _rx) = mpsc::channel();
        Box::new(Recorder { tx, refuse: None })
    };
    let long = ZdsProxyOptions {
        socket_path: Some(format!("/{}", "a".repeat(120))),
        ..Default::default()
    };
    assert_eq!(
        ZdsProxy::new(&long, h()).err().unwrap().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    let backoff = ZdsProxyOptions {
        backoff_ms: Some((100, 10)),
        ..Default::default()
    };
    assert_eq!(
        ZdsProxy::new(&backoff, h()).err().unwrap().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    // Never started: dropping is clean.
    drop(ZdsProxy::new(&ZdsProxyOptions::default(), h()).unwrap());
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn dropping_handles_releases_descriptors() {
    // Other tests in this binary run in parallel and open descriptors too,
    // so allow some slack but not one per handle.
    let before = open_fds();
    for _ in 0..500 {
        let ns = Netns::current().unwrap();
        let dup = Netns::from_fd(ns.as_fd()).unwrap();
        drop(dup);
        drop(ns);
    }
    let after = open_fds();
    assert!(
        after < before + 50,
        "descriptors: {before} before, {after} after 1000 handles"
    );
}

/// Refuses pods whose uid starts with "bad".
struct Picky(mpsc::Sender<Seen>);
impl ZdsHandler for Picky {
    fn add(&mut self, uid: &str, w: &Workload, _netns: Netns) -> Result<(), String> {
        let _ = self.0.send(Seen::Add(uid.to_string(), w.clone(), true));
        if uid.starts_with("bad") {
            Err(format!("{uid} is not welcome"))
        } else {
            Ok(())
        }
    }
    fn remove(&mut self, uid: &str) {
        let _ = self.0.send(Seen::Remove(uid.to_string()));
    }
}

#[test]
fn rust_agent_and_rust_proxy() {
    use ambient::netns::{ZdsAgent, ZdsAgentOptions};
    let sock = temp_sock("agent");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    let agent = ZdsAgent::with_log(
        &ZdsAgentOptions {
            socket_path: Some(sock.clone()),
            timeout_ms: Some(5000),
        },
        Box::new(move |_level, component, message| {
            l2.lock().unwrap().push(format!("{component} {message}"));
        }),
    )
    .unwrap();
    let ns = Netns::current().unwrap();
    let w = Workload {
        name: "web".into(),
        namespace: "shop".into(),
        service_account: "web-sa".into(),
    };
    // No proxy yet: recorded, sent with the snapshot.
    assert_eq!(
        agent.add("early", &w, &ns).unwrap_err().code,
        sys::AMBIENT_ERR_UNAVAILABLE
    );
    assert_eq!(
        agent
            .wait_for_proxies(1, Duration::from_millis(20))
            .unwrap_err()
            .code,
        sys::AMBIENT_ERR_DEADLINE_EXCEEDED
    );
    let (tx, rx) = mpsc::channel();
    let mut proxy = ZdsProxy::new(
        &ZdsProxyOptions {
            socket_path: Some(sock.clone()),
            retry_interval_ms: Some(0),
            ..Default::default()
        },
        Box::new(Picky(tx)),
    )
    .unwrap();
    proxy.start().unwrap();
    agent.wait_for_proxies(1, Duration::from_secs(10)).unwrap();
    assert_eq!(agent.proxy_count(), 1);
    match next(&rx) {
        Seen::Add(uid, got, _) => assert_eq!((uid.as_str(), &got), ("early", &w)),
        other => panic!("expected the snapshot's add, got {other:?}"),
    }
    agent.add("late", &w, &ns).unwrap();
    assert!(matches!(next(&rx), Seen::Add(uid, _, _) if uid == "late"));
    let e = agent.add("bad-1", &w, &ns).unwrap_err();
    assert_eq!(e.code, sys::AMBIENT_ERR_ABORTED, "{e}");
    assert!(e.message.contains("bad-1 is not welcome"), "{e}");
    assert!(matches!(next(&rx), Seen::Add(uid, _, _) if uid == "bad-1"));
    assert_eq!(proxy.workload_count(), 2);
    agent.del("late").unwrap();
    assert!(matches!(next(&rx), Seen::Remove(uid) if uid == "late"));
    assert_eq!(proxy.workload_count(), 1);
    drop(proxy);
    drop(agent);
    assert!(
        !std::path::Path::new(&sock).exists(),
        "the agent removes its socket"
    );
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("zds ") && l.contains("connected")),
        "the agent's log sink saw {lines:?}"
    );
}

#[test]
fn run_inside_a_namespace() {
    if !is_root() {
        return;
    }
    let ns = Netns::new_unnamed().unwrap();
    let inside = ns
        .run(|| std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino())
        .unwrap();
    assert_eq!(inside, ns.id().1, "the closure ran inside the namespace");
    let back = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    assert_eq!(back, Netns::current().unwrap().id().1);
    assert_ne!(back, inside, "the thread came back");
    // A panic inside is resumed outside, after the thread is back.
    let r = std::panic::catch_unwind(|| ns.run(|| panic!("inside")));
    assert!(r.is_err());
    assert_eq!(
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        back
    );
}

#[test]
fn original_destination_of_a_plain_connection_is_the_local_address() {
    use ambient::netns::original_destination;
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(l) = std::net::TcpListener::bind(bind) else {
            continue; // no IPv6 loopback here
        };
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert_eq!(
            original_destination(s.as_fd()).unwrap(),
            l.local_addr().unwrap()
        );
    }
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(
        original_destination(a.as_fd()).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn inbound_socket_keeps_the_client_ip() {
    if !is_root() {
        return;
    }
    let ns = Netns::new_unnamed().unwrap();
    ns.loopback_up().unwrap();
    let client: std::net::SocketAddr = "198.18.0.7:40000".parse().unwrap();
    let dest: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let fd = ns.inbound_socket(client, dest, 0x539).unwrap();
    // Bound to the client's IP (freebind; nothing is sent), any port.
    let local = std::net::TcpStream::from(fd).local_addr().unwrap();
    assert_eq!(local.ip(), client.ip());
    let plain = ns.inbound_socket(dest, dest, 0).unwrap();
    drop(plain);
}
