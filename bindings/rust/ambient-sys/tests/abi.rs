//! The hand-written declarations in src/lib.rs checked against the C headers,
//! systest-style: the test reads the constants, enum types and structs that
//! lib.rs declares, generates a C program that prints what the C compiler
//! sees for each of them (values, sizeof, offsetof), compiles and runs it,
//! and compares. It also fails when a header has an enumerator, an enum type
//! or a public struct that lib.rs does not declare.
//!
//! Headers are found through AMBIENT_BUILD_DIR (a CMake build tree; the
//! source tree's include/ and the build's generated include/), else through
//! `pkg-config --cflags ambient`. The C compiler is $CC, else `cc`.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::{offset_of, size_of};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::process::Command;

use ambient_sys::{ambient_hbone_event, ambient_hbone_header};

const LIB_RS: &str = include_str!("../src/lib.rs");

/// `pub const NAME: TYPE = VALUE;` in lib.rs, with VALUE an integer literal.
fn rust_consts() -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in LIB_RS.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("pub const ") else {
            continue;
        };
        let (name, rest) = rest.split_once(':').expect("pub const NAME: TYPE = VALUE;");
        let value = rest
            .split_once('=')
            .expect("a value")
            .1
            .trim()
            .trim_end_matches(';')
            .trim();
        let value: i64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: value {value:?} is not an integer literal"));
        out.insert(name.trim().to_string(), value);
    }
    out
}

/// `pub type NAME = c_int;` in lib.rs: the C enum types.
fn rust_enum_types() -> BTreeSet<String> {
    LIB_RS
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub type "))
        .filter_map(|l| l.strip_suffix(" = c_int;"))
        .map(str::to_string)
        .collect()
}

/// `#[repr(C)] pub struct NAME { fields }` in lib.rs that are not opaque
/// (an opaque one holds only `_private: [u8; 0]`), with their field names.
fn rust_structs() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = LIB_RS.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|l| l.strip_suffix(" {"))
        else {
            continue;
        };
        let mut fields = Vec::new();
        for field in lines[i + 1..].iter().take_while(|l| **l != "}") {
            if let Some(f) = field.strip_prefix("pub ") {
                fields.push(f.split_once(':').expect("pub FIELD: TYPE,").0.to_string());
            }
        }
        if !fields.is_empty() {
            out.insert(name.to_string(), fields);
        }
    }
    out
}

/// The C headers' enum type names, their enumerators, and the names of the
/// non-opaque structs they define.
struct Headers {
    enum_types: BTreeSet<String>,
    enumerators: BTreeSet<String>,
    structs: BTreeSet<String>,
}

fn read_headers(include: &Path) -> Headers {
    let mut h = Headers {
        enum_types: BTreeSet::new(),
        enumerators: BTreeSet::new(),
        structs: BTreeSet::new(),
    };
    let dir = include.join("ambient/c");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map_or(false, |x| x == "h"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no headers in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut in_enum = false;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("typedef enum ") {
                h.enum_types.insert(rest.trim_end_matches(" {").to_string());
                in_enum = true;
            } else if let Some(rest) = line.strip_prefix("typedef struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    h.structs.insert(name.to_string());
                }
            } else if in_enum && line.starts_with('}') {
                in_enum = false;
            } else if in_enum && line.starts_with("AMBIENT_") {
                let name: String = line
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                h.enumerators.insert(name);
            }
        }
    }
    h
}

/// The `-I` flags for the headers, and the source include directory.
fn include_flags() -> (Vec<String>, PathBuf) {
    if let Some(build) = std::env::var_os("AMBIENT_BUILD_DIR") {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../include");
        let src = src.canonicalize().expect("the source tree's include/");
        let gen = PathBuf::from(build).join("include");
        return (
            vec![
                format!("-I{}", src.display()),
                format!("-I{}", gen.display()),
            ],
            src,
        );
    }
    let out = Command::new("pkg-config")
        .env_remove("LD_PRELOAD")
        .env_remove("ASAN_OPTIONS")
        .args(["--cflags-only-I", "ambient"])
        .output()
        .expect("neither AMBIENT_BUILD_DIR nor pkg-config: cannot find the C headers");
    assert!(
        out.status.success(),
        "set AMBIENT_BUILD_DIR or install ambient.pc: no C headers found"
    );
    let flags: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let src = flags
        .iter()
        .filter_map(|f| f.strip_prefix("-I"))
        .map(PathBuf::from)
        .find(|p| p.join("ambient/c").is_dir())
        .expect("pkg-config's include directories hold no ambient/c");
    (flags, src)
}

