//! The engine binding: FFI declarations for c/engine.c and thin wrappers.
//!
//! Every engine entry goes through a `glue_*` function, which sets up the
//! fatal-error boundary in C. Functions here return `EngineResult`, where a
//! fatal error is distinguished from an ordinary engine error code.

use std::os::raw::{c_char, c_int, c_void};

pub type Value = u16;

/// `mvm_Handle`: a GC root the engine updates when objects move.
#[repr(C)]
pub struct RawHandle {
    pub value: Value,
    pub next: *mut RawHandle,
}

/// Mirror of `GlueContext` in c/engine.h.
#[repr(C)]
pub struct GlueContext {
    pub vm: *mut c_void,
    pub host: *const c_void,
    pub spare_stack: *mut c_void,
    pub gc_epoch: u32,
    pub blocks: *mut c_void,
    pub poll_count: u32,
    pub bytes: usize,
    /// Set by an inspection function (glue_kind, ...) that hit a fatal
    /// error; the VM checks it and poisons itself.
    pub fatal_code: i32,
    /// Kept by the glue: the host-function and breakpoint callbacks it
    /// wraps (see glue_restore).
    pub host_function: *mut c_void,
    pub breakpoint_callback: *mut c_void,
    /// The glue's record of heap pointers it has checked (c/engine.c,
    /// glue_check_short_ptr), allocated and freed by the glue.
    pub checked_epoch: u32,
    pub checked_bits: *mut u8,
    /// Why a check failed, when it can be said in a user's terms
    /// (`REASON_*`), else 0.
    pub fatal_reason: i32,
    /// What the restore-time verifier (c/verifier.c) left for the run-time
    /// checks; owned by the glue (in its block list).
    pub verified: *mut c_void,
}

/// GLUE_REASON_NO_SCOPE (c/engine.h).
pub const REASON_NO_SCOPE: i32 = 1;

/// Mirror of `mvm_TsMemoryStats`.
#[repr(C)]
#[derive(Default)]
pub struct MemoryStats {
    pub total_size: usize,
    pub fragment_count: usize,
    pub core_size: usize,
    pub import_table_size: usize,
    pub global_variables_size: usize,
    pub registers_size: usize,
    pub stack_height: usize,
    pub stack_allocated_capacity: usize,
    pub stack_high_water_mark: usize,
    pub virtual_heap_used: usize,
    pub virtual_heap_high_water_mark: usize,
    pub virtual_heap_allocated_capacity: usize,
}

pub type HostFunction = unsafe extern "C" fn(
    vm: *mut c_void,
    id: u16,
    result: *mut Value,
    args: *mut Value,
    arg_count: u8,
) -> c_int;
pub type ResolveImport =
    unsafe extern "C" fn(id: u16, context: *mut c_void, out: *mut Option<HostFunction>) -> c_int;
/// Returns 0, or the code of a fatal error of this VM during the callback:
/// the glue then ends the engine call with it (see glue_breakpoint_entry).
pub type BreakpointCallback = unsafe extern "C" fn(vm: *mut c_void, address: u16) -> c_int;

pub const FATAL_BASE: c_int = 1000;

pub mod kind {
    pub const UNDEFINED: i32 = 0;
    pub const NULL: i32 = 1;
    pub const BOOLEAN: i32 = 2;
    pub const NUMBER: i32 = 3;
    pub const STRING: i32 = 4;
    pub const FUNCTION: i32 = 5;
    pub const OBJECT: i32 = 6;
    pub const ARRAY: i32 = 7;
    pub const UINT8_ARRAY: i32 = 8;
    pub const CLASS: i32 = 9;
    pub const FIXED_ARRAY: i32 = 10;
    pub const HOST_FUNCTION: i32 = 11;
    pub const PROMISE: i32 = 12;
}

pub const E_SUCCESS: c_int = 0;
pub const E_UNCAUGHT_EXCEPTION: c_int = 44;

