// Finds libambient: AMBIENT_LIB_DIR (a directory holding libambient.so), else
// AMBIENT_BUILD_DIR (a CMake build tree), else pkg-config, else the default
// linker search path.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=AMBIENT_LIB_DIR");
    println!("cargo:rerun-if-env-changed=AMBIENT_BUILD_DIR");
    let dir = env::var_os("AMBIENT_LIB_DIR")
        .map(PathBuf::from)
        .or_else(|| env::var_os("AMBIENT_BUILD_DIR").map(|b| PathBuf::from(b).join("lib/capi")))
        .or_else(pkg_config_libdir);
    if let Some(dir) = dir {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        // Dependents read this as DEP_AMBIENT_LIBDIR to set their own rpath.
        println!("cargo:libdir={}", dir.display());
    }
    println!("cargo:rustc-link-lib=dylib=ambient");
}

fn pkg_config_libdir() -> Option<PathBuf> {
    let out = Command::new("pkg-config")
        .args(["--variable=libdir", "ambient"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}
