//! Restoring a VM from snapshot bytes: the imports the snapshot asks for,
//! the engine instance, and the errors a failed restore reports.
//!
//! The engine resolves each import through `resolve_import` while it
//! restores, and calls every import through one callback, the calls.rs
//! trampoline, given to it here: the VM state itself (vm.rs) knows nothing of
//! calls.

use crate::calls::host_function_trampoline;
use crate::engine::{self, Engine};
use crate::errors::{self, Failure};
use crate::js::{Env, JsResult, JsValue};
use crate::limits::RestoreLimits;
use crate::snapshot::SnapshotInfo;
use crate::vm::{Import, VmState};
use std::cell::RefCell;
use std::ffi::c_void;
use std::rc::Rc;

/// Zero bytes kept after the snapshot copy (see restore).
const SNAPSHOT_PADDING: usize = 64;

thread_local! {
    /// Import ids the snapshot asked for that the host did not provide,
    /// collected by `resolve_import` during a restore.
    static RESOLVE: RefCell<(Vec<u16>, Vec<u16>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

unsafe extern "C" fn resolve_import(
    id: u16,
    _context: *mut c_void,
    out: *mut Option<engine::HostFunction>,
) -> i32 {
    let provided = RESOLVE.with(|r| {
        let mut r = r.borrow_mut();
        if r.0.contains(&id) {
            true
        } else {
            r.1.push(id);
            false
        }
    });
    // SAFETY: the engine passes a valid out-pointer.
    unsafe { *out = Some(host_function_trampoline) };
    if provided {
        errors::E_SUCCESS
    } else {
        errors::E_UNRESOLVED_IMPORT
    }
}

/// Restores a VM from validated snapshot bytes. `imports` are (id, function,
/// is_async) already checked by the caller.
pub fn restore(
    env: Env,
    bytes: &[u8],
    imports: Vec<(u16, JsValue, bool)>,
    info: SnapshotInfo,
    limits: &RestoreLimits,
) -> JsResult<Rc<VmState>> {
    let missing: Vec<u16> = info.import_ids.iter().copied().filter(|id| !imports.iter().any(|(i, _, _)| i == id)).collect();
    if !missing.is_empty() {
        // Worded as the WebAssembly runtime words it (the first missing id);
        // `detail` lists them all.
        let list = missing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        return Err(errors::throw_with_message(
            env,
            errors::E_UNRESOLVED_IMPORT,
            &format!("Import {} is required by the VM but not provided by the host", missing[0]),
            Some(&format!("missing import ids: {list}")),
        ));
    }
    let mut import_refs = Vec::with_capacity(imports.len());
    for (id, f, is_async) in &imports {
        import_refs.push(Import { id: *id, function: env.new_ref(*f, 0)?, is_async: *is_async });
    }
    // The engine reads a word or two past the end of a crafted snapshot's
    // ROM before a check can stop it; zeroed padding keeps those reads in
    // memory this VM owns. The engine is told the real length.
    let engine = Engine::new(crate::snapshot::shared_copy(bytes, SNAPSHOT_PADDING), bytes.len());
    // Before the engine loads the snapshot's heap, which the cap bounds.
    limits.apply(&engine);
    let state = VmState::new(engine, import_refs, info.export_ids, info.required_version);
    RESOLVE.with(|r| {
        let mut r = r.borrow_mut();
        r.0 = imports.iter().map(|(i, _, _)| *i).collect();
        r.1.clear();
    });
    match state.engine().restore(resolve_import) {
        Ok(()) => {
            // Host pressure is relieved at the same fraction of a capped heap.
            state.pressure_mark.set(crate::pressure::pressure_mark(&state, 0));
            Ok(state)
        }
        Err(Failure::Error(e)) => {
            let detail = if e == errors::E_UNRESOLVED_IMPORT {
                let missing = RESOLVE.with(|r| r.borrow().1.clone());
                Some(format!("missing import id {:?}", missing))
            } else if e == errors::E_INVALID_BYTECODE {
                // The verifier (c/verifier.c) rejected the snapshot: why.
                Some(engine::verify_detail())
            } else {
                None
            };
            Err(errors::throw(env, e, detail.as_deref()))
        }
        Err(Failure::Fatal { code, .. }) => Err(errors::throw_fatal(env, code, Some("while restoring the snapshot"))),
        Err(Failure::Unusable(_)) => Err(env.throw_error("Microvium: restore failed")),
    }
}