extern "C" {
    pub fn glue_restore(ctx: *mut GlueContext, bytes: *const u8, size: usize, resolve: ResolveImport) -> c_int;
    /// The `detail` of the last restore on this thread that the verifier
    /// rejected (a NUL-terminated string owned by C).
    pub fn glue_verify_detail() -> *const c_char;
    /// The snapshot header checks (c/verifier.c): 0 or an error number, with
    /// a NUL-terminated description in `detail`.
    pub fn glue_check_header(bytes: *const u8, size: usize, detail: *mut *const c_char) -> c_int;
    pub fn glue_free_vm(ctx: *mut GlueContext, after_fatal_error: bool);
    pub fn glue_call(ctx: *mut GlueContext, func: Value, this_value: *const Value, out: *mut Value, args: *mut Value, argc: u8) -> c_int;
    pub fn glue_construct(ctx: *mut GlueContext, target: *mut Value, ctor: *mut Value, proto: *mut Value) -> c_int;
    pub fn glue_new_string(ctx: *mut GlueContext, utf8: *const c_char, size: usize, out: *mut Value) -> c_int;
    pub fn glue_new_number(ctx: *mut GlueContext, value: f64, out: *mut Value) -> c_int;
    pub fn glue_new_int32(ctx: *mut GlueContext, value: i32, out: *mut Value) -> c_int;
    pub fn glue_new_uint8array(ctx: *mut GlueContext, data: *const u8, size: usize, out: *mut Value) -> c_int;
    pub fn glue_new_object(ctx: *mut GlueContext, out: *mut Value) -> c_int;
    pub fn glue_new_array(ctx: *mut GlueContext, capacity: u16, out: *mut Value) -> c_int;
    pub fn glue_new_host_function(ctx: *mut GlueContext, host_function_id: u16, out: *mut Value) -> c_int;
    pub fn glue_get_property(ctx: *mut GlueContext, object: *mut Value, key: *mut Value, out: *mut Value) -> c_int;
    pub fn glue_set_property(ctx: *mut GlueContext, object: *mut Value, key: *mut Value, value: *mut Value) -> c_int;
    pub fn glue_object_keys(ctx: *mut GlueContext, inout: *mut Value) -> c_int;
    pub fn glue_run_gc(ctx: *mut GlueContext, squeeze: bool) -> c_int;
    pub fn glue_create_snapshot(ctx: *mut GlueContext, out_data: *mut *mut c_void, out_size: *mut usize) -> c_int;
    pub fn glue_free_snapshot(ctx: *mut GlueContext, data: *mut c_void);
    pub fn glue_resolve_export(ctx: *mut GlueContext, id: u16, out: *mut Value) -> c_int;
    pub fn glue_string_utf8(ctx: *mut GlueContext, value: Value, out_ptr: *mut *const c_char, out_size: *mut usize) -> c_int;
    pub fn glue_to_float64(ctx: *mut GlueContext, value: Value) -> f64;
    pub fn glue_uint8array_bytes(ctx: *mut GlueContext, value: Value, out_data: *mut *mut u8, out_size: *mut usize, out_writable: *mut bool) -> c_int;
    pub fn glue_get_memory_stats(ctx: *mut GlueContext, out: *mut MemoryStats);
    pub fn glue_stop_after(ctx: *mut GlueContext, n: i32);
    pub fn glue_instructions_remaining(ctx: *mut GlueContext) -> i32;
    pub fn glue_current_address(ctx: *mut GlueContext) -> u16;
    pub fn glue_set_breakpoint(ctx: *mut GlueContext, address: u16) -> c_int;
    pub fn glue_remove_breakpoint(ctx: *mut GlueContext, address: u16);
    pub fn glue_set_breakpoint_callback(ctx: *mut GlueContext, cb: Option<BreakpointCallback>);
    pub fn glue_handle_init(ctx: *mut GlueContext, handle: *mut RawHandle);
    pub fn glue_get_context(vm: *mut c_void) -> *mut GlueContext;
    pub fn glue_kind(ctx: *mut GlueContext, value: Value, out_extra: *mut u16) -> c_int;
    pub fn glue_object_proto(ctx: *mut GlueContext, value: Value) -> Value;
    pub fn glue_array_length(ctx: *mut GlueContext, value: Value) -> c_int;
    pub fn glue_async_start(ctx: *mut GlueContext, result: *mut Value, out_callback: *mut Value) -> c_int;
    pub fn glue_promise_state(ctx: *mut GlueContext, promise: Value, out_value: *mut Value) -> c_int;
    pub fn glue_heap_size(ctx: *mut GlueContext) -> u16;
    pub fn glue_install_fault_net();
    pub fn glue_fault_net_installed() -> bool;
    pub fn glue_fault_net_self_test() -> i32;
    pub fn glue_to_property_key(ctx: *mut GlueContext, inout: *mut Value) -> c_int;
    pub fn glue_find_rom_key(ctx: *mut GlueContext, name: *const c_char, size: usize, out: *mut Value, out_found: *mut bool) -> c_int;
    pub fn glue_intern_head(ctx: *mut GlueContext) -> Value;
    pub fn glue_intern_list(ctx: *mut GlueContext, stop: Value, out: *mut Value, cap: usize, out_count: *mut usize, out_stopped: *mut bool) -> c_int;
    pub fn glue_own_property(ctx: *mut GlueContext, object: Value, key: Value, out: *mut Value, out_found: *mut bool) -> c_int;
}

