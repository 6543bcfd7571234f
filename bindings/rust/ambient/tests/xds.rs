//! The CA client (ambient::xds) against the fake istiod's CA
//! (tests/xds/fake_istiod.py --ca), over loopback.
mod common;
use common::pki;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use ambient::identity::Credentials;
use ambient::runtime::{Loop, NodeProxyOptions};
use ambient::xds::{CaCertificate, CaClientOptions, CaState, XdsOptions};
use ambient::ErrorCode;

const WEB: &str = "spiffe://example.org/ns/default/sa/web";

/// The fake istiod with the test PKI's CA; killed on drop.
struct FakeCa {
    child: Child,
    addr: String,
    requests: mpsc::Receiver<String>,
    dir: PathBuf,
}

impl Drop for FakeCa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fake_ca(tag: &str) -> FakeCa {
    fake_istiod(tag, &[])
}

/// fake_ca with istiod's state (--state) set by `commands` (fake_istiod.py's
/// JSON lines) before any client connects.
fn fake_istiod(tag: &str, commands: &[String]) -> FakeCa {
    let top = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let dir = std::env::temp_dir().join(format!("ambient-rust-ca-{}-{}", std::process::id(), tag));
    std::fs::create_dir_all(&dir).unwrap();
    let f = pki();
    std::fs::write(dir.join("ca.pem"), &f["ca.pem"]).unwrap();
    std::fs::write(dir.join("ca.key"), &f["ca.key"]).unwrap();
    std::fs::write(dir.join("token"), "tok-rust").unwrap();
    let p = |s: &str| top.join(s).to_string_lossy().into_owned();
    let out = Command::new("protoc")
        .env_remove("LD_PRELOAD")
        .arg(format!("--python_out={}", dir.display()))
        .args([
            "-I",
            &p("lib/xds"),
            "-I",
            &p("lib/authz"),
            "-I",
            "/usr/include",
        ])
        .args([
            p("lib/xds/discovery.proto"),
            p("lib/xds/workload.proto"),
            p("lib/xds/ca.proto"),
            p("lib/authz/authorization.proto"),
        ])
        .output()
        .expect("protoc");
    assert!(
        out.status.success(),
        "protoc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new("/usr/bin/python3")
        .env_remove("LD_PRELOAD")
        .arg(p("tests/xds/fake_istiod.py"))
        .arg(&dir)
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .arg(dir.join("ca.key"))
        .arg("--state")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 fake_istiod.py");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for c in commands {
            writeln!(stdin, "{c}").unwrap();
        }
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let (tx, requests) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("\"type\": \"ca\"") && tx.send(line).is_err() {
                return;
            }
        }
    });
    FakeCa {
        child,
        addr: format!("127.0.0.1:{port}"),
        requests,
        dir,
    }
}

fn wait_for(lp: &Loop, cert: &CaCertificate<'_>, state: CaState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cert.status().state != state {
        assert!(Instant::now() < deadline, "state {:?}", cert.status());
        lp.run_for(Duration::from_millis(20));
    }
}

#[test]
fn acquires_a_certificate_naming_the_identity() {
    let ca = fake_ca("ok");
    let lp = Loop::new().unwrap();
    let client = lp
        .ca_client(&CaClientOptions {
            address: ca.addr.clone(),
            token_file: Some(ca.dir.join("token").to_string_lossy().into_owned()),
            cluster_id: Some("cluster-rs".into()),
            validity: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .unwrap();
    let cert = client.acquire(WEB).unwrap();
    assert_eq!(cert.id(), WEB);
    assert_eq!(cert.status().state, CaState::Initializing);
    assert_eq!(
        cert.pem().unwrap_err().kind(),
        ErrorCode::FailedPrecondition
    );
    wait_for(&lp, &cert, CaState::Available);
    let s = cert.status();
    let left = s
        .not_after
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(3480) && left < Duration::from_secs(3720),
        "{left:?}"
    );
    assert_eq!((s.failures, s.last_error.as_str()), (0, ""));
    let (chain, key) = cert.pem().unwrap();
    let loaded = Credentials::from_pem(&chain, &key).unwrap();
    assert_eq!(loaded.id().unwrap().as_str(), WEB);
    assert_eq!(cert.credentials().unwrap().id().unwrap().as_str(), WEB);
    assert_eq!(cert.root_pem().unwrap(), pki()["ca.pem"]);
    let req = ca.requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        req.contains(WEB) && req.contains("Bearer tok-rust") && req.contains("cluster-rs"),
        "{req}"
    );
}

