//! Compiles the Microvium engine from the pinned npm package together with
//! this project's port header and C glue (c/), then lets napi-build set up
//! the Node-API link flags.

use std::path::PathBuf;

fn main() {
    napi_build::setup();

    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let engine_dir = manifest.join("node_modules/microvium/dist-c");
    if !engine_dir.join("microvium.c").exists() {
        panic!(
            "{} not found: run `npm install` first (the engine comes from the \
             npm package `microvium`, pinned in devDependencies)",
            engine_dir.display()
        );
    }

    let mut build = cc::Build::new();
    build
        .file(manifest.join("c/engine.c"))
        .file(manifest.join("c/fault_net.c"))
        // c/ first, so the engine's `#include "microvium_port.h"` finds ours.
        .include(manifest.join("c"))
        .include(&engine_dir)
        .flag_if_supported("-std=gnu11")
        // MSVC: C11 for _Thread_local, _Noreturn and _Generic (the glue and
        // the port header use them).
        .flag_if_supported("/std:c11")
        // The engine is one translation unit with our glue and is compiled
        // as published; its own code triggers many -Wextra warnings that are
        // not ours to fix, so only -Wall stays on, minus these:
        .warnings(false)
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wno-unused-function")
        .flag_if_supported("-Wno-unused-variable")
        .flag_if_supported("-Wno-unused-label")
        .flag_if_supported("-Wno-unused-but-set-variable")
        // GUARD (c/engine.c) never reads a local written after setjmp once a
        // longjmp has returned, which is what this warning is about.
        .flag_if_supported("-Wno-clobbered");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        build.opt_level(2);
    }
    if std::env::var("MICROVIUM_ASAN").is_ok() {
        build.flag("-fsanitize=address").flag("-fno-omit-frame-pointer");
    }
    build.compile("microvium_engine");

    for f in ["c/engine.c", "c/engine.h", "c/microvium_port.h", "c/fault_net.c", "c/bytecode_checks.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed={}", engine_dir.join("microvium.c").display());
    println!("cargo:rerun-if-env-changed=MICROVIUM_ASAN");
}