/// Compiles and runs `program`; returns its output lines as (key, number).
fn run_c(program: &str, flags: &[String]) -> BTreeMap<String, i64> {
    let dir = std::env::temp_dir().join(format!("ambient-sys-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, program).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    // The compiler and the program are tools, not the code under test: under
    // scripts/test-bindings-asan.sh the sanitizer preloaded into this test
    // would otherwise report the compiler's own leaks and fail it.
    let status = Command::new(&cc)
        .env_remove("LD_PRELOAD")
        .env_remove("ASAN_OPTIONS")
        .args(["-std=c11", "-Wall", "-Werror"])
        .args(flags)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(
        status.success(),
        "the generated C program does not compile: {}",
        src.display()
    );
    let out = Command::new(&exe)
        .env_remove("LD_PRELOAD")
        .env_remove("ASAN_OPTIONS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the generated C program failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// The C field name of a Rust field (`type_` is `type` in C).
fn c_field(rust: &str) -> &str {
    rust.strip_suffix('_').unwrap_or(rust)
}

/// The offsets the Rust declarations give, for every non-opaque struct.
fn rust_layout() -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: usize| {
        m.insert(k.to_string(), v as i64);
    };
    put(
        "sizeof ambient_hbone_header",
        size_of::<ambient_hbone_header>(),
    );
    put(
        "offsetof ambient_hbone_header name",
        offset_of!(ambient_hbone_header, name),
    );
    put(
        "offsetof ambient_hbone_header name_len",
        offset_of!(ambient_hbone_header, name_len),
    );
    put(
        "offsetof ambient_hbone_header value",
        offset_of!(ambient_hbone_header, value),
    );
    put(
        "offsetof ambient_hbone_header value_len",
        offset_of!(ambient_hbone_header, value_len),
    );
    put(
        "sizeof ambient_hbone_event",
        size_of::<ambient_hbone_event>(),
    );
    put(
        "offsetof ambient_hbone_event type",
        offset_of!(ambient_hbone_event, type_),
    );
    put(
        "offsetof ambient_hbone_event stream",
        offset_of!(ambient_hbone_event, stream),
    );
    put(
        "offsetof ambient_hbone_event http_status",
        offset_of!(ambient_hbone_event, http_status),
    );
    put(
        "offsetof ambient_hbone_event code",
        offset_of!(ambient_hbone_event, code),
    );
    put(
        "offsetof ambient_hbone_event message",
        offset_of!(ambient_hbone_event, message),
    );
    put(
        "offsetof ambient_hbone_event message_len",
        offset_of!(ambient_hbone_event, message_len),
    );
    put(
        "offsetof ambient_hbone_event authority",
        offset_of!(ambient_hbone_event, authority),
    );
    put(
        "offsetof ambient_hbone_event authority_len",
        offset_of!(ambient_hbone_event, authority_len),
    );
    put(
        "offsetof ambient_hbone_event n_headers",
        offset_of!(ambient_hbone_event, n_headers),
    );
    m
}

#[test]
fn declarations_match_the_c_headers() {
    let (flags, include) = include_flags();
    let headers = read_headers(&include);
    let consts = rust_consts();
    let enum_types = rust_enum_types();
    let structs = rust_structs();
    let mut problems = Vec::new();

    // Completeness, both ways.
    for e in headers
        .enumerators
        .difference(&consts.keys().cloned().collect())
    {
        problems.push(format!("{e} is in the headers but not in lib.rs"));
    }
    for c in consts.keys().filter(|c| !headers.enumerators.contains(*c)) {
        problems.push(format!("{c} is in lib.rs but no header enum has it"));
    }
    for t in headers.enum_types.difference(&enum_types) {
        problems.push(format!(
            "enum {t} is in the headers but lib.rs has no `pub type {t} = c_int;`"
        ));
    }
    let rust_struct_names: BTreeSet<String> = structs.keys().cloned().collect();
    if rust_struct_names != headers.structs {
        problems.push(format!(
            "public structs differ: headers {:?}, lib.rs {:?}",
            headers.structs, rust_struct_names
        ));
    }
    let layout = rust_layout();
    for (name, fields) in &structs {
        for f in fields {
            let key = format!("offsetof {name} {}", c_field(f));
            if !layout.contains_key(&key) {
                problems.push(format!("{name}.{f} is not in this test's rust_layout()"));
            }
        }
    }

    // What the C compiler sees.
    let mut c = String::from("#include <stddef.h>\n#include <stdio.h>\n#include \"ambient/ambient.h\"\nint main(void) {\n");
    for name in consts.keys().filter(|c| headers.enumerators.contains(*c)) {
        c += &format!("  printf(\"const {name} %lld\\n\", (long long)({name}));\n");
    }
    for t in headers.enum_types.intersection(&enum_types) {
        c += &format!("  printf(\"sizeof {t} %zu\\n\", sizeof({t}));\n");
    }
    for (name, fields) in structs.iter().filter(|(n, _)| headers.structs.contains(*n)) {
        c += &format!("  printf(\"sizeof {name} %zu\\n\", sizeof({name}));\n");
        for f in fields {
            let f = c_field(f);
            c += &format!("  printf(\"offsetof {name} {f} %zu\\n\", offsetof({name}, {f}));\n");
        }
    }
    c += "  return 0;\n}\n";
    let seen = run_c(&c, &flags);

    for (name, value) in consts
        .iter()
        .filter(|(c, _)| headers.enumerators.contains(*c))
    {
        let got = seen[&format!("const {name}")];
        if got != *value {
            problems.push(format!("{name}: lib.rs says {value}, the header {got}"));
        }
    }
    for t in headers.enum_types.intersection(&enum_types) {
        let got = seen[&format!("sizeof {t}")];
        if got != size_of::<c_int>() as i64 {
            problems.push(format!("sizeof({t}) is {got} in C, lib.rs declares c_int"));
        }
    }
    for (key, value) in &layout {
        match seen.get(key) {
            Some(got) if got == value => {}
            Some(got) => problems.push(format!("{key}: Rust {value}, C {got}")),
            None => problems.push(format!(
                "{key}: not measured in C (struct missing in lib.rs?)"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "lib.rs disagrees with the C headers:\n  {}",
        problems.join("\n  ")
    );
    // The check did look at something.
    assert!(
        consts.len() > 50 && !layout.is_empty(),
        "parsed too little of lib.rs"
    );
}
