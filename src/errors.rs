//! Engine error codes, their names and descriptions, how an engine failure
//! is described (`Failure`), and how errors reach JavaScript: as a
//! `MicroviumError` (lib/errors.js), constructed through the per-thread
//! helper registered by the JS layer.
//!
//! Messages read exactly as the WebAssembly runtime words them, so code
//! written for it (its tests included) works unchanged:
//! `Microvium Error: NAME (N)`, then `: description` only where microvium.h
//! documents one. The names and descriptions come from the pinned package's
//! microvium.h at build time (build.rs), not from a copy kept here. What
//! this package knows beyond that goes in the error's `detail` property;
//! only for fatal errors, which end the VM, does the message say more.

use crate::js::{Env, JsResult, JsValue, Pending};
use crate::runtime;

include!(concat!(env!("OUT_DIR"), "/error_table.rs"));

// The engine's error numbers (mvm_TeError) this crate names; the unit
// tests check each against the names read from microvium.h.
pub const E_SUCCESS: i32 = 0;
pub const E_INVALID_HANDLE: i32 = 7;
pub const E_ALLOCATION_TOO_LARGE: i32 = 3;
pub const E_STACK_OVERFLOW: i32 = 8;
pub const E_UNRESOLVED_IMPORT: i32 = 9;
pub const E_ATTEMPT_TO_WRITE_TO_ROM: i32 = 10;
pub const E_HOST_ERROR: i32 = 14;
pub const E_INVALID_BYTECODE: i32 = 18;
pub const E_BYTECODE_CRC_FAIL: i32 = 27;
pub const E_ARRAY_TOO_LONG: i32 = 32;
pub const E_TOO_MANY_ARGUMENTS: i32 = 34;
pub const E_UNCAUGHT_EXCEPTION: i32 = 44;
pub const E_FATAL: i32 = 45;
pub const E_WRONG_BYTECODE_VERSION: i32 = 49;

/// Why an engine operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The engine returned this error number; the VM can go on.
    Error(i32),
    /// A fatal engine error (its number): the VM can no longer be used.
    /// `reason` is what the glue's checks could say about it in a user's
    /// terms, read from the engine when the failure happened.
    Fatal { code: i32, reason: Option<&'static str> },
    /// Not attempted: the VM cannot be used now.
    Unusable(Unusable),
}

/// Why a VM cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// `dispose()` was called.
    Disposed,
    /// An earlier fatal error (its number) left the engine in an unknown
    /// state.
    Poisoned(i32),
    /// Each VM belongs to the thread that created it.
    ForeignThread,
    /// The engine instance is gone (or was never made).
    EngineFreed,
}

/// The package's own errors, numbered past the engine's: a sandbox limit
/// stopped the call (src/limits.rs). c/engine.h's enum GlueStop is their
/// source; limits.rs asserts that these agree with it.
pub const E_TIME_LIMIT_REACHED: i32 = 100;
pub const E_INTERRUPTED: i32 = 101;
const _: () = assert!(ERRORS.len() <= E_TIME_LIMIT_REACHED as usize);

/// Name and description of an error number, the engine's or the package's
/// own. The message carries a description only where microvium.h has one
/// (API.md), so the package's own errors have none there: what they mean is
/// in the error's `detail` (known_detail).
fn entry(errno: i32) -> Option<(&'static str, Option<&'static str>)> {
    match errno {
        E_TIME_LIMIT_REACHED => Some(("MVM_E_TIME_LIMIT_REACHED", None)),
        E_INTERRUPTED => Some(("MVM_E_INTERRUPTED", None)),
        _ => ERRORS.get(errno as usize).copied(),
    }
}

pub fn name(errno: i32) -> &'static str {
    entry(errno).map(|e| e.0).unwrap_or("MVM_E_UNKNOWN")
}

/// `Microvium Error: NAME (N)[: description]`, the engine's own words.
pub fn message(errno: i32) -> String {
    match entry(errno) {
        Some((name, Some(description))) => format!("Microvium Error: {name} ({errno}): {description}"),
        Some((name, None)) => format!("Microvium Error: {name} ({errno})"),
        None => format!("Microvium Error: {errno}"),
    }
}

/// Throws the JavaScript error that describes `failure`.
pub fn throw_failure(env: Env, failure: Failure) -> Pending {
    match failure {
        Failure::Error(e) => throw(env, e, None),
        Failure::Fatal { code, reason } => throw_fatal(env, code, reason),
        Failure::Unusable(u) => throw_unusable_vm(env, u),
    }
}

/// Throws the error of a use of a VM that cannot be used.
pub fn throw_unusable_vm(env: Env, why: Unusable) -> Pending {
    match why {
        Unusable::Disposed => env.throw_error("Microvium VM has been disposed"),
        Unusable::Poisoned(cause) => throw_with_message(env, E_FATAL, &unusable_message(cause), None),
        Unusable::ForeignThread => env.throw_error(
            "Microvium VM used from a thread other than the one that created it; each VM belongs to its creating thread",
        ),
        Unusable::EngineFreed => env.throw_error("Microvium VM is not usable"),
    }
}

