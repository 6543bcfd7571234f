#!/usr/bin/python3
"""Checks the Rust -sys crate's hand-written extern declarations against the C
headers, so a wrong parameter type is a failed test instead of a crash.

  check_rust_sys.py signatures LIB_RS OUT_CC CXX [CXX_FLAGS...]
      Writes OUT_CC: for every function the `extern "C"` blocks of LIB_RS
      declare, static_asserts that the header's return type, parameter count
      and each parameter's type equal the Rust declaration's, translated to
      C++ (`*const c_char` -> `const char*`, `Option<unsafe extern "C"
      fn(..)>` -> a function pointer, `pub type` aliases and `#[repr(C)]`
      structs by name). Then compiles it with CXX (-fsyntax-only) and fails
      with the compiler's message naming the function and parameter.
      Enums: C lets the compiler pick an enum's integer type (GCC takes
      unsigned int when no value is negative), so an enum in the header
      matches an `int`-sized Rust integer (the -sys crate declares them as
      c_int); everything else must be the same type, constness of pointees
      included.

  check_rust_sys.py bound LIB_RS NOT_BOUND LIBAMBIENT_SO
      Fails when a function libambient.so exports (exports.map: ambient_*)
      is neither declared in LIB_RS nor listed in NOT_BOUND ("name  # why"
      per line), or when NOT_BOUND lists a name that is declared in Rust or
      not exported (a stale entry).
"""
import re
import subprocess
import sys

PRIMITIVES = {
    "c_char": "char", "c_schar": "signed char", "c_uchar": "unsigned char",
    "c_short": "short", "c_ushort": "unsigned short",
    "c_int": "int", "c_uint": "unsigned int",
    "c_long": "long", "c_ulong": "unsigned long",
    "c_longlong": "long long", "c_ulonglong": "unsigned long long",
    "c_void": "void", "c_float": "float", "c_double": "double",
    "i8": "int8_t", "u8": "uint8_t", "i16": "int16_t", "u16": "uint16_t",
    "i32": "int32_t", "u32": "uint32_t", "i64": "int64_t", "u64": "uint64_t",
    "usize": "size_t", "isize": "ptrdiff_t", "bool": "bool", "f32": "float", "f64": "double",
}


class Error(Exception):
    pass


def strip_comments(text):
    """Blanks out // and /* */ comments and string literals other than "C",
    keeping line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def split_top(s, sep):
    """Splits s at `sep` characters outside (), <>, []."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if s.startswith("->", i):
            cur.append("->")
            i += 2
            continue
        if c in "(<[":
            depth += 1
        elif c in ")>]":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