/// Guest values that are the same in every VM (the engine's well-known
/// constants), so the hot paths need no FFI call for them.
pub const UNDEFINED: Value = 0x01;
pub const NULL: Value = 0x05;
pub const TRUE: Value = 0x09;
pub const FALSE: Value = 0x0D;
/// VM_VALUE_DELETED: array holes and deleted properties.
pub const DELETED: Value = 0x19;
pub const STR_LENGTH: Value = 0x1D;
pub const STR_PROTO: Value = 0x21;

/// A small integer encoded directly in the value (no allocation).
#[inline]
pub fn int14_decode(v: Value) -> Option<i32> {
    if v & 3 == 3 {
        Some(((v as i16) >> 2) as i32)
    } else {
        None
    }
}

#[inline]
pub fn int14_encode(i: i32) -> Option<Value> {
    if (-8192..8192).contains(&i) {
        Some((((i as u32) << 2) | 3) as Value)
    } else {
        None
    }
}

/// Outcome of an engine call: Ok, an engine error code, or a fatal error
/// (the VM can no longer be used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Error(i32),
    Fatal(i32),
    /// Not attempted: the VM was disposed or poisoned (for example by a
    /// getter or host function that ran in the middle of a conversion).
    Unusable,
}

#[inline]
pub fn check(code: c_int) -> Result<(), Failure> {
    if code == E_SUCCESS {
        Ok(())
    } else if code >= FATAL_BASE {
        Err(Failure::Fatal(code - FATAL_BASE))
    } else {
        Err(Failure::Error(code))
    }
}

/// Why the verifier rejected the last restore on this thread.
pub fn verify_detail() -> String {
    // SAFETY: glue_verify_detail returns a NUL-terminated thread-local
    // buffer that stays valid until the next restore on this thread.
    unsafe { std::ffi::CStr::from_ptr(glue_verify_detail()) }.to_string_lossy().into_owned()
}

/// The snapshot header checks of c/verifier.c (one implementation for the
/// addon, the fuzzer and the floor): Ok, or the error number and why.
pub fn check_header(bytes: &[u8]) -> Result<(), (i32, String)> {
    let mut detail: *const c_char = std::ptr::null();
    // SAFETY: bytes is a valid slice for its length; detail receives a
    // NUL-terminated string owned by C (static or thread-local).
    let code = unsafe { glue_check_header(bytes.as_ptr(), bytes.len(), &mut detail) };
    if code == E_SUCCESS {
        return Ok(());
    }
    // SAFETY: see above; never null when the code is an error.
    let text = unsafe { std::ffi::CStr::from_ptr(detail) }.to_string_lossy().into_owned();
    Err((code, text))
}