#[test]
fn bad_options_and_identities_are_refused() {
    let lp = Loop::new().unwrap();
    let err = |o: CaClientOptions| lp.ca_client(&o).err().unwrap();
    assert_eq!(
        err(CaClientOptions::default()).kind(),
        ErrorCode::InvalidArgument
    );
    let e = err(CaClientOptions {
        address: "no-port".into(),
        ..Default::default()
    });
    assert_eq!(e.kind(), ErrorCode::InvalidArgument);
    assert!(e.message.contains("no-port"), "{}", e.message);
    let e = err(CaClientOptions {
        address: "127.0.0.1:15012".into(),
        roots_pem_file: Some("/nonexistent/roots.pem".into()),
        ..Default::default()
    });
    assert_eq!(e.kind(), ErrorCode::NotFound);
    assert!(
        e.message.contains("/nonexistent/roots.pem"),
        "{}",
        e.message
    );
    let client = lp
        .ca_client(&CaClientOptions {
            address: "127.0.0.1:1".into(),
            ..Default::default()
        })
        .unwrap();
    for id in ["", "https://example.org/ns/a/sa/b", "spiffe://"] {
        assert_eq!(
            client.acquire(id).err().unwrap().kind(),
            ErrorCode::InvalidArgument,
            "{id}"
        );
    }
}

#[test]
fn unreachable_ca_is_reported_and_client_may_go_first() {
    let lp = Loop::new().unwrap();
    let client = lp
        .ca_client(&CaClientOptions {
            address: "127.0.0.1:1".into(),
            timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        })
        .unwrap();
    let cert = client.acquire(WEB).unwrap();
    let creds = cert.credentials().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cert.status().failures == 0 {
        assert!(Instant::now() < deadline);
        lp.run_for(Duration::from_millis(20));
    }
    let s = cert.status();
    assert_eq!(s.state, CaState::Unavailable);
    assert!(!s.last_error.is_empty());
    assert_eq!(s.not_after, None);
    drop(client);
    assert_eq!(cert.status().state, CaState::Unavailable);
    drop(cert);
    lp.run_for(Duration::from_millis(20));
    assert_eq!(
        creds.id().unwrap_err().kind(),
        ErrorCode::FailedPrecondition
    );
}

#[test]
fn node_proxy_from_xds_becomes_ready() {
    const ADDRESS: &str = "type.googleapis.com/istio.workload.Address";
    let pod = |name: &str, sa: &str, node: &str, ip: &str| {
        format!(
            r#"["Kubernetes//Pod/ns1/{name}", "v1", "workload.Address", {{"workload": {{"uid": "Kubernetes//Pod/ns1/{name}", "name": "{name}", "namespace": "ns1", "addresses": ["{ip}"], "tunnelProtocol": "HBONE", "serviceAccount": "{sa}", "node": "{node}"}}}}]"#
        )
    };
    let set = format!(
        r#"{{"set_messages": {{"type": "{ADDRESS}", "any_type": "{ADDRESS}", "resources": [{}, {}]}}}}"#,
        pod("a", "sa-a", "node-1", "xhIACg=="),
        pod("c", "sa-c", "node-2", "xhIADA==")
    );
    let istiod = fake_istiod("xds", &[set]);
    let lp = Loop::new().unwrap();
    let mut options = NodeProxyOptions {
        xds: Some(XdsOptions {
            address: istiod.addr.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = lp.node_proxy(&options, None).err().unwrap();
    assert_eq!(e.kind(), ErrorCode::InvalidArgument);
    assert_eq!(e.message, "xDS options: no node name set");
    options.xds.as_mut().unwrap().node_name = "node-1".into();
    options.xds.as_mut().unwrap().cluster_id = Some("cluster-rs".into());
    let proxy = lp.node_proxy(&options, None).unwrap();
    assert!(!proxy.ready());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.ready() {
        assert!(Instant::now() < deadline, "never ready");
        lp.run_for(Duration::from_millis(20));
    }
    // Ready needed the prefetched certificate of node-1's pod, and only that.
    let req = istiod
        .requests
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(
        req.contains("spiffe://cluster.local/ns/ns1/sa/sa-a") && req.contains("cluster-rs"),
        "{req}"
    );
    assert!(istiod
        .requests
        .recv_timeout(Duration::from_millis(200))
        .is_err());
}
