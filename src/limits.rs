//! Sandbox limits (issue 15): a wall-clock time limit for each outermost
//! call into the guest (`vm.setTimeLimit`), a guest heap cap per VM
//! (`opts.maxHeapSize`), and an interrupt another thread can raise
//! (`opts.interrupt`, an `Int32Array` over a `SharedArrayBuffer`).
//!
//! The C side (c/boundary.c) polls the time limit and the interrupt flag
//! every 2^14 instruction dispatches (GLUE_POLL) and after every host
//! function, and stops the guest the way exhausted gas does: it sets the
//! engine's gas counter to 0, so that the engine ends the call with
//! MVM_E_INSTRUCTION_COUNT_REACHED (the guest cannot catch it; the VM goes
//! on). This module arms the deadline at each outermost entry, reports a
//! stopped call with the limit's own error, and gives the gas counter back
//! its setting at that entry's exit. The heap cap is MVM_HEAP_LIMIT
//! (c/microvium_port.h, c/patches/heap-limit-per-vm.patch).
//!
//! Kept apart from vm.rs, api.rs and errors.rs, which call in here from
//! hook lines marked `limits:`.

use crate::engine::{self, Failure, GlueContext};
use crate::js::{CallInfo, Env, JsResult, JsValue, Type};
use crate::vm::VmState;
use napi::sys;
use std::cell::Cell;

/// The package's own errors, past the engine's numbers (c/engine.h, enum
/// GlueStop, is their one source).
pub const E_TIME_LIMIT_REACHED: i32 = engine::STOP_TIME_LIMIT;
pub const E_INTERRUPTED: i32 = engine::STOP_INTERRUPTED;
const _: () = assert!(crate::errors::ERRORS.len() <= E_TIME_LIMIT_REACHED as usize);

/// Name and description of one of this package's errors, for errors.rs
/// (the engine's come from microvium.h), worded as the engine words gas.
pub fn error_entry(errno: i32) -> Option<(&'static str, Option<&'static str>)> {
    match errno {
        E_TIME_LIMIT_REACHED => {
            Some(("MVM_E_TIME_LIMIT_REACHED", Some("The time limit set by `vm.setTimeLimit` has been reached")))
        }
        E_INTERRUPTED => Some(("MVM_E_INTERRUPTED", Some("The call was interrupted through `opts.interrupt`"))),
        _ => None,
    }
}

/// The limit fields of a new VM's GlueContext (vm::restore completes its
/// literal with this): no time limit, no interrupt, the engine's heap.
pub const INITIAL_CONTEXT_LIMITS: GlueContext = GlueContext {
    vm: std::ptr::null_mut(),
    host: std::ptr::null(),
    spare_stack: std::ptr::null_mut(),
    gc_epoch: 0,
    blocks: std::ptr::null_mut(),
    poll_count: 0,
    bytes: 0,
    fatal_code: 0,
    host_function: std::ptr::null_mut(),
    breakpoint_callback: std::ptr::null_mut(),
    checked_epoch: 0,
    checked_bits: std::ptr::null_mut(),
    fatal_reason: 0,
    verified: std::ptr::null_mut(),
    time_limit_ms: -1.0,
    deadline_ns: 0,
    interrupt: std::ptr::null(),
    saved_gas: -1,
    stop_reason: 0,
    heap_limit: 0,
};

// ---- The time limit and the interrupt: around every guest call ----------

/// Runs one engine call that may run guest code (vm.engine_call). At the
/// VM's outermost entry the deadline is armed; at any entry, a requested
/// interrupt or a passed deadline stops the call before its first
/// instruction. A call a limit stopped fails with the limit's error, at
/// every nesting level, whatever the engine reported on the way out (gas,
/// or an exception a host function threw while it unwound); at the
/// outermost exit the gas counter gets its setting back. A nested call
/// shares the outer deadline.
#[inline]
pub fn guest_call(vm: &VmState, call: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    let ctx = vm.ctx();
    let outermost = vm.is_idle();
    // Without a limit nothing can stop the call, and the C side is not
    // called at all (a stop already in progress is a nested call's concern).
    // SAFETY: ctx is owned by the VM state; C writes it only while this
    // thread runs the engine, which it does not now.
    let armed = unsafe { (*ctx).time_limit_ms >= 0.0 || !(*ctx).interrupt.is_null() || (*ctx).stop_reason != 0 };
    if armed {
        // SAFETY: ctx outlives this call; the function touches only the
        // context (and the engine's gas counter).
        unsafe { engine::glue_limits_enter(ctx, outermost) };
    }
    let result = call();
    let reason = if !armed {
        0
    } else if outermost {
        // SAFETY: as above; no engine call of this VM is active any more.
        unsafe { engine::glue_limits_exit(ctx) }
    } else {
        // SAFETY: as above.
        unsafe { (*ctx).stop_reason }
    };
    match result {
        Err(Failure::Error(_)) if reason != 0 => Err(Failure::Error(reason)),
        other => other,
    }
}