class Crate:
    def __init__(self, path):
        self.path = path
        raw = open(path).read()
        self.text = strip_comments(raw)
        self.aliases = {}
        for m in re.finditer(r"\bpub\s+type\s+(\w+)\s*=\s*(.*?);", self.text, re.S):
            self.aliases[m.group(1)] = m.group(2)
        self.structs = set(re.findall(r"\bpub\s+struct\s+(\w+)", self.text))
        self.functions = []  # (name, [(param, rust type)], rust return type or None, line)
        for m in re.finditer(r'\bextern\s+"C"\s*\{', self.text):
            start = m.end()
            depth, i = 1, start
            while depth:
                if i >= len(self.text):
                    raise Error(f"{path}: unbalanced extern block at offset {m.start()}")
                depth += {"{": 1, "}": -1}.get(self.text[i], 0)
                i += 1
            body = self.text[start:i - 1]
            offset = start
            for item in body.split(";"):
                line = self.text.count("\n", 0, offset + len(item) - len(item.lstrip())) + 1
                offset += len(item) + 1
                item = " ".join(item.split())
                if not item:
                    continue
                item = re.sub(r"^(#\[[^\]]*\]\s*)+", "", item)
                fm = re.match(r"^(?:pub(?:\([^)]*\))?\s+)?fn\s+(\w+)\s*\((.*)\)\s*(?:->\s*(.*))?$",
                              item)
                if not fm:
                    raise Error(f"{path}:{line}: not a function declaration: {item[:80]}")
                params = []
                for p in split_top(fm.group(2), ","):
                    pm = re.match(r"^\s*(\w+)\s*:(?!:)\s*(.*?)\s*$", p, re.S)
                    if not pm:
                        raise Error(f"{path}:{line}: cannot read parameter {p!r}")
                    params.append((pm.group(1), pm.group(2)))
                self.functions.append((fm.group(1), params, fm.group(3), line))

    def cxx(self, t, seen=()):
        """The C++ spelling of Rust type t (using the Ptr/Fn aliases)."""
        t = " ".join(t.split())
        if t in ("()", ""):
            return "void"
        m = re.match(r"^\*\s*(const|mut)\s+(.*)$", t)
        if m:
            inner = self.cxx(m.group(2), seen)
            return f"Ptr<const {inner}>" if m.group(1) == "const" else f"Ptr<{inner}>"
        m = re.match(r"^Option\s*<(.*)>$", t)
        if m:
            inner = m.group(1).strip().rstrip(",").strip()
            if not re.match(r"^(unsafe\s+)?(extern\s+\"C\"\s+)?fn\b", inner):
                raise Error(f"Option<{inner}> is only understood around a function pointer")
            return self.cxx(inner, seen)
        m = re.match(r"^(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s*\((.*)\)\s*(?:->\s*(.*))?$", t)
        if m:
            if not m.group(2):
                raise Error(f"function pointer without extern \"C\": {t}")
            args = []
            for p in split_top(m.group(3), ","):
                pm = re.match(r"^\s*(?:\w+\s*:(?!:))?\s*(.*?)\s*$", p, re.S)
                args.append(self.cxx(pm.group(1), seen))
            ret = self.cxx(m.group(4) or "()", seen)
            return f"Ptr<Fn<{', '.join([ret] + args)}>>"
        name = t.split("::")[-1].strip()
        if not re.match(r"^\w+$", name):
            raise Error(f"cannot translate Rust type {t!r}")
        if name in PRIMITIVES:
            return PRIMITIVES[name]
        if name in self.aliases:
            if name in seen:
                raise Error(f"recursive type alias {name}")
            return self.cxx(self.aliases[name], seen + (name,))
        if name in self.structs:
            return name  # a #[repr(C)] struct mirrors the C type of that name
        raise Error(f"unknown Rust type {name!r}")


PRELUDE = r"""// Generated by tests/capi/check_rust_sys.py from %(src)s: do not edit.
// Each Rust extern declaration of the -sys crate, checked against the C
// header's declaration of the same function.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ambient/ambient.h"

namespace rust_sys_check {

template <class T> using Ptr = T*;
template <class R, class... A> using Fn = R(A...);

// Norm: an enum becomes the int of its size (C leaves its integer type to the
// compiler); pointers, pointees' constness and function types are kept and
// normalised inside.
template <class T, bool = std::is_enum<T>::value> struct Norm { using type = T; };
template <class T> struct Norm<T, true> {
  static_assert(sizeof(T) == sizeof(int), "an enum that is not int-sized");
  using type = int;
};
template <class T> struct Norm<const T, true> { using type = const int; };
template <class T> struct Norm<const T, false> { using type = const typename Norm<T>::type; };
template <class T> struct Norm<T*, false> { using type = typename Norm<T>::type*; };
template <class R, class... A> struct Norm<R(A...), false> {
  using type = typename Norm<R>::type(typename Norm<A>::type...);
};
template <class A, class B> constexpr bool Same() {
  return std::is_same<typename Norm<A>::type, typename Norm<B>::type>::value;
}

struct NoSuchParameter {};
template <std::size_t I, class... A> struct ArgAt { using type = NoSuchParameter; };
template <class H, class... T> struct ArgAt<0, H, T...> { using type = H; };
template <std::size_t I, class H, class... T> struct ArgAt<I, H, T...> {
  using type = typename ArgAt<I - 1, T...>::type;
};
template <class F> struct Sig;
template <class R, class... A> struct Sig<R(A...)> {
  using ret = R;
  static constexpr std::size_t arity = sizeof...(A);
  template <std::size_t I> using arg = typename ArgAt<I, A...>::type;
};

"""


