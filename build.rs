//! Compiles the Microvium engine from the pinned npm package together with
//! this project's port header and C glue (c/), then lets napi-build set up
//! the Node-API link flags.
//!
//! The engine is never copied into the repository. Its defects are fixed by
//! the named patches in c/patches/ (unified diffs against the pristine
//! microvium.c of the pinned version), applied here to a copy in the build
//! directory. A patch that no longer applies fails the build: the version
//! is pinned, so that means someone changed the engine or a patch by hand.
//!
//! The error names and descriptions of `mvm_TeError` are read from the same
//! package's microvium.h, so error messages quote the engine's own words.
//! The glue's constants (value kinds, fatal reasons, GLUE_FATAL_BASE) and
//! the field lists of the structs Rust declares again are read from
//! c/engine.h (and microvium.h): C is their one source.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    napi_build::setup();

    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let pristine = manifest.join("node_modules/microvium/dist-c");
    if !pristine.join("microvium.c").exists() {
        panic!(
            "{} not found: run `npm install` first (the engine comes from the \
             npm package `microvium`, pinned in devDependencies)",
            pristine.display()
        );
    }

    let engine_dir = out_dir.join("engine");
    let patches = write_patched_engine(&pristine, &manifest.join("c/patches"), &engine_dir);
    // C-only programs (the bench floor, the fuzzer, the ASan build) compile
    // the same patched engine; they find it here after `npm run build`.
    let shared = manifest.join("target/engine");
    std::fs::create_dir_all(&shared).expect("create target/engine");
    for f in ["microvium.c", "microvium.h"] {
        std::fs::copy(engine_dir.join(f), shared.join(f)).expect("copy the patched engine to target/engine");
    }

    write_error_table(&pristine.join("microvium.h"), &out_dir.join("error_table.rs"));
    write_glue_constants(&manifest.join("c/engine.h"), &pristine.join("microvium.h"), &out_dir.join("glue_constants.rs"));

    let mut build = cc::Build::new();
    build
        .file(manifest.join("c/engine.c"))
        .file(manifest.join("c/fault_net.c"))
        // c/ first, so the engine's `#include "microvium_port.h"` finds ours;
        // then the patched engine (never the pristine one).
        .include(manifest.join("c"))
        .include(&engine_dir)
        .flag_if_supported("-std=gnu11")
        // MSVC: C11 for _Thread_local, _Noreturn and _Generic (the glue and
        // the port header use them).
        .flag_if_supported("/std:c11")
        // The engine is one translation unit with our glue; its own code
        // triggers many -Wextra warnings that are not ours to fix, so only
        // -Wall stays on, minus these:
        .warnings(false)
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wno-unused-function")
        .flag_if_supported("-Wno-unused-variable")
        .flag_if_supported("-Wno-unused-label")
        .flag_if_supported("-Wno-unused-but-set-variable")
        // GUARD (c/boundary.c) never reads a local written after setjmp once a
        // longjmp has returned, which is what this warning is about.
        .flag_if_supported("-Wno-clobbered");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        build.opt_level(2);
    }
    if std::env::var("MICROVIUM_ASAN").is_ok() {
        build.flag("-fsanitize=address").flag("-fno-omit-frame-pointer");
    }
    build.compile("microvium_engine");

    // The whole directory: c/engine.c #includes the other parts (c/boundary.c,
    // c/allocator.c, c/checks.c, c/verifier.c) and headers, and build.rs
    // reads c/engine.h; cargo scans a directory for any changed file.
    println!("cargo:rerun-if-changed=c");
    for p in &patches {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-changed={}", pristine.join("microvium.c").display());
    println!("cargo:rerun-if-changed={}", pristine.join("microvium.h").display());
    println!("cargo:rerun-if-env-changed=MICROVIUM_ASAN");
}

