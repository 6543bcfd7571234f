// Link-time rpath to libambient for this crate's binaries, examples and tests
// (a dependency's rustc-link-arg does not reach them), and the directory
// passed on to crates depending on this one as DEP_AMBIENT_RS_LIBDIR: a
// build.rs of theirs sets their own rpath from it (bindings/README.md).
fn main() {
    if let Ok(dir) = std::env::var("DEP_AMBIENT_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:libdir={dir}");
    }
}
