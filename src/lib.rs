//! @microvium/runtime: a Node.js native addon that runs Microvium snapshots.
//!
//! Layout, in layers: a module imports only modules of its own layer or
//! lower ones (checked by scripts/module-graph.js, run by
//! __test__/structure.test.js). Each language boundary is one module: raw
//! Node-API calls are only in `js`, raw calls of the C glue only in `engine`.
//!
//! 1. Boundaries and per-thread state:
//!    - `js`: safe wrappers over the raw Node-API calls (native functions'
//!      entry and panic boundary, wraps, references, scopes).
//!    - `engine`: FFI to the C glue (c/engine.h) and `Engine`, its one safe
//!      wrapper, which owns a VM's glue context and snapshot bytes.
//!    - `errors`: engine error numbers, `Failure`, MicroviumError.
//!    - `runtime`: per-thread state (JS helpers, nesting depth).
//!    - `number_format`: JavaScript number-to-string for the engine.
//! 2. Data below the VM:
//!    - `handles`: GC roots (handle slots) and guest-value identity.
//!    - `snapshot`: validation of snapshot bytes before the engine sees them.
//!    - `key_cache`: the property-key cache's data.
//!    - `limits`: the sandbox limits (time limit, heap cap, interrupt).
//! 3. `vm`: one VM's state and lifetime (live, poisoned, disposed).
//! 4. Working with a VM's guest values:
//!    - `roots`: temporary GC roots for conversions and calls.
//!    - `keys`: property names into the guest.
//! 5. `membrane`: how values cross between host and guest, guest promises
//!    as host Promises included.
//! 6. Across the boundary:
//!    - `calls`: calls both ways, host functions, exceptions.
//!    - `pressure`: relieving guest heap pressure from host-held values.
//! 7. `restore`: a VM from snapshot bytes.
//! 8. `api`: the native functions the JS layer (lib/) calls.

mod api;
mod calls;
mod engine;
mod errors;
mod handles;
mod js;
mod key_cache;
mod keys;
mod limits;
mod membrane;
mod number_format;
mod pressure;
mod restore;
mod roots;
mod runtime;
mod snapshot;
mod vm;

use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(module_exports)]
pub fn module_exports(exports: Object, env: Env) -> Result<()> {
    // Rust declares some of C's structs again: a build where the two differ
    // would corrupt memory, so it refuses to load.
    engine::check_layouts()
        .map_err(|e| Error::from_reason(format!("this build of @microvium/runtime is inconsistent: {e}")))?;
    let e = js::Env::from_napi(&env);
    engine::install_fault_net();
    // What the C side keeps for this thread goes with its env.
    e.on_cleanup(engine::thread_cleanup);
    let target = exports.raw();
    for (name, f) in api::FUNCTIONS {
        let func = e
            .function(name, *f)
            .map_err(|_| Error::from_reason(format!("cannot create native function {name}")))?;
        e.set_named(target, name, func)
            .map_err(|_| Error::from_reason(format!("cannot export native function {name}")))?;
    }
    let version = e
        .string(snapshot::ENGINE_VERSION.as_bytes())
        .map_err(|_| Error::from_reason("cannot create engine version string"))?;
    e.set_named(target, "engineVersion", version)
        .map_err(|_| Error::from_reason("cannot export engine version"))?;
    // The value kinds of glue_kind (c/engine.h), for lib/membrane.js.
    let kinds = e.object().map_err(|_| Error::from_reason("cannot create the kinds object"))?;
    for (name, value) in engine::kind::ALL {
        e.set_named(kinds, name, e.int32(*value))
            .map_err(|_| Error::from_reason(format!("cannot export kind {name}")))?;
    }
    e.set_named(target, "kinds", kinds).map_err(|_| Error::from_reason("cannot export kinds"))?;
    // See "The shared buffer" in js.rs.
    let shared = e.shared_buffer().map_err(|_| Error::from_reason("cannot create the shared buffer"))?;
    e.set_named(target, "shared", shared).map_err(|_| Error::from_reason("cannot export the shared buffer"))?;
    let layout = e.object().map_err(|_| Error::from_reason("cannot create the shared layout"))?;
    for (name, value) in [
        ("epoch", js::SHARED_EPOCH as i32),
        ("slot", js::SHARED_SLOT as i32),
        ("tags", js::SHARED_TAGS as i32),
        ("args", js::SHARED_ARGS as i32),
        ("maxArgs", js::SHARED_MAX_ARGS as i32),
        ("number", js::ARG_NUMBER as i32),
        ("string", js::ARG_STRING as i32),
        ("result", js::SHARED_RESULT as i32),
        ("resultInBuffer", js::RESULT_IN_BUFFER),
    ] {
        e.set_named(layout, name, e.int32(value))
            .map_err(|_| Error::from_reason("cannot export the shared layout"))?;
    }
    e.set_named(target, "sharedLayout", layout).map_err(|_| Error::from_reason("cannot export the shared layout"))?;
    Ok(())
}

/// The engine version this addon was built with (also exported as the
/// `engineVersion` string, which lib/ uses). Kept because napi-rs's CLI
/// writes the loader (binding.js) only for a crate with at least one
/// `#[napi]` item: without one, `npm run build` on a fresh checkout leaves
/// no binding.js and the package cannot load.
#[napi]
pub fn get_engine_version() -> String {
    snapshot::ENGINE_VERSION.to_string()
}
