//! Engine error codes, their names and descriptions, and how they reach
//! JavaScript: as a `MicroviumError` (lib/errors.js), constructed through the
//! per-thread helper registered by the JS layer.
//!
//! Messages read exactly as the WebAssembly runtime words them, so code
//! written for it (its tests included) works unchanged:
//! `Microvium Error: NAME (N)`, then `: description` only where microvium.h
//! documents one. The names and descriptions come from the pinned package's
//! microvium.h at build time (build.rs), not from a copy kept here. What
//! this package knows beyond that goes in the error's `detail` property;
//! only for fatal errors, which end the VM, does the message say more.

use crate::js::{Env, JsResult, Pending};
use crate::runtime;

include!(concat!(env!("OUT_DIR"), "/error_table.rs"));

pub const E_ATTEMPT_TO_WRITE_TO_ROM: i32 = 10;
pub const E_ALLOCATION_TOO_LARGE: i32 = 3;
pub const E_STACK_OVERFLOW: i32 = 8;
pub const E_UNRESOLVED_IMPORT: i32 = 9;
pub const E_HOST_ERROR: i32 = 14;
pub const E_INVALID_BYTECODE: i32 = 18;
pub const E_BYTECODE_CRC_FAIL: i32 = 27;
pub const E_TOO_MANY_ARGUMENTS: i32 = 34;
pub const E_ARRAY_TOO_LONG: i32 = 32;
pub const E_WRONG_BYTECODE_VERSION: i32 = 49;
pub const E_FATAL: i32 = 45;

pub fn name(errno: i32) -> &'static str {
    // limits: its errors, past the engine's
    ERRORS.get(errno as usize).copied().or_else(|| crate::limits::error_entry(errno)).map(|e| e.0).unwrap_or("MVM_E_UNKNOWN")
}

/// `Microvium Error: NAME (N)[: description]`, the engine's own words.
pub fn message(errno: i32) -> String {
    match ERRORS.get(errno as usize).copied().or_else(|| crate::limits::error_entry(errno)) { // limits: its errors
        Some((name, Some(description))) => format!("Microvium Error: {name} ({errno}): {description}"),
        Some((name, None)) => format!("Microvium Error: {name} ({errno})"),
        None => format!("Microvium Error: {errno}"),
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

/// Throws the error of any use of a VM that an earlier fatal error
/// (`cause`) left unusable.
pub fn throw_unusable(env: Env, cause: i32) -> Pending {
    throw_with_message(env, E_FATAL, &unusable_message(cause), None)
}

/// The error of a VM that an earlier fatal error (`cause`) left unusable,
/// as a value (a promise of that VM rejects with it).
pub fn unusable_error(env: Env, cause: i32, detail: Option<&str>) -> JsResult<crate::js::JsValue> {
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

fn make(env: Env, errno: i32, message: &str, detail: Option<&str>) -> JsResult<crate::js::JsValue> {
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
