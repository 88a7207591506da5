//! Guest heap pressure from guest values the host holds, and what a VM
//! tells V8 about its memory.

use crate::errors::Failure;
use crate::js::Env;
use crate::limits;
use crate::runtime::{self, Helper};
use crate::vm::{Status, VmState, FORCE_GC_MIN_HOST_VALUES, PRESSURE_MARK};
use std::rc::Rc;

// Guest heap pressure from host-held values.
//
// Guest values behind host values stay rooted until V8 collects the host
/// values (or the program releases them: vm.release, vm.scope), and V8 does
/// not know how small the guest heap is: a loop that drops thousands of
/// guest objects could fill the 64 kB heap, and running out of guest heap is
/// fatal in this engine. So after an outermost call or a host function, once
/// the guest heap grows past a mark, the host releases the slots whose host
// values V8 has already collected, then collects the guest heap. If the VM
// holds many host values, it first runs its collector (lib/vm.js: a minor
// collection had by allocation, or the program's own function passed as
// `opts.gc`). The library changes no V8 flag and never calls a program's
// `gc` it was not given. The mark (vm::PRESSURE_MARK at first) then moves to what survived
// plus some room, so a heap that is legitimately full of live data is not
// collected on every call.
const PRESSURE_ROOM: u16 = 0x2000;
/// Host values more to hold before the next forced collection, for the
/// engine's full heap; scaled to a capped VM's heap like the marks (see
/// force_gc_step).
const FORCE_GC_STEP: u16 = 256;
/// The least step, however small the cap.
const MIN_FORCE_GC_STEP: usize = 8;

/// FORCE_GC_STEP for this VM. Unscaled, a few hundred more host values
/// (a few dozen guest bytes each) would have to be held before the next
/// forced collection, more than a small cap's room: a guest loop handing
/// values to the host ran out of memory under an 8 kB cap.
fn force_gc_step(vm: &VmState) -> usize {
    (limits::scale_to_cap(vm.engine(), FORCE_GC_STEP) as usize).max(MIN_FORCE_GC_STEP)
}

/// Native memory per host-held value beyond the engine's (the weak
/// reference to the host value, the wrap's reference and V8's handles for
/// both), as measured on Node 20.
const BYTES_PER_HOST_VALUE: i64 = 192;
/// Per handle slot (the engine handle and its bookkeeping).
const BYTES_PER_SLOT: i64 = 40;
/// Changes smaller than this are not worth a call into V8.
const REPORT_STEP: i64 = 4096;

/// The native memory this VM holds: the engine's allocations (guest heap,
/// stack, bookkeeping) and the host side of its handles.
fn native_bytes(vm: &VmState) -> Option<i64> {
    let engine = vm.engine().bytes() as i64;
    let h = vm.handles.try_borrow().ok()?;
    Some(engine + h.capacity() as i64 * BYTES_PER_SLOT + h.host_held() as i64 * BYTES_PER_HOST_VALUE)
}

fn adjust(env: Env, delta: i64) {
    env.adjust_external_memory(delta);
}

/// Tells V8 how much native memory this VM holds (napi_adjust_external_memory),
/// so that V8 counts it when it decides to collect: a program that drops
/// many VMs, or many values, gets collected sooner. Cheap when nothing
/// changed much.
pub fn account(env: Env, vm: &VmState) {
    let Some(now) = native_bytes(vm) else { return };
    let delta = now - vm.reported_memory.get();
    if delta.abs() >= REPORT_STEP {
        adjust(env, delta);
        vm.reported_memory.set(now);
    }
}

/// See sweep_after_collection.
const SWEEP_CHECK_EVERY: u32 = 16;

/// Releases the slots of host values V8 has collected, once after each V8
/// collection: what a finalizer would do, but without waiting for the
/// event loop to turn.
pub fn sweep_after_collection(env: Env, vm: &VmState) {
    // Looked at every few operations only: the call path stays short, and a
    // sweep a few calls late changes nothing (pressure sweeps at once).
    let n = vm.ops_since_sweep_check.get().wrapping_add(1);
    vm.ops_since_sweep_check.set(n);
    if n % SWEEP_CHECK_EVERY != 0 {
        return;
    }
    let seen = runtime::collections_seen(env);
    if vm.swept_at.get() != seen {
        vm.swept_at.set(seen);
        if vm.handles.try_borrow().map(|h| h.host_held() > 0).unwrap_or(false) {
            sweep(env, vm);
        }
    }
}

/// Releases the slots whose host values V8 has collected. Returns how many.
pub fn sweep(env: Env, vm: &VmState) -> usize {
    let Ok(mut h) = vm.handles.try_borrow_mut() else { return 0 };
    // One handle scope for the whole sweep: the values it looks at are not
    // kept past it (the scope closes before anything can collect).
    let scope = env.open_scope();
    let released = h.sweep_collected(|r| env.ref_value(r).is_some(), |r| env.delete_ref(r));
    env.close_scope(scope);
    released
}

/// The heap size past which the host relieves pressure: the mark for the
/// engine's full heap, or the same fraction of this VM's cap, and at least
/// `size` plus room (also scaled).
pub fn pressure_mark(vm: &VmState, size: u16) -> u16 {
    let e = vm.engine();
    limits::scale_to_cap(e, PRESSURE_MARK).max(size.saturating_add(limits::scale_to_cap(e, PRESSURE_ROOM)))
}

