// Link-time rpath to libambient for this crate's binaries and tests (a
// dependency's rustc-link-arg does not reach them).
fn main() {
    if let Ok(dir) = std::env::var("DEP_AMBIENT_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