/// setTimeLimit(core, ms): ms a finite number >= 0, or -1 for none (lib/vm.js
/// checks the argument and words the errors).
fn set_time_limit_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = crate::api::core(env, ci)?;
    let ms = number_arg(env, ci, 1)?;
    if !(ms == -1.0 || (ms.is_finite() && ms >= 0.0)) {
        return Err(env.throw_range_error("vm.setTimeLimit(ms): ms must be a finite number >= 0, or -1 for no limit"));
    }
    // SAFETY: ctx is owned by the live VM state; C reads the field only at
    // the next outermost entry (glue_limits_enter), on this thread.
    unsafe { (*vm.ctx()).time_limit_ms = ms };
    Ok(env.undefined())
}

fn get_time_limit_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = crate::api::core(env, ci)?;
    // SAFETY: as in set_time_limit_impl.
    Ok(env.double(unsafe { (*vm.ctx()).time_limit_ms }))
}

fn number_arg(env: Env, ci: &CallInfo, i: usize) -> JsResult<f64> {
    let v = ci.args().get(i).copied().unwrap_or_else(|| env.undefined());
    if env.type_of(v)? != Type::Number {
        return Err(env.throw_type_error("Microvium: expected a number"));
    }
    env.get_f64(v)
}

// ---- Restore options: opts.maxHeapSize and opts.interrupt ----------------

/// The largest heap the engine has (MVM_MAX_HEAP_SIZE), which a cap of
/// 64 kB (65536) means; a larger cap is a RangeError.
const MAX_HEAP_OPTION: f64 = 65536.0;

#[derive(Clone, Copy, Default)]
struct Staged {
    heap_limit: u32,
    interrupt: Option<*const i32>,
}

thread_local! {
    /// The limits of the restore in progress on this thread, from
    /// `RestoreLimits::stage` (in api.rs's restore) to `apply_staged` (in
    /// vm::restore, before the engine loads the snapshot's heap).
    static STAGED: Cell<Option<Staged>> = const { Cell::new(None) };
}

/// The limits of one restore, checked and staged for vm::restore; unstaged
/// when dropped, whether or not the restore got that far.
pub struct RestoreLimits {
    heap_limit: u32,
}

impl RestoreLimits {
    /// `limits` is `undefined` or `{ maxHeapSize, interrupt }` as lib/vm.js
    /// checked them (maxHeapSize an integer from 1 to 65536 or undefined;
    /// interrupt an Int32Array of length >= 1 over a SharedArrayBuffer, or
    /// undefined). What needs the snapshot is checked here: the cap must
    /// hold the snapshot's heap (`bytes` passed snapshot::validate).
    pub fn stage(env: Env, limits: JsValue, bytes: &[u8]) -> JsResult<RestoreLimits> {
        let mut staged = Staged::default();
        if env.type_of(limits)? == Type::Object {
            let max = env.get_named(limits, "maxHeapSize")?;
            if env.type_of(max)? == Type::Number {
                let n = env.get_f64(max)?;
                if !(n.is_finite() && n.fract() == 0.0 && (1.0..=MAX_HEAP_OPTION).contains(&n)) {
                    return Err(env.throw_range_error(&format!(
                        "opts.maxHeapSize must be an integer number of bytes from the snapshot's heap size up to 65536 (64 kB), not {n}"
                    )));
                }
                let needed = initial_heap_size(bytes);
                if (n as usize) < needed {
                    return Err(env.throw_range_error(&format!(
                        "opts.maxHeapSize is {n} bytes, but the snapshot's heap already takes {needed}"
                    )));
                }
                // The engine's own cap, and even: allocations are 2-byte aligned.
                // SAFETY: a constant of the C side.
                let engine_max = unsafe { engine::glue_engine_heap_limit() };
                staged.heap_limit = (n as u32).min(engine_max) & !1;
            }
            let interrupt = env.get_named(limits, "interrupt")?;
            if env.type_of(interrupt)? == Type::Object {
                staged.interrupt = Some(int32_element_0(env, interrupt)?);
            }
        }
        STAGED.with(|s| s.set(Some(staged)));
        Ok(RestoreLimits { heap_limit: staged.heap_limit })
    }

