//! Per-thread runtime state: the Node-API env of this thread, the JavaScript
//! helpers the JS layer registers once (error class, proxy factory, type
//! classifier), and the nesting depth of host/guest calls.
//!
//! Every Node.js thread (main or worker) loads its own instance of the addon
//! and runs only its own VMs, so thread-locals are the natural home.

use crate::js::{Env, JsResult, JsValue, RawEnv, RawRef};
use std::cell::Cell;

#[derive(Clone, Copy)]
pub enum Helper {
    /// `(code, errno, message) => MicroviumError`
    MakeError = 0,
    /// `(kind, core, slot) => host value` for guest objects, arrays,
    /// classes, Uint8Arrays and promises.
    MakeValue = 1,
    /// `(value) => typeName | null`: null if the object may be deep-copied
    /// into the guest, else the name of its type for the TypeError.
    Classify = 2,
    /// `(core, callbackSlot, ok, valueOrPromise) => void`: waits for an async
    /// import's result and resumes the guest through `resume`.
    AwaitHost = 3,
    /// `() => void`: runs a full JavaScript garbage collection.
    CollectGarbage = 4,
}

const HELPER_COUNT: usize = 5;

thread_local! {
    static ENV: Cell<RawEnv> = const { Cell::new(std::ptr::null_mut()) };
    static HELPERS: Cell<[RawRef; HELPER_COUNT]> = const { Cell::new([std::ptr::null_mut(); HELPER_COUNT]) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
    static THREAD_TOKEN: u8 = const { 0 };
}

/// A cheap identity of the current thread (the address of a thread-local),
/// for the check that a VM is used only by the thread that created it.
pub fn thread_token() -> usize {
    THREAD_TOKEN.with(|t| t as *const u8 as usize)
}

pub fn set_env(env: RawEnv) {
    ENV.with(|e| e.set(env));
}

/// The env of this thread, for engine callbacks (host functions,
/// breakpoints) that arrive without one. None before the module loaded.
pub fn current_env() -> Option<Env> {
    let e = ENV.with(|e| e.get());
    if e.is_null() {
        None
    } else {
        Some(Env(e))
    }
}

pub fn set_helpers(env: Env, values: [JsValue; HELPER_COUNT]) -> JsResult<()> {
    let mut refs = [std::ptr::null_mut(); HELPER_COUNT];
    for (i, v) in values.iter().enumerate() {
        refs[i] = env.new_ref(*v, 1)?;
    }
    let old = HELPERS.with(|h| h.replace(refs));
    for r in old {
        env.delete_ref(r);
    }
    Ok(())
}

pub fn helper(env: Env, which: Helper) -> JsResult<JsValue> {
    let r = HELPERS.with(|h| h.get()[which as usize]);
    if r.is_null() {
        return Err(env.throw_error("@microvium/runtime: native helpers not initialised"));
    }
    env.ref_value(r).ok_or_else(|| env.throw_error("@microvium/runtime: helper collected"))
}

/// Host/guest nesting limits. Each guest→host→guest level costs native stack
/// that V8 does not see (engine frames, Node-API frames); too deep and the
/// process dies with SIGSEGV instead of a JavaScript error. Both the level
/// count and the native stack used since the outermost entry are capped.
pub const MAX_DEPTH: u32 = 64;
const MAX_NATIVE_STACK: usize = 512 * 1024;

pub struct DepthGuard;

impl DepthGuard {
    /// None when entering would exceed the limits.
    pub fn enter() -> Option<DepthGuard> {
        let marker = 0u8;
        let here = &marker as *const u8 as usize;
        let depth = DEPTH.with(|d| d.get());
        if depth == 0 {
            STACK_BASE.with(|b| b.set(here));
        } else {
            let base = STACK_BASE.with(|b| b.get());
            if depth >= MAX_DEPTH || base.abs_diff(here) > MAX_NATIVE_STACK {
                return None;
            }
        }
        DEPTH.with(|d| d.set(depth + 1));
        Some(DepthGuard)
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}
