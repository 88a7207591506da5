//! Guest heap pressure from guest values the host holds.

use crate::engine::{self, Failure};
use crate::js::Env;
use crate::runtime::{self, Helper};
use crate::vm::{Status, VmState};
use std::rc::Rc;

/// Guest heap pressure from host-held values.
///
/// Guest values behind host values stay rooted until V8 collects the host
/// values, and V8 does not know how small the guest heap is: a loop that
/// drops thousands of guest objects could fill the 64 kB heap, and running
/// out of guest heap is fatal in this engine. So after an outermost call or
/// a host function, once the guest heap grows past a mark, the host releases
/// the slots whose host values V8 has already collected (running a full
/// JavaScript collection first if it holds many), then collects the guest
/// heap. The mark then moves to what survived plus some room, so a heap that
/// is legitimately full of live data is not collected on every call.
pub const PRESSURE_MARK: u16 = 0xC000;
const PRESSURE_ROOM: u16 = 0x2000;
pub const FORCE_GC_MIN_HOST_VALUES: usize = 64;
const FORCE_GC_STEP: usize = 256;

/// Returns the failure of the guest collection it ran, if any (a fatal one
/// poisons the VM, and the caller reports it).
pub fn relieve_pressure(env: Env, vm: &Rc<VmState>) -> Result<(), Failure> {
    if vm.status() != Status::Live || vm.is_engine_freed() {
        return Ok(());
    }
    // SAFETY: the engine is live.
    let size = unsafe { engine::glue_heap_size(vm.ctx()) };
    if size < vm.pressure_mark.get() {
        return Ok(());
    }
    let alive = |r| {
        let scope = env.open_scope();
        let a = env.ref_value(r).is_some();
        env.close_scope(scope);
        a
    };
    // Forcing JavaScript collections pays only if the host has dropped
    // values since the last time; when what it holds is genuinely alive,
    // the next forced collection waits until it holds a few hundred more
    // (not many more: a few thousand small objects fill the guest heap).
    let many = match vm.handles.try_borrow_mut() {
        Ok(mut h) => {
            h.sweep_collected(alive);
            h.host_held() >= vm.force_gc_floor.get()
        }
        Err(_) => return Ok(()),
    };
    if many {
        // A minor JavaScript collection first; a full one only if that freed
        // less than half of the host-held values.
        for major in [false, true] {
            let collected = runtime::helper(env, Helper::CollectGarbage)
                .and_then(|gc| env.call(gc, env.undefined(), &[env.boolean(major)]));
            if collected.is_err() {
                let _ = env.take_exception();
                break;
            }
            let Ok(mut h) = vm.handles.try_borrow_mut() else { break };
            let before = h.host_held();
            let released = h.sweep_collected(alive);
            if released * 2 >= before {
                break;
            }
        }
        let held = vm.handles.borrow().host_held();
        vm.force_gc_floor.set(FORCE_GC_MIN_HOST_VALUES.max(held + FORCE_GC_STEP));
    }
    let ctx = vm.ctx();
    // SAFETY: the engine is live; a collection moves guest values, which the
    // handle slots track.
    vm.engine_op(|| unsafe { engine::glue_run_gc(ctx, false) })?;
    // SAFETY: as above.
    let after = unsafe { engine::glue_heap_size(ctx) };
    vm.pressure_mark.set(PRESSURE_MARK.max(after.saturating_add(PRESSURE_ROOM)));
    Ok(())
}