/// Applies every c/patches/*.patch (in name order) to the pristine engine
/// and writes the result, with microvium.h, to `out`. Returns the patches.
fn write_patched_engine(pristine: &Path, patch_dir: &Path, out: &Path) -> Vec<PathBuf> {
    let mut source = std::fs::read_to_string(pristine.join("microvium.c")).expect("read microvium.c");
    let mut patches: Vec<PathBuf> = std::fs::read_dir(patch_dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    patches.retain(|p| p.extension().is_some_and(|e| e == "patch"));
    patches.sort();
    for p in &patches {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        source = apply_patch(&source, &text)
            .unwrap_or_else(|e| panic!("engine patch {} does not apply to microvium.c: {e}", p.display()));
    }
    std::fs::create_dir_all(out).expect("create the engine build directory");
    std::fs::write(out.join("microvium.c"), source).expect("write the patched microvium.c");
    std::fs::copy(pristine.join("microvium.h"), out.join("microvium.h")).expect("copy microvium.h");
    patches
}

/// Applies a unified diff (one file) to `source`. Each hunk's old lines
/// must appear exactly; they are looked for nearest the line the hunk names
/// (shifted by what earlier hunks added or removed), so patches made
/// independently against the pristine file apply in any order as long as
/// they touch different lines.
/// Line endings do not matter: the pinned engine has CRLF, patches are
/// written against it with LF, and the result has LF.
fn apply_patch(source: &str, patch: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = source.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut offset: isize = 0;
    let mut hunks = 0;
    let mut patch_lines = patch.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).peekable();
    while let Some(line) = patch_lines.next() {
        let Some(header) = line.strip_prefix("@@ -") else { continue };
        hunks += 1;
        let start: isize = header
            .split(|c| c == ',' || c == ' ')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("bad hunk header `{line}`"))?;
        let mut old: Vec<&str> = Vec::new();
        let mut new: Vec<&str> = Vec::new();
        while let Some(&l) = patch_lines.peek() {
            if l.starts_with("@@") || l.starts_with("--- ") || l.starts_with("diff ") {
                break;
            }
            patch_lines.next();
            match l.as_bytes().first() {
                Some(b' ') => {
                    old.push(&l[1..]);
                    new.push(&l[1..]);
                }
                Some(b'-') => old.push(&l[1..]),
                Some(b'+') => new.push(&l[1..]),
                Some(b'\\') => {}
                // An empty line in a hand-edited patch is an empty context line.
                None => {
                    old.push("");
                    new.push("");
                }
                _ => return Err(format!("unexpected line in hunk {hunks}: `{l}`")),
            }
        }
        let expected = (start - 1 + offset).max(0) as usize;
        let at = find_block(&lines, &old, expected)
            .ok_or_else(|| format!("hunk {hunks} (`{line}`): its context is not in the file"))?;
        lines.splice(at..at + old.len(), new.iter().copied());
        offset += new.len() as isize - old.len() as isize;
    }
    if hunks == 0 {
        return Err("no hunks".into());
    }
    Ok(lines.join("\n"))
}

/// Where `block` occurs in `lines`, nearest to `expected`.
fn find_block(lines: &[&str], block: &[&str], expected: usize) -> Option<usize> {
    let fits = |at: usize| at + block.len() <= lines.len() && lines[at..at + block.len()] == *block;
    (0..=lines.len()).find_map(|d| {
        [expected.checked_sub(d), Some(expected + d)].into_iter().flatten().find(|&at| fits(at))
    })
}

/// Writes `ERRORS: &[(&str, Option<&str>)]`, indexed by errno, from the
/// `mvm_TeError` enum of microvium.h: each line there reads
/// `/* N */ NAME, // optional description`.
fn write_error_table(header: &Path, out: &Path) {
    let text = std::fs::read_to_string(header).expect("read microvium.h");
    let start = text.find("typedef enum mvm_TeError {").expect("mvm_TeError in microvium.h");
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').expect("end of mvm_TeError")];
    let mut table = String::from("/// Generated by build.rs from microvium.h: (name, description) by errno.\n");
    table.push_str("pub const ERRORS: &[(&str, Option<&str>)] = &[\n");
    let mut count = 0;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix("/*").and_then(|l| l.split_once("*/")).expect("`/* N */` before each error");
        let number: usize = rest.0.trim().parse().expect("error number");
        assert_eq!(number, count, "mvm_TeError numbers must run from 0 without gaps");
        let (name, description) = match rest.1.split_once("//") {
            Some((n, d)) => (n, Some(d.trim())),
            None => (rest.1, None),
        };
        let name = name.trim().trim_end_matches(',').trim();
        let _ = writeln!(table, "    ({name:?}, {description:?}),");
        count += 1;
    }
    table.push_str("];\n");
    std::fs::write(out, table).expect("write error_table.rs");
}