/// Throws a `MicroviumError` with the engine's message; `detail` (what the
/// host knows about the failure) goes in the error's `detail` property.
pub fn throw(env: Env, errno: i32, detail: Option<&str>) -> Pending {
    throw_with_message(env, errno, &message(errno), detail.or_else(|| known_detail(errno)))
}

/// What the host can say about an error the engine reports without words.
fn known_detail(errno: i32) -> Option<&'static str> {
    match errno {
        E_ALLOCATION_TOO_LARGE => Some("one engine allocation holds at most 4095 bytes (a string of 4094 UTF-8 bytes, an array of 2047 items)"),
        E_ARRAY_TOO_LONG => Some("an array holds at most 2047 items: they are one engine allocation, at most 4095 bytes"),
        E_TIME_LIMIT_REACHED => Some("the call ran past the time limit set by vm.setTimeLimit; the VM goes on"),
        E_INTERRUPTED => Some("the call was stopped through opts.interrupt (another thread set the flag); the VM goes on"),
        _ => None,
    }
}

/// Throws the `MicroviumError` of a fatal error: the VM concerned can no
/// longer be used, and the message says so after the engine's words.
pub fn throw_fatal(env: Env, errno: i32, detail: Option<&str>) -> Pending {
    let mut text = format!("{}. This fatal error leaves the VM unusable", message(errno));
    if let Some(d) = detail {
        text.push_str(": ");
        text.push_str(d);
    }
    throw_with_message(env, errno, &text, detail)
}

/// The error of a VM that an earlier fatal error (`cause`) left unusable,
/// as a value (a promise of that VM rejects with it).
pub fn unusable_error(env: Env, cause: i32, detail: Option<&str>) -> JsResult<JsValue> {
    make(env, E_FATAL, &unusable_message(cause), detail)
}

fn unusable_message(cause: i32) -> String {
    format!("{}. The VM is unusable after a fatal error: {} ({cause})", message(E_FATAL), name(cause))
}

/// Throws a `MicroviumError` worded as the WebAssembly runtime words this
/// failure where that is not the engine's standard message (a missing
/// import, a snapshot for another engine version).
pub fn throw_with_message(env: Env, errno: i32, message: &str, detail: Option<&str>) -> Pending {
    match make(env, errno, message, detail) {
        Ok(e) => env.throw(e),
        Err(p) => p,
    }
}

fn make(env: Env, errno: i32, message: &str, detail: Option<&str>) -> JsResult<JsValue> {
    let ctor = runtime::helper(env, runtime::Helper::MakeError)?;
    let code = env.string(name(errno).as_bytes())?;
    let n = env.int32(errno);
    let msg = env.string(message.as_bytes())?;
    let detail = match detail {
        Some(d) => env.string(d.as_bytes())?,
        None => env.undefined(),
    };
    let undefined = env.undefined();
    env.call(ctor, undefined, &[code, n, msg, detail])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers named here are the engine's (microvium.h, read at build
    /// time), not guesses that drift.
    #[test]
    fn named_numbers_match_the_engine_header() {
        for (n, expected) in [
            (E_SUCCESS, "MVM_E_SUCCESS"),
            (E_INVALID_HANDLE, "MVM_E_INVALID_HANDLE"),
            (E_ALLOCATION_TOO_LARGE, "MVM_E_ALLOCATION_TOO_LARGE"),
            (E_STACK_OVERFLOW, "MVM_E_STACK_OVERFLOW"),
            (E_UNRESOLVED_IMPORT, "MVM_E_UNRESOLVED_IMPORT"),
            (E_ATTEMPT_TO_WRITE_TO_ROM, "MVM_E_ATTEMPT_TO_WRITE_TO_ROM"),
            (E_HOST_ERROR, "MVM_E_HOST_ERROR"),
            (E_INVALID_BYTECODE, "MVM_E_INVALID_BYTECODE"),
            (E_BYTECODE_CRC_FAIL, "MVM_E_BYTECODE_CRC_FAIL"),
            (E_ARRAY_TOO_LONG, "MVM_E_ARRAY_TOO_LONG"),
            (E_TOO_MANY_ARGUMENTS, "MVM_E_TOO_MANY_ARGUMENTS"),
            (E_UNCAUGHT_EXCEPTION, "MVM_E_UNCAUGHT_EXCEPTION"),
            (E_FATAL, "MVM_E_FATAL_ERROR_MUST_KILL_VM"),
            (E_WRONG_BYTECODE_VERSION, "MVM_E_WRONG_BYTECODE_VERSION"),
        ] {
            assert_eq!(name(n), expected, "error number {n}");
        }
    }
}
