//! Sandbox limits: a wall-clock time limit for each outermost call into the
//! guest (`vm.setTimeLimit`), a guest heap cap per VM (`opts.maxHeapSize`),
//! and an interrupt another thread can raise (`opts.interrupt`, an
//! `Int32Array` over a `SharedArrayBuffer`).
//!
//! The C side (c/boundary.c) polls the time limit and the interrupt flag
//! every 2^14 instruction dispatches (GLUE_POLL) and after every host
//! function, and stops the guest the way exhausted gas does: it sets the
//! engine's gas counter to 0, so that the engine ends the call with
//! MVM_E_INSTRUCTION_COUNT_REACHED (the guest cannot catch it; the VM goes
//! on). This module arms the deadline at each outermost entry, reports a
//! stopped call with the limit's own error, and gives the gas counter back
//! its setting at that entry's exit. The heap cap is MVM_HEAP_LIMIT
//! (c/microvium_port.h, c/patches/heap-limit-per-vm.patch), set before the
//! engine loads the snapshot's heap.
//!
//! Below the VM (it needs only the engine): vm.rs wraps every guest call in
//! `guest_call`, restore.rs applies `RestoreLimits`, api.rs has the native
//! functions.

use crate::engine::{self, Engine};
use crate::errors::{self, Failure};
use crate::js::{Env, JsResult, JsValue, Type};

// The errors' numbers have one source, c/engine.h's enum GlueStop.
const _: () = assert!(errors::E_TIME_LIMIT_REACHED == engine::STOP_TIME_LIMIT);
const _: () = assert!(errors::E_INTERRUPTED == engine::STOP_INTERRUPTED);

/// Runs one engine call that may run guest code (vm.engine_call). At the
/// VM's outermost entry the deadline is armed; at any entry, a requested
/// interrupt or a passed deadline stops the call before its first
/// instruction. A call a limit stopped fails with the limit's error, at
/// every nesting level, whatever the engine reported on the way out (gas,
/// or an exception a host function threw while it unwound); at the
/// outermost exit the gas counter gets its setting back. A nested call
/// shares the outer deadline.
#[inline]
pub fn guest_call<T>(
    engine: &Engine,
    outermost: bool,
    call: impl FnOnce() -> Result<T, Failure>,
) -> Result<T, Failure> {
    // Without a limit nothing can stop the call, and the C side is not
    // called at all (a stop already in progress is a nested call's concern).
    let armed = engine.limits_armed();
    if armed {
        engine.limits_enter(outermost);
    }
    let result = call();
    let reason = if !armed {
        0
    } else if outermost {
        engine.limits_exit()
    } else {
        engine.stop_reason()
    };
    match result {
        Err(Failure::Error(_)) if reason != 0 => Err(Failure::Error(reason)),
        other => other,
    }
}

/// A time limit as setTimeLimit takes it: a finite number of ms >= 0, or -1
/// for none.
pub fn valid_time_limit(ms: f64) -> bool {
    ms == -1.0 || (ms.is_finite() && ms >= 0.0)
}

/// The largest cap opts.maxHeapSize accepts: 64 kB, the engine's heap
/// (MVM_MAX_HEAP_SIZE, 65534, is what it then means).
const MAX_HEAP_OPTION: f64 = 65536.0;

/// The limits of one restore (opts.maxHeapSize, opts.interrupt), checked.
pub struct RestoreLimits {
    heap_limit: u32,
    interrupt: *const i32,
}

impl RestoreLimits {
    /// `limits` is `undefined` or `{ maxHeapSize, interrupt }` as lib/vm.js
    /// checked them (maxHeapSize an integer from 1 to 65536 or undefined;
    /// interrupt an Int32Array of length >= 1 over a SharedArrayBuffer, or
    /// undefined). What needs the snapshot is checked here: the cap must
    /// hold the snapshot's heap (`bytes` passed snapshot::validate).
    pub fn parse(env: Env, limits: JsValue, bytes: &[u8]) -> JsResult<RestoreLimits> {
        let mut parsed = RestoreLimits { heap_limit: 0, interrupt: std::ptr::null() };
        if env.type_of(limits)? != Type::Object {
            return Ok(parsed);
        }
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
            parsed.heap_limit = (n as u32).min(engine::engine_heap_limit()) & !1;
        }
        let interrupt = env.get_named(limits, "interrupt")?;
        if env.type_of(interrupt)? == Type::Object {
            parsed.interrupt = env.int32_array_data(interrupt).ok_or_else(|| {
                env.throw_type_error("opts.interrupt must be an Int32Array over a SharedArrayBuffer, of length >= 1")
            })?;
        }
        Ok(parsed)
    }

    /// Gives the limits to a new engine, before it is restored.
    pub fn apply(&self, engine: &Engine) {
        // SAFETY: the interrupt flag is element 0 of an Int32Array that the
        // JS layer keeps on the VM's core object (lib/vm.js), which owns the
        // VM: it outlives every call into this engine; other threads write
        // it with Atomics.store only.
        unsafe { engine.set_restore_limits(self.heap_limit, self.interrupt) };
    }
}

/// The size of the heap a snapshot starts with (its last section, up to
/// `bytecodeSize`; see snapshot.rs for the header).
fn initial_heap_size(b: &[u8]) -> usize {
    const HEAP_SECTION_OFFSET: usize = 12 + 2 * 7;
    let u16_at = |at: usize| b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]) as usize);
    u16_at(4).saturating_sub(u16_at(HEAP_SECTION_OFFSET))
}

/// The guest heap cap of a VM in bytes (the engine's when none was set).
pub fn heap_cap(engine: &Engine) -> u32 {
    match engine.heap_limit() {
        0 => engine::engine_heap_limit(),
        n => n,
    }
}

/// `x`, a heap size meant for the engine's full heap, scaled to this VM's
/// cap (pressure.rs relieves a capped heap at the same fraction). One load
/// when the VM has no cap.
#[inline]
pub fn scale_to_cap(engine: &Engine, x: u16) -> u16 {
    match engine.heap_limit() {
        0 => x,
        cap => ((x as u32 * cap) / engine::engine_heap_limit().max(1)) as u16,
    }
}