def lit(s):
    """s inside a C++ string literal."""
    return " ".join(s.split()).replace("\\", "\\\\").replace('"', '\\"')


def signatures(lib_rs, out_cc, cxx):
    crate = Crate(lib_rs)
    if not crate.functions:
        raise Error(f"{lib_rs}: no extern \"C\" functions found")
    lines = [PRELUDE % {"src": lib_rs}]
    for name, params, ret, line in crate.functions:
        where = f"{lib_rs}:{line}"
        lines.append(f"// {name} ({where})")
        lines.append(f"using S_{name} = Sig<decltype({name})>;")
        lines.append(f"static_assert(S_{name}::arity == {len(params)}, \"{name} ({where}): the "
                     f"header's parameter count is not the {len(params)} Rust declares\");")
        lines.append(f"static_assert(Same<S_{name}::ret, {crate.cxx(ret or '()')}>(), \"{name} "
                     f"({where}): return type differs from Rust's `{lit(ret or '()')}`\");")
        for i, (pname, ptype) in enumerate(params):
            lines.append(f"static_assert(Same<S_{name}::arg<{i}>, {crate.cxx(ptype)}>(), \"{name} "
                         f"({where}): parameter {i + 1} `{pname}` differs from Rust's "
                         f"`{lit(ptype)}`\");")
        lines.append("")
    lines.append("}  // namespace rust_sys_check\n")
    lines.append("int main() { return 0; }\n")
    with open(out_cc, "w") as f:
        f.write("\n".join(lines))
    r = subprocess.run(cxx + ["-std=c++17", "-fsyntax-only", "-fmax-errors=50", out_cc],
                       capture_output=True, text=True)
    if r.returncode != 0:
        errs = [l for l in r.stderr.splitlines() if ": error:" in l]
        print("\n".join(errs) or r.stderr)
        print(f"FAIL: the Rust declarations in {lib_rs} do not match the C headers "
              f"({len(errs)} errors; generated {out_cc})")
        return 1
    print(f"{len(crate.functions)} Rust extern declarations match the C headers "
          f"(return type, parameter count and every parameter type)")
    return 0


def bound(lib_rs, not_bound_path, so):
    declared = {f[0] for f in Crate(lib_rs).functions}
    nm = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                        check=True).stdout
    exported = {l.split()[2] for l in nm.splitlines()
                if len(l.split()) == 3 and l.split()[1] in "Tt" and l.split()[2].startswith("ambient_")}
    if not exported:
        raise Error(f"{so}: no exported ambient_* functions")
    listed = {}
    for n, l in enumerate(open(not_bound_path), 1):
        name = l.split("#", 1)[0].strip()
        if not name:
            continue
        if "#" not in l or not l.split("#", 1)[1].strip():
            raise Error(f"{not_bound_path}:{n}: {name} has no reason after '#'")
        listed[name] = n
    bad = 0
    for name in sorted(exported - declared - set(listed)):
        print(f"FAIL: {name} is exported but neither declared in {lib_rs} nor listed in "
              f"{not_bound_path}")
        bad += 1
    for name in sorted(set(listed) & declared):
        print(f"FAIL: {not_bound_path}:{listed[name]}: {name} is declared in Rust after all")
        bad += 1
    for name in sorted(set(listed) - exported):
        print(f"FAIL: {not_bound_path}:{listed[name]}: {name} is not exported by {so}")
        bad += 1
    for name in sorted(declared - exported):
        print(f"FAIL: {name} is declared in {lib_rs} but not exported by {so}")
        bad += 1
    if bad:
        return 1
    print(f"{len(exported)} exported functions: {len(exported & declared)} declared in Rust, "
          f"{len(listed)} listed as intentionally not bound")
    return 0


def main(argv):
    try:
        if len(argv) >= 5 and argv[1] == "signatures":
            return signatures(argv[2], argv[3], argv[4:])
        if len(argv) == 5 and argv[1] == "bound":
            return bound(argv[2], argv[3], argv[4])
    except Error as e:
        print(f"FAIL: {e}")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
