//! Redirect binding tests. The apply/check/delete test needs root: it makes
//! its own uniquely named network namespace and removes it on Drop, even when
//! an assertion fails. Without root it is skipped loudly, or fails when
//! AMBIENT_REQUIRE_PRIVILEGED=1.
use std::process::Command;

use ambient::redirect::{Backend, RedirectConfig};
use ambient_sys as sys;
use std::os::fd::AsFd;

#[test]
fn render_defaults_ipv6_and_nftables() {
    let mut c = RedirectConfig::new();
    let text = c.render().unwrap();
    for want in [
        "* mangle",
        "* nat",
        "ISTIO_OUTPUT",
        "169.254.7.127",
        "COMMIT",
    ] {
        assert!(text.contains(want), "default rules lack {want}:\n{text}");
    }
    assert!(!text.ends_with('\n'));
    assert!(!text.contains("fd16:9254"), "IPv6 is off by default");
    c.set_ipv6(true).unwrap();
    let v6 = c.render().unwrap();
    assert!(v6.starts_with(&text) && v6.contains("fd16:9254:7127:1337:ffff:ffff:ffff:ffff"));
    c.set_backend(Backend::Nftables).unwrap();
    let nft = c.render().unwrap();
    assert!(
        nft.contains("istio-ambient") && !nft.contains("COMMIT"),
        "{nft}"
    );
}