    /// After a successful restore: the collection the host runs to relieve
    /// heap pressure (pressure.rs) starts at the same fraction of a capped
    /// heap as of the engine's.
    pub fn finish(self, vm: &VmState) {
        if self.heap_limit != 0 {
            vm.pressure_mark.set(pressure_mark(vm, 0));
        }
    }
}

impl Drop for RestoreLimits {
    fn drop(&mut self) {
        STAGED.with(|s| s.set(None));
    }
}

/// Called by vm::restore with the new VM's context, before glue_restore:
/// the heap cap must be in place before the engine loads the heap.
pub fn apply_staged(ctx: *mut GlueContext) {
    let Some(staged) = STAGED.with(|s| s.take()) else { return };
    // SAFETY: ctx is the fresh context of the VM being restored; no engine
    // call of it has started.
    unsafe {
        (*ctx).heap_limit = staged.heap_limit;
        (*ctx).interrupt = staged.interrupt.unwrap_or(std::ptr::null());
    }
}

/// The size of the heap a snapshot starts with (its last section, up to
/// `bytecodeSize`; see snapshot.rs for the header).
fn initial_heap_size(b: &[u8]) -> usize {
    const HEAP_SECTION_OFFSET: usize = 12 + 2 * 7;
    let u16_at = |at: usize| b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]) as usize);
    u16_at(4).saturating_sub(u16_at(HEAP_SECTION_OFFSET))
}

/// The address of element 0 of an Int32Array over a SharedArrayBuffer
/// (lib/vm.js checked the type). The JS layer keeps the array on the VM's
/// core object, so the memory lives as long as any call into the VM can.
fn int32_element_0(env: Env, array: JsValue) -> JsResult<*const i32> {
    let mut ty = sys::TypedarrayType::uint8_array;
    let mut len = 0usize;
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut ab: sys::napi_value = std::ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: every out-pointer is to a local; napi fails (status != ok)
    // on a value that is not a typed array.
    let status = unsafe { sys::napi_get_typedarray_info(env.0, array, &mut ty, &mut len, &mut data, &mut ab, &mut offset) };
    if status != sys::Status::napi_ok || ty != sys::TypedarrayType::int32_array || len == 0 || data.is_null() {
        return Err(env.throw_type_error("opts.interrupt must be an Int32Array over a SharedArrayBuffer, of length >= 1"));
    }
    Ok(data as *const i32)
}

// ---- The heap cap elsewhere ----------------------------------------------

/// The guest heap cap of a VM in bytes (the engine's when none was set).
fn heap_cap(vm: &VmState) -> u32 {
    // SAFETY: ctx is owned by the VM state; the field is written only at
    // restore.
    match unsafe { (*vm.ctx()).heap_limit } {
        // SAFETY: a constant of the C side.
        0 => unsafe { engine::glue_engine_heap_limit() },
        n => n,
    }
}

/// The heap size past which the host relieves pressure from host-held values
/// (pressure.rs): its mark for the engine's full heap, or the same fraction
/// of a capped one, and at least `size` plus room proportionate to the cap.
/// On the path of every call: one load when the VM has no cap.
#[inline]
pub fn pressure_mark(vm: &VmState, size: u16) -> u16 {
    use crate::pressure::{PRESSURE_MARK, PRESSURE_ROOM};
    // SAFETY: ctx is owned by the VM state; the field is written only at
    // restore.
    let cap = unsafe { (*vm.ctx()).heap_limit };
    if cap == 0 {
        return PRESSURE_MARK.max(size.saturating_add(PRESSURE_ROOM));
    }
    // SAFETY: a constant of the C side.
    let full = unsafe { engine::glue_engine_heap_limit() };
    let scale = |x: u16| ((x as u32 * cap) / full.max(1)) as u16;
    scale(PRESSURE_MARK).max(size.saturating_add(scale(PRESSURE_ROOM)))
}

/// Adds `maxHeapSize` (this VM's guest heap cap, in bytes) to the object of
/// vm.getMemoryStats().
pub fn add_memory_stats(env: Env, vm: &VmState, stats: JsValue) -> JsResult<()> {
    env.set_named(stats, "maxHeapSize", env.double(heap_cap(vm) as f64))
}

// ---- The native functions of this module ---------------------------------

macro_rules! native {
    ($($name:ident => $body:path),* $(,)?) => {
        $(
            // Named as the JS layer calls them.
            #[allow(non_snake_case)]
            unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                crate::api::entry(env, info, $body)
            }
        )*
        /// Exported with api.rs's (lib.rs).
        pub const FUNCTIONS: &[(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value)] = &[
            $((stringify!($name), $name)),*
        ];
    };
}

native! {
    setTimeLimit => set_time_limit_impl,
    getTimeLimit => get_time_limit_impl,
}
