//! Engine error codes, their names and descriptions, and how they reach
//! JavaScript: as a `MicroviumError` (lib/errors.js), constructed through the
//! per-thread helper registered by the JS layer.

use crate::js::{Env, JsResult, Pending};
use crate::runtime;

/// (name, description) for each `mvm_TeError`, indexed by errno.
const ERRORS: &[(&str, &str)] = &[
    ("MVM_E_SUCCESS", "success"),
    ("MVM_E_UNEXPECTED", "unexpected internal state"),
    ("MVM_E_MALLOC_FAIL", "host memory allocation failed"),
    ("MVM_E_ALLOCATION_TOO_LARGE", "allocation too large (the engine allocates at most 4095 bytes at once)"),
    ("MVM_E_INVALID_ADDRESS", "invalid address"),
    ("MVM_E_COPY_ACROSS_BUCKET_BOUNDARY", "copy across bucket boundary"),
    ("MVM_E_FUNCTION_NOT_FOUND", "function not found"),
    ("MVM_E_INVALID_HANDLE", "invalid handle"),
    ("MVM_E_STACK_OVERFLOW", "stack overflow"),
    ("MVM_E_UNRESOLVED_IMPORT", "unresolved import"),
    ("MVM_E_ATTEMPT_TO_WRITE_TO_ROM", "attempt to write to ROM"),
    ("MVM_E_INVALID_ARGUMENTS", "invalid arguments"),
    ("MVM_E_TYPE_ERROR", "type error"),
    ("MVM_E_TARGET_NOT_CALLABLE", "target is not callable"),
    ("MVM_E_HOST_ERROR", "host error"),
    ("MVM_E_NOT_IMPLEMENTED", "not implemented"),
    ("MVM_E_HOST_RETURNED_INVALID_VALUE", "host returned an invalid value"),
    ("MVM_E_ASSERTION_FAILED", "assertion failed"),
    ("MVM_E_INVALID_BYTECODE", "invalid bytecode"),
    ("MVM_E_UNRESOLVED_EXPORT", "unresolved export"),
    ("MVM_E_RANGE_ERROR", "range error"),
    ("MVM_E_DETACHED_EPHEMERAL", "detached ephemeral"),
    ("MVM_E_TARGET_IS_NOT_A_VM_FUNCTION", "target is not a VM function"),
    ("MVM_E_FLOAT64", "float64"),
    ("MVM_E_NAN", "NaN"),
    ("MVM_E_NEG_ZERO", "negative zero"),
    ("MVM_E_OPERATION_REQUIRES_FLOAT_SUPPORT", "operation requires float support"),
    ("MVM_E_BYTECODE_CRC_FAIL", "snapshot CRC check failed (the snapshot is corrupted)"),
    ("MVM_E_BYTECODE_REQUIRES_FLOAT_SUPPORT", "bytecode requires float support"),
    ("MVM_E_PROTO_IS_READONLY", "the __proto__ property of objects and arrays is not mutable"),
    ("MVM_E_SNAPSHOT_TOO_LARGE", "the resulting snapshot does not fit in the 64kB boundary"),
    ("MVM_E_MALLOC_MUST_RETURN_POINTER_TO_EVEN_BOUNDARY", "malloc must return a pointer to an even boundary"),
    ("MVM_E_ARRAY_TOO_LONG", "array too long"),
    ("MVM_E_OUT_OF_MEMORY", "out of memory: the guest heap exceeded its limit"),
    ("MVM_E_TOO_MANY_ARGUMENTS", "too many arguments"),
    ("MVM_E_REQUIRES_LATER_ENGINE", "the snapshot requires a later engine version"),
    ("MVM_E_PORT_FILE_VERSION_MISMATCH", "port file version mismatch"),
    ("MVM_E_PORT_FILE_MACRO_TEST_FAILURE", "port file macro test failure"),
    ("MVM_E_EXPECTED_POINTER_SIZE_TO_BE_16_BIT", "expected pointer size to be 16-bit"),
    ("MVM_E_EXPECTED_POINTER_SIZE_NOT_TO_BE_16_BIT", "expected pointer size not to be 16-bit"),
    ("MVM_E_TYPE_ERROR_TARGET_IS_NOT_CALLABLE", "the script tried to call something that wasn't a function"),
    ("MVM_E_TDZ_ERROR", "the script tried to access a local variable before its declaration"),
    ("MVM_E_MALLOC_NOT_WITHIN_RAM_PAGE", "malloc not within RAM page"),
    ("MVM_E_INVALID_ARRAY_INDEX", "array indexes must be integers in the range 0 to 8191"),
    ("MVM_E_UNCAUGHT_EXCEPTION", "the script threw an exception that was not caught"),
    ("MVM_E_FATAL_ERROR_MUST_KILL_VM", "fatal error"),
    ("MVM_E_OBJECT_KEYS_ON_NON_OBJECT", "can only use Reflect.ownKeys on plain objects"),
    ("MVM_E_INVALID_UINT8_ARRAY_LENGTH", "invalid Uint8Array length"),
    ("MVM_E_CAN_ONLY_ASSIGN_BYTES_TO_UINT8_ARRAY", "value assigned to a Uint8Array index must be an integer from 0 to 255"),
    ("MVM_E_WRONG_BYTECODE_VERSION", "the snapshot's bytecode version is not the one this engine supports"),
    ("MVM_E_USING_NEW_ON_NON_CLASS", "the `new` operator can only be used on classes"),
    ("MVM_E_INSTRUCTION_COUNT_REACHED", "the instruction count set by stopAfterNInstructions has been reached"),
    ("MVM_E_REQUIRES_ACTIVE_VM", "the operation requires an active VM call"),
    ("MVM_E_ASYNC_START_ERROR", "async start error"),
    ("MVM_E_ASYNC_WITHOUT_AWAIT", "async host call from a script without await points"),
    ("MVM_E_TYPE_ERROR_AWAIT_NON_PROMISE", "can only await a promise in Microvium"),
    ("MVM_E_HEAP_CORRUPT", "the guest heap is corrupt"),
    ("MVM_E_CLASS_PROTOTYPE_MUST_BE_NULL_OR_OBJECT", "the prototype property of a class must be null or a plain object"),
];