/// Writes the Rust side of c/engine.h's shared definitions (src/engine.rs
/// `include!`s it): `FATAL_BASE` from `#define GLUE_FATAL_BASE`, a constant
/// per enumerator of `enum GlueReason` (`REASON_X`), `enum GlueLayout`
/// (`LAYOUT_X`) and `enum GlueStop` (`STOP_X`), `mod kind` from `enum GlueKind` (with `kind::ALL`, which
/// the addon exports to JavaScript), and `C_FIELDS`: the field names of
/// each struct Rust declares again, in declaration order, as the C headers
/// have them (engine::check_layouts compares them with glue_layout's).
fn write_glue_constants(engine_h: &Path, microvium_h: &Path, out: &Path) {
    let glue = strip_c_comments(&std::fs::read_to_string(engine_h).expect("read c/engine.h"));
    let engine = strip_c_comments(&std::fs::read_to_string(microvium_h).expect("read microvium.h"));
    let mut rs = String::from("// Generated by build.rs from c/engine.h and microvium.h: edit those, not this.\n\n");
    let fatal_base = glue
        .lines()
        .find_map(|l| l.trim().strip_prefix("#define GLUE_FATAL_BASE "))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .expect("`#define GLUE_FATAL_BASE <number>` in c/engine.h");
    let _ = writeln!(rs, "/// GLUE_FATAL_BASE\npub const FATAL_BASE: i32 = {fatal_base};");
    for (tag, prefix) in [("GlueReason", "GLUE_REASON_"), ("GlueLayout", "GLUE_LAYOUT_"), ("GlueStop", "GLUE_STOP_")] {
        for (name, value) in c_enum(&glue, tag, prefix) {
            let _ = writeln!(rs, "/// {prefix}{name} (enum {tag})\npub const {}{name}: i32 = {value};", &prefix[5..]);
        }
    }
    rs.push_str("/// enum GlueKind: what glue_kind says a value is.\n#[allow(dead_code)]\npub mod kind {\n");
    let kinds = c_enum(&glue, "GlueKind", "GLUE_KIND_");
    for (name, value) in &kinds {
        let _ = writeln!(rs, "    /// GLUE_KIND_{name}\n    pub const {name}: i32 = {value};");
    }
    rs.push_str("    /// Every kind by name (the addon's `kinds` export, for lib/).\n    pub const ALL: &[(&str, i32)] = &[\n");
    for (name, value) in &kinds {
        let _ = writeln!(rs, "        ({name:?}, {value}),");
    }
    rs.push_str("    ];\n}\n");
    rs.push_str("/// The fields of each struct that Rust declares again, as C declares them.\n");
    rs.push_str("pub const C_FIELDS: &[(&str, &[&str])] = &[\n");
    for (text, name) in [(&glue, "GlueContext"), (&engine, "mvm_TsMemoryStats"), (&engine, "mvm_Handle")] {
        let _ = writeln!(rs, "    ({name:?}, &{:?}),", c_struct_fields(text, name));
    }
    rs.push_str("];\n");
    std::fs::write(out, rs).expect("write glue_constants.rs");
}

/// C source without its comments (each replaced by a space; newlines kept).
fn strip_c_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.map_or(true, |l| b < l) => {
                out.push_str(&rest[..b]);
                let end = rest[b + 2..].find("*/").expect("unterminated comment") + b + 4;
                out.extend(rest[b..end].chars().filter(|&c| c == '\n'));
                out.push(' ');
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The enumerators of `enum TAG { ... }`, each `PREFIX<NAME> = <number>`:
/// (NAME, number). Every one must have an explicit value: the numbers cross
/// the language boundary, so none may depend on its position.
fn c_enum(text: &str, tag: &str, prefix: &str) -> Vec<(String, i64)> {
    let start = text.find(&format!("enum {tag} {{")).unwrap_or_else(|| panic!("`enum {tag} {{` in c/engine.h"));
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    let items: Vec<(String, i64)> = body
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, value) = e.split_once('=').unwrap_or_else(|| panic!("enum {tag}: `{e}` needs an explicit value"));
            let name = name.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("enum {tag}: `{e}` must start with {prefix}"));
            let value = value.trim().parse().unwrap_or_else(|_| panic!("enum {tag}: `{e}`: the value must be a number"));
            (name.to_string(), value)
        })
        .collect();
    assert!(!items.is_empty(), "enum {tag} is empty");
    items
}

/// The field names of `typedef struct NAME { ... }`, in declaration order
/// (one declarator per declaration, as these structs have).
fn c_struct_fields(text: &str, name: &str) -> Vec<String> {
    let start = text.find(&format!("typedef struct {name} {{")).unwrap_or_else(|| panic!("`typedef struct {name} {{`"));
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            assert!(!d.contains(',') && !d.contains('['), "struct {name}: `{d}`: one plain declarator per field");
            let field = d.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
            assert!(!field.is_empty(), "struct {name}: no field name in `{d}`");
            field.to_string()
        })
        .collect()
}
