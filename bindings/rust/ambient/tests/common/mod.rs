//! Shared by the integration tests: the test PKI.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The test PKI (file name -> contents), made once per test binary by
/// `go run testdata/gencerts.go` (tests run in parallel and share it).
pub fn pki() -> &'static HashMap<String, Vec<u8>> {
    static FILES: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let testdata = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let dir = std::env::temp_dir().join(format!("ambient-rust-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("go")
            .env_remove("LD_PRELOAD") // scripts/test-bindings-asan.sh: not for tools
            .current_dir(&testdata)
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .args(["run", "gencerts.go"])
            .arg(&dir)
            .output()
            .expect("running `go run gencerts.go` (Go is needed for the test PKI)");
        assert!(
            out.status.success(),
            "gencerts failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files = HashMap::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            files.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
        files
    })
}