/// The guest heap's size, or None when it is certainly below `mark` and
/// has not changed since the last look: the heap grows past its last
/// bucket's room only by a new bucket, which takes an allocation, and it
/// shrinks only in a collection. Asking the engine is a few dependent
/// loads on every call and crossing; this is two.
fn heap_size_near(vm: &VmState, mark: u16) -> Option<u16> {
    let e = vm.engine();
    let (mallocs, collections) = e.heap_changes();
    let (seen_mallocs, seen_collections, room_end) = vm.heap_look.get();
    if mallocs == seen_mallocs && collections == seen_collections && room_end < mark {
        return None;
    }
    let (size, room_end) = e.heap_extent();
    vm.heap_look.set((mallocs, collections, room_end));
    Some(size)
}

/// relieve_pressure for the end of a crossing (a host function the guest
/// called, the guest running on): the memory reported to V8 and the mark
/// wait for the call to end, the relief itself does not.
pub fn relieve_pressure_in_crossing(env: Env, vm: &Rc<VmState>) -> Result<(), Failure> {
    sweep_after_collection(env, vm);
    if vm.status() != Status::Live || vm.is_engine_freed() {
        return Ok(());
    }
    let mark = vm.pressure_mark.get();
    match heap_size_near(vm, mark) {
        Some(size) if size >= mark => relieve_pressure(env, vm),
        _ => Ok(()),
    }
}

/// Returns the failure of the guest collection it ran, if any (a fatal one
/// poisons the VM, and the caller reports it).
pub fn relieve_pressure(env: Env, vm: &Rc<VmState>) -> Result<(), Failure> {
    sweep_after_collection(env, vm);
    account(env, vm);
    if vm.status() != Status::Live || vm.is_engine_freed() {
        return Ok(());
    }
    let mark = vm.pressure_mark.get();
    let Some(size) = heap_size_near(vm, mark) else {
        // Unchanged since the last look, which lowered the mark already.
        return Ok(());
    };
    if size < mark {
        // The heap shrinks only when the guest collects: the mark follows
        // it back down. Else a phase of nearly full live data would leave
        // the mark at the very top of the heap and, once that data is gone,
        // dropped values would fill the heap with nothing relieving it.
        let lower = pressure_mark(vm, size);
        if lower < mark {
            vm.pressure_mark.set(lower);
        }
        return Ok(());
    }
    sweep(env, vm);
    // Forcing JavaScript collections pays only if the host has dropped
    // values since the last time; when what it holds is genuinely alive,
    // the next forced collection waits until it holds a few hundred more
    // (not many more: a few thousand small objects fill the guest heap).
    let collector = env.ref_value(vm.collector.get());
    if let Some(gc) = collector {
        if vm.handles.borrow().host_held() >= vm.force_gc_floor.get() {
            // A minor JavaScript collection first; a full one only if that
            // freed less than half of the host-held values.
            for major in [false, true] {
                let before = vm.handles.borrow().host_held();
                let collected = runtime::helper(env, Helper::CollectGarbage)
                    .and_then(|helper| env.call(helper, env.undefined(), &[gc, env.boolean(major)]));
                if collected.is_err() {
                    let _ = env.take_exception();
                    break;
                }
                let released = sweep(env, vm);
                if released * 2 >= before {
                    break;
                }
            }
            let held = vm.handles.borrow().host_held();
            vm.force_gc_floor.set(FORCE_GC_MIN_HOST_VALUES.max(held + force_gc_step(vm)));
        }
    }
    if vm.status() != Status::Live || vm.is_engine_freed() {
        return Ok(());
    }
    // The names the host's key cache pins (a couple of kB at most) are worth
    // more as free heap now; the cache refills as names are used again.
    crate::keys::clear_cache(env, vm);
    vm.engine_op(|e| e.run_gc(false))?;
    let after = vm.engine().heap_size();
    vm.pressure_mark.set(pressure_mark(vm, after));
    account(env, vm);
    Ok(())
}

thread_local! {
    /// Every VM of this thread not yet disposed, and the collection count at
    /// the last look (see reclaim_collected).
    static TRACKED: std::cell::RefCell<(Vec<std::rc::Weak<VmState>>, u32)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// Tracks a new VM, whose engine reclaim_collected frees as soon as V8 has
/// collected its core object.
pub fn track(vm: &Rc<VmState>) {
    TRACKED.with(|t| t.borrow_mut().0.push(Rc::downgrade(vm)));
}

/// Frees the engines of VMs whose core object V8 has collected: a dropped
/// VM's guest heap goes at the next restore after a collection, not when
/// its finalizer runs, which Node defers until the event loop turns (a
/// synchronous loop that makes and drops VMs would keep them all). Nothing
/// can use such a VM: every host value of it holds its core. Its pending
/// promises stay pending (see VmState::free_unreachable). Looks once after
/// each V8 collection; cheap otherwise.
pub fn reclaim_collected(env: Env) {
    let seen = runtime::collections_seen(env);
    let candidates = TRACKED.with(|t| {
        let mut t = t.borrow_mut();
        if t.1 == seen {
            return Vec::new();
        }
        t.1 = seen;
        let mut dead = Vec::new();
        t.0.retain(|w| match w.upgrade() {
            None => false,
            Some(vm) if vm.status() == Status::Disposed => false,
            Some(vm) => {
                let collected = env.ref_value(vm.core.get()).is_none();
                if collected && vm.is_idle() {
                    dead.push(vm);
                    false
                } else {
                    true
                }
            }
        });
        dead
    });
    for vm in candidates {
        vm.free_unreachable();
    }
}