pub const E_ALLOCATION_TOO_LARGE: i32 = 3;
pub const E_STACK_OVERFLOW: i32 = 8;
pub const E_UNRESOLVED_IMPORT: i32 = 9;
pub const E_INVALID_BYTECODE: i32 = 18;
pub const E_BYTECODE_CRC_FAIL: i32 = 27;
pub const E_TOO_MANY_ARGUMENTS: i32 = 34;
pub const E_WRONG_BYTECODE_VERSION: i32 = 49;
pub const E_FATAL: i32 = 45;

pub fn name(errno: i32) -> &'static str {
    ERRORS.get(errno as usize).map(|e| e.0).unwrap_or("MVM_E_UNKNOWN")
}

pub fn description(errno: i32) -> &'static str {
    ERRORS.get(errno as usize).map(|e| e.1).unwrap_or("unknown error")
}

/// Throws `MicroviumError` with the standard message, plus `detail` if any:
/// `Microvium Error: NAME (N): description[: detail]`.
pub fn throw(env: Env, errno: i32, detail: Option<&str>) -> Pending {
    let mut message = format!("Microvium Error: {} ({}): {}", name(errno), errno, description(errno));
    if let Some(d) = detail {
        message.push_str(": ");
        message.push_str(d);
    }
    match make(env, errno, &message) {
        Ok(e) => env.throw(e),
        Err(p) => p,
    }
}

fn make(env: Env, errno: i32, message: &str) -> JsResult<crate::js::JsValue> {
    let ctor = runtime::helper(env, runtime::Helper::MakeError)?;
    let code = env.string(name(errno).as_bytes())?;
    let n = env.int32(errno);
    let msg = env.string(message.as_bytes())?;
    let undefined = env.undefined();
    env.call(ctor, undefined, &[code, n, msg])
}