#[test]
fn flags_match_setters_and_bad_flags_change_nothing() {
    let mut c = RedirectConfig::new();
    let defaults = c.render().unwrap();
    c.parse_flags(&[
        "--dns-capture",
        "off",
        "--probe-snat-v4=169.254.7.99",
        "--reroute-interface",
        "wg0",
    ])
    .unwrap();
    let by_flags = c.render().unwrap();
    assert!(by_flags.contains("169.254.7.99") && by_flags.contains("wg0"));
    assert!(
        !by_flags.contains("--dport 53"),
        "DNS capture is off:\n{by_flags}"
    );

    let mut s = RedirectConfig::default();
    s.set_dns_capture(false).unwrap();
    s.set_probe_snat_v4("169.254.7.99").unwrap();
    s.add_reroute_interface("wg0").unwrap();
    assert_eq!(s.render().unwrap(), by_flags);

    for bad in [
        &["--nope"][..],
        &["--backend", "pf"],
        &["--probe-snat-v4", "300.1.1.1"],
        &["--kubelet-uid"],
    ] {
        let e = c.parse_flags(bad).unwrap_err();
        assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT, "{bad:?}");
        assert!(!e.message.is_empty());
        assert_eq!(c.render().unwrap(), by_flags, "{bad:?} changed the config");
    }
    assert_eq!(
        c.parse_flags(&["a\0b"]).unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    c.parse_flags::<&str>(&[]).unwrap();
    assert_eq!(c.render().unwrap(), defaults);

    assert_eq!(
        c.set_probe_snat_v4("fd00::1").unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        c.set_probe_snat_v6("1.2.3.4").unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        c.add_reroute_interface("has space").unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
    assert_eq!(c.render().unwrap(), defaults);
    c.set_pod_dns_capture(Some(false)).unwrap();
    c.set_pod_dns_capture(None).unwrap();
    c.set_host(true).unwrap();
    c.set_bypass_inbound(true).unwrap();
    c.set_kubelet_uid(1234).unwrap();
    assert_ne!(c.render().unwrap(), defaults);
}

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    extern "C" {
        fn geteuid() -> u32;
    }
    if unsafe { geteuid() } == 0 {
        return true;
    }
    if std::env::var("AMBIENT_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("this test needs root and AMBIENT_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("SKIPPED: needs root (set AMBIENT_REQUIRE_PRIVILEGED=1 to make this a failure)");
    false
}

/// A network namespace made for one test and deleted on Drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ambient-test-{}-rs-{tag}", std::process::id());
        let out = Command::new("ip")
            .env_remove("LD_PRELOAD")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .env_remove("LD_PRELOAD")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn netns_exec(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .env_remove("LD_PRELOAD")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apply_check_delete_in_a_namespace() {
    if !privileged() {
        return;
    }
    for backend in [Backend::Iptables, Backend::Nftables] {
        let ns = Netns::new(&format!("{backend:?}").to_lowercase());
        let handle = open_ns(&ns.0);
        let mut c = RedirectConfig::new();
        c.set_backend(backend).unwrap();
        assert!(
            !c.check(&handle).unwrap().is_empty(),
            "an empty namespace has drift"
        );
        c.apply(&handle).unwrap();
        assert_eq!(c.check(&handle).unwrap(), Vec::<String>::new());
        c.apply(&handle).unwrap();
        let path = format!("/var/run/netns/{}", ns.0);
        assert_eq!(c.check(&open_ns(&path)).unwrap(), Vec::<String>::new());
        let f = std::fs::File::open(&path).unwrap();
        let by_fd = ambient::netns::Netns::from_fd(f.as_fd()).unwrap();
        assert_eq!(c.check(&by_fd).unwrap(), Vec::<String>::new());
        match backend {
            Backend::Iptables => {
                let mut saved = netns_exec(&ns.0, &["iptables-save"]);
                if !saved.contains("ISTIO_OUTPUT") {
                    saved = netns_exec(&ns.0, &["iptables-legacy-save"]);
                }
                assert!(saved.contains("ISTIO_OUTPUT"), "{saved}");
            }
            Backend::Nftables => {
                let tables = netns_exec(&ns.0, &["nft", "list", "tables"]);
                assert!(tables.contains("istio-ambient"), "{tables}");
            }
        }
        let mut other = RedirectConfig::new();
        other.set_backend(backend).unwrap();
        other.set_probe_snat_v4("169.254.7.99").unwrap();
        assert!(
            !other.check(&handle).unwrap().is_empty(),
            "a different config shows drift"
        );
        c.delete(&by_fd).unwrap();
        assert!(
            !c.check(&handle).unwrap().is_empty(),
            "deleted rules show as drift"
        );
        c.delete(&handle).unwrap();
    }
}

#[test]
fn apply_to_missing_namespace_fails_cleanly() {
    if !privileged() {
        return;
    }
    // The namespace is opened first: a missing one is reported there.
    let e = ambient::netns::Netns::open(&format!("ambient-rs-missing-{}", std::process::id()))
        .unwrap_err();
    assert_eq!(e.code, sys::AMBIENT_ERR_NOT_FOUND, "{e}");
    assert_eq!(
        ambient::netns::Netns::open("a\0b").unwrap_err().code,
        sys::AMBIENT_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn one_config_renders_from_many_threads() {
    let mut c = RedirectConfig::new();
    c.set_ipv6(true).unwrap();
    let c = std::sync::Arc::new(c);
    let want = c.render().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || (0..50).map(|_| c.render().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|r| *r == want));
    }
}

/// A handle on the namespace `name_or_path`.
fn open_ns(name_or_path: &str) -> ambient::netns::Netns {
    ambient::netns::Netns::open(name_or_path).unwrap()
}

fn members(c: &RedirectConfig, ns: &ambient::netns::Netns) -> String {
    c.probe_list(ns)
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m.address, m.pod_uid))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn host_probe_sets_keep_pod_uids() {
    if !privileged() {
        return;
    }
    for backend in [Backend::Iptables, Backend::Nftables] {
        let ns = Netns::new(&format!("probes-{backend:?}").to_lowercase());
        let handle = open_ns(&ns.0);
        let mut c = RedirectConfig::new();
        c.set_backend(backend).unwrap();
        c.set_host(true).unwrap();
        c.set_ipv6(true).unwrap();
        c.set_kubelet_uid(1000).unwrap();
        // No sets before the host rules are applied.
        assert_eq!(
            c.probe_add(&handle, "198.18.0.9", "uid-a")
                .unwrap_err()
                .code,
            sys::AMBIENT_ERR_NOT_FOUND
        );
        assert_eq!(
            c.probe_list(&handle).unwrap_err().code,
            sys::AMBIENT_ERR_NOT_FOUND
        );
        c.apply(&handle).unwrap();
        assert_eq!(members(&c, &handle), "");

        c.probe_add(&handle, "198.18.0.9", "uid-a").unwrap();
        c.probe_add(&handle, "2001:db8::9", "uid-a").unwrap();
        assert_eq!(members(&c, &handle), "198.18.0.9 uid-a,2001:db8::9 uid-a");
        // Re-adding replaces the UID.
        c.probe_add(&handle, "198.18.0.9", "uid-b").unwrap();
        assert_eq!(members(&c, &handle), "198.18.0.9 uid-b,2001:db8::9 uid-a");
        // Another pod's UID removes nothing, and the refusal names the owner.
        let e = c
            .probe_remove(&handle, "198.18.0.9", Some("uid-a"))
            .unwrap_err();
        assert_eq!(e.code, sys::AMBIENT_ERR_FAILED_PRECONDITION, "{e}");
        assert!(e.message.contains("uid-b"), "{e}");
        assert_eq!(members(&c, &handle), "198.18.0.9 uid-b,2001:db8::9 uid-a");
        // Bad input is refused and changes nothing.
        for (addr, uid) in [
            ("198.18.0.300", "uid-c"),
            ("not-an-ip", "uid-c"),
            ("", "uid-c"),
            ("198.18.0.10", ""),
            ("198.18.0.10", "has space"),
            ("198.18.0.10", "nul\0uid"),
            ("198.18.0.10\0", "uid-c"),
        ] {
            let e = c.probe_add(&handle, addr, uid).unwrap_err();
            assert_eq!(
                e.code,
                sys::AMBIENT_ERR_INVALID_ARGUMENT,
                "{addr:?} {uid:?}"
            );
        }
        assert_eq!(
            c.probe_remove(&handle, "198.18.0.300", None)
                .unwrap_err()
                .code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(members(&c, &handle), "198.18.0.9 uid-b,2001:db8::9 uid-a");

        // A handle opened from a descriptor sees the same sets.
        let f = std::fs::File::open(format!("/var/run/netns/{}", ns.0)).unwrap();
        let by_fd = ambient::netns::Netns::from_fd(f.as_fd()).unwrap();
        c.probe_remove(&by_fd, "198.18.0.9", Some("uid-b")).unwrap();
        c.probe_remove(&handle, "2001:db8::9", None).unwrap(); // any UID
        c.probe_remove(&handle, "198.18.0.9", Some("uid-b"))
            .unwrap(); // absent: fine
        c.probe_add(&by_fd, "::ffff:198.18.0.6", "uid-c").unwrap(); // IPv4-mapped
        assert_eq!(
            c.probe_list(&by_fd).unwrap(),
            vec![ambient::redirect::ProbeMember {
                address: "198.18.0.6".into(),
                pod_uid: "uid-c".into()
            }]
        );
        // The kernel's set holds it too.
        let shown = match backend {
            Backend::Iptables => netns_exec(&ns.0, &["ipset", "list", "istio-inpod-probes-v4"]),
            Backend::Nftables => netns_exec(
                &ns.0,
                &[
                    "nft",
                    "list",
                    "set",
                    "inet",
                    "istio-ambient-nat",
                    "istio-inpod-probes-v4",
                ],
            ),
        };
        assert!(
            shown.contains("198.18.0.6") && shown.contains("uid-c"),
            "{shown}"
        );

        // IPv6 with IPv6 off is refused.
        let mut v4 = RedirectConfig::new();
        v4.set_backend(backend).unwrap();
        v4.set_host(true).unwrap();
        assert_eq!(
            v4.probe_add(&handle, "2001:db8::7", "uid-d")
                .unwrap_err()
                .code,
            sys::AMBIENT_ERR_INVALID_ARGUMENT
        );
    }
}
