//! Thin, safe wrappers over the raw Node-API calls this addon uses: the
//! only module that calls `napi::sys`.
//!
//! The hot paths (calls into the guest, property access through proxies) use
//! Node-API directly rather than napi-rs's typed layer: one `napi_value` per
//! argument and no intermediate conversions. Each wrapper checks the status
//! and turns a failure into `Err(Pending)` with a JavaScript exception
//! pending.
//!
//! Native functions enter through `entry` (the panic boundary: a panic must
//! never unwind into Node); data a native function or an object carries
//! (`function_with_data`, `wrap_owned`) is owned by it and freed by its
//! finalizer, so the bodies never see a raw pointer.

use napi::sys;
use std::any::TypeId;
use std::cell::Cell;
use std::ffi::c_void;
use std::os::raw::c_char;
use std::ptr;

pub use sys::{napi_ref as RawRef, napi_value as JsValue};

/// A JavaScript exception is pending on the env; return to JavaScript.
#[derive(Debug, Clone, Copy)]
pub struct Pending;
pub type JsResult<T> = Result<T, Pending>;

/// The Node-API environment of the current thread. Only made from an env
/// Node-API handed over (a callback, a finalizer, module initialisation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Env(sys::napi_env);

/// This thread's env, and its shared buffer (see "The shared buffer"): one
/// thread-local, so a native function's entry looks it up once.
struct ThreadState {
    env: Cell<sys::napi_env>,
    /// SHARED_LEN floats, or null.
    shared: Cell<*mut f64>,
    /// Keeps the shared buffer (and so `shared`) alive.
    shared_buffer: Cell<sys::napi_ref>,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState {
            env: Cell::new(ptr::null_mut()),
            shared: Cell::new(ptr::null_mut()),
            shared_buffer: Cell::new(ptr::null_mut()),
        }
    };
}

/// The env of this thread, for engine callbacks (host functions,
/// breakpoints, the engine's polls) that arrive without one: the one the
/// last native call, finalizer or module initialisation on this thread was
/// given. None before the module loaded and after the env's teardown.
pub fn current_env() -> Option<Env> {
    let e = THREAD.with(|t| t.env.get());
    (!e.is_null()).then_some(Env(e))
}

/// Forgets this thread's env (its teardown has begun), and lets its shared
/// buffer go.
pub fn clear_current_env() {
    THREAD.with(|t| {
        t.shared.set(ptr::null_mut());
        let buffer = t.shared_buffer.replace(ptr::null_mut());
        let env = t.env.replace(ptr::null_mut());
        if !buffer.is_null() && !env.is_null() {
            // SAFETY: a reference this env made (shared_buffer).
            unsafe { sys::napi_delete_reference(env, buffer) };
        }
    });
}

fn set_current(env: sys::napi_env) {
    THREAD.with(|t| t.env.set(env));
}

// ---- The shared buffer -----------------------------------------------------
//
// A few floats JavaScript reads and writes without calling native code (a
// Float64Array over `Env::shared_buffer`), one buffer per thread:
//
//   [SHARED_EPOCH]  the epoch, written by native code only (below);
//   [SHARED_SLOT], [SHARED_TAGS], [SHARED_ARGS..]  a call into the guest:
//       the callee's id, what the JS layer found each argument to be (two
//       bits each, ARG_*), and the arguments that are numbers, written by
//       the JS layer just before it calls the native function that reads
//       them first thing (`shared_call`), before anything can run
//       JavaScript: a number read from memory costs far less than one
//       through Node-API, and a type known is a type not asked.
//
// The epoch changes whenever native code may have changed anything the JS
// layer could have read from a VM: at the entry and the exit of every native
// function (except those made `read_only`), and before native code calls
// into JavaScript (`Env::call`: a host function the guest calls, a helper),
// since guest code may have run in between. Guest state changes only while
// engine code runs, and engine code runs only inside native functions, so a
// value the JS layer read at one epoch is still what a read would give for
// as long as the epoch has not moved (see the read cache in
// lib/membrane.js). A float, so it never wraps.

pub const SHARED_EPOCH: usize = 0;
pub const SHARED_SLOT: usize = 1;
pub const SHARED_TAGS: usize = 2;
pub const SHARED_ARGS: usize = 3;
/// Most arguments whose type a call through the shared buffer carries (the
/// others are looked at through Node-API).
pub const SHARED_MAX_ARGS: usize = 6;
const SHARED_LEN: usize = SHARED_ARGS + SHARED_MAX_ARGS;

/// Results: a plain call (makeCaller's CALLER_PLAIN) that returns a small
/// integer leaves it at SHARED_RESULT, sets SHARED_TAGS to
/// RESULT_IN_BUFFER and returns undefined (making a JS number costs the
/// call a V8 handle); any other result sets SHARED_TAGS to 0. The JS layer
/// looks at the buffer only when the call returned undefined.
pub const SHARED_RESULT: usize = SHARED_SLOT;
pub const RESULT_IN_BUFFER: i32 = -1;

/// The argument tags of SHARED_TAGS (argument i in bits 2i and 2i+1).
pub const ARG_UNKNOWN: u32 = 0;
pub const ARG_NUMBER: u32 = 1;
pub const ARG_STRING: u32 = 2;

/// A call the JS layer described in the shared buffer.
pub struct SharedCall {
    pub callee: f64,
    tags: u32,
    numbers: [f64; SHARED_MAX_ARGS],
}

impl SharedCall {
    /// What the JS layer found argument `i` to be (ARG_*).
    pub fn tag(&self, i: usize) -> u32 {
        if i < SHARED_MAX_ARGS { (self.tags >> (2 * i)) & 3 } else { ARG_UNKNOWN }
    }

    /// Argument `i`, tagged ARG_NUMBER.
    pub fn number(&self, i: usize) -> f64 {
        self.numbers[i]
    }

}

fn bump(t: &ThreadState) {
    let p = t.shared.get();
    if !p.is_null() {
        // SAFETY: p is the backing store of the shared buffer, which this
        // thread's env keeps alive (a strong reference) until its cleanup,
        // where the pointer is cleared first; only this thread uses it.
        unsafe { *p.add(SHARED_EPOCH) += 1.0 };
    }
}

/// Moves this thread's epoch on (see above).
pub fn bump_epoch() {
    THREAD.with(bump);
}

/// This thread's Node-API state, found once and kept (see
/// runtime::HomeThread). Only for the thread that made it.
#[derive(Clone, Copy)]
pub struct ThreadRef(*const ThreadState);

impl ThreadRef {
    pub fn this_thread() -> ThreadRef {
        ThreadRef(THREAD.with(|t| t as *const ThreadState))
    }

    /// `Env::call` on this thread, without looking the thread up.
    pub fn call(self, env: Env, func: JsValue, this: JsValue, args: &[JsValue]) -> JsResult<JsValue> {
        // SAFETY: ThreadState has no destructor, so the thread-local stays
        // where it is for the whole life of its thread, and a ThreadRef is
        // used only on the thread that made it (see runtime::HomeThread).
        bump(unsafe { &*self.0 });
        env.call_unbumped(func, this, args)
    }
}

impl CallInfo {
    /// Hands a plain call's result back through the shared buffer (see
    /// above); the native function then returns undefined.
    pub fn return_number(&self, n: f64) {
        self.write_result(n, RESULT_IN_BUFFER as f64);
    }

    /// Marks a plain call's result as the native function's return value.
    pub fn return_value(&self) {
        self.write_result(0.0, 0.0);
    }

    fn write_result(&self, n: f64, tag: f64) {
        let p = self.shared;
        if !p.is_null() {
            // SAFETY: as in bump.
            unsafe {
                *p.add(SHARED_RESULT) = n;
                *p.add(SHARED_TAGS) = tag;
            }
        }
    }

    /// The call the JS layer left in the shared buffer (see above), or None
    /// if there is no buffer.
    pub fn shared_call(&self) -> Option<SharedCall> {
        let p = self.shared;
        if p.is_null() {
            return None;
        }
        // SAFETY: as in bump; SHARED_LEN floats at p, aligned (a fixed-size
        // copy of the numbers, used only where tagged).
        unsafe {
            let tags = *p.add(SHARED_TAGS);
            let tags = if tags >= 0.0 && tags < 4096.0 { tags as u32 } else { 0 };
            let mut numbers = [0.0; SHARED_MAX_ARGS];
            for (i, n) in numbers.iter_mut().enumerate() {
                if (tags >> (2 * i)) & 3 == ARG_NUMBER {
                    // One float at a time, as the JS layer wrote them: a
                    // wider load of floats just stored one by one stalls.
                    *n = std::ptr::read_volatile(p.add(SHARED_ARGS + i));
                }
            }
            Some(SharedCall { callee: *p.add(SHARED_SLOT), tags, numbers })
        }
    }
}

/// UTF-16 code units as UTF-8, lone surrogates as U+FFFD. Returns whether
/// the bytes are the whole string (no lone surrogate was replaced).
fn utf16_to_utf8(units: &[u16], buf: &mut Vec<u8>) -> bool {
    buf.clear();
    buf.resize(units.len(), 0);
    // ASCII (the usual case) narrows unit by unit; the first other unit
    // sends the rest through the general encoder.
    let mut ascii = 0;
    for (b, &u) in buf.iter_mut().zip(units) {
        if u >= 0x80 {
            break;
        }
        *b = u as u8;
        ascii += 1;
    }
    if ascii == units.len() {
        return true;
    }
    buf.truncate(ascii);
    let units = &units[ascii..];
    buf.reserve(units.len() * 3);
    let mut utf8 = [0u8; 4];
    let mut whole = true;
    for c in char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or_else(|_| {
            whole = false;
            char::REPLACEMENT_CHARACTER
        });
        buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    whole
}

/// A native function's body: its arguments in, its result (or a pending
/// exception) out.
pub type Body = fn(Env, &CallInfo) -> JsResult<JsValue>;

/// The common entry of every native function: records the env, catches
/// panics (a panic must never unwind into Node), maps `Err(Pending)` to the
/// pending exception.
/// `thread_of` finds this thread's state from the function's data (see
/// WithData::thread), or looks it up.
fn entry(
    raw: sys::napi_env,
    info: sys::napi_callback_info,
    read_only: bool,
    thread_of: impl FnOnce(*mut c_void) -> *const ThreadState,
    body: impl FnOnce(Env, &CallInfo) -> JsResult<JsValue>,
) -> JsValue {
    let env = Env(raw);
    let mut thread: Option<&ThreadState> = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> JsResult<JsValue> {
        // Filled in place: Node-API writes the arguments one by one, and
        // moving the struct after that (reading them back in 16-byte
        // pieces) stalled on store forwarding, ~5% of a call.
        let mut ci = CallInfo {
            data: ptr::null_mut(),
            shared: ptr::null_mut(),
            inline: [ptr::null_mut(); INLINE_ARGS],
            heap: Vec::new(),
            argc: FIRST_ARGS,
        };
        env.call_info(info, &mut ci)?;
        // SAFETY: the state of the thread running this call: it has no
        // destructor, so it stays where it is for the thread's whole life;
        // only this thread uses it, through shared references.
        let t = unsafe { &*thread_of(ci.data) };
        thread = Some(t);
        t.env.set(raw);
        if !read_only {
            bump(t);
        }
        ci.shared = t.shared.get();
        body(env, &ci)
    }));
    // A read-only function that failed may have found the VM unusable (a
    // fatal error): values read before must not be served after that.
    if let Some(t) = thread {
        if !read_only || !matches!(outcome, Ok(Ok(_))) {
            bump(t);
        }
    }
    match outcome {
        Ok(Ok(v)) => v,
        Ok(Err(Pending)) => ptr::null_mut(),
        Err(_) => {
            if !env.is_exception_pending() {
                env.throw_error("@microvium/runtime: internal error (panic)");
            }
            ptr::null_mut()
        }
    }
}

/// Native functions made by `Env::function`: the callback data is the body.
unsafe extern "C" fn body_entry(raw: sys::napi_env, info: sys::napi_callback_info) -> JsValue {
    // One thread-local lookup per call (each costs a call into the dynamic
    // linker in a shared object).
    entry(raw, info, false, |_| THREAD.with(|t| t as *const ThreadState), |env, ci| {
        // SAFETY: Env::function made this function with a `Body` as its
        // data, and nothing else.
        let body: Body = unsafe { std::mem::transmute::<*mut c_void, Body>(ci.data) };
        body(env, ci)
    })
}

/// What `Env::function_with_data` gives a native function to own.
struct WithData<T> {
    body: fn(Env, &CallInfo, &T) -> JsResult<JsValue>,
    data: T,
    /// The state of the thread that made the function, the only one that
    /// can call it (a Node-API function belongs to its env): no
    /// thread-local lookup per call.
    thread: *const ThreadState,
}

/// READ_ONLY: the function leaves the epoch alone (see
/// `Env::read_only_function_with_data`).
unsafe extern "C" fn data_entry<T: 'static, const READ_ONLY: bool>(raw: sys::napi_env, info: sys::napi_callback_info) -> JsValue {
    // SAFETY (both closures): function_with_data::<T> made this function
    // with a Box<WithData<T>> as its data, which its finalizer frees only
    // once the function is collected; the function is running, so it is not.
    let thread_of = |data: *mut c_void| unsafe { (*(data as *const WithData<T>)).thread };
    entry(raw, info, READ_ONLY, thread_of, |env, ci| {
        // SAFETY: function_with_data::<T> made this function with a
        // Box<WithData<T>> as its data, which its finalizer frees only once
        // the function is collected; the function is running, so it is not.
        let with = unsafe { &*(ci.data as *const WithData<T>) };
        (with.body)(env, ci, &with.data)
    })
}

unsafe extern "C" fn drop_data<T: 'static>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the Box leaked by function_with_data::<T>, finalized once.
    drop(unsafe { Box::from_raw(data as *mut WithData<T>) });
}

/// What `Env::wrap_owned` attaches to an object: the type is checked on the
/// way out (`with_owned`), so a wrap can never be read as another type.
#[repr(C)]
struct Owned<T> {
    type_id: TypeId,
    finalize: fn(Env, T),
    value: T,
}

unsafe extern "C" fn finalize_owned<T: 'static>(raw: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the Box leaked by wrap_owned::<T>, finalized exactly once.
    let owned = unsafe { Box::from_raw(data as *mut Owned<T>) };
    // At environment teardown the cleanup hooks have already run and
    // cleared this thread's env; what `finalize` drops may need it.
    let teardown = current_env().is_none();
    if teardown {
        set_current(raw);
    } else {
        bump_epoch();
    }
    let Owned { finalize, value, .. } = *owned;
    finalize(Env(raw), value);
    if teardown {
        clear_current_env();
    }
}

/// What `Env::unwrap` found attached to an object by this addon.
pub enum Wrap {
    /// An odd integer (`wrap_tag`).
    Tag(usize),
    /// Data of `wrap_owned`; see `with_owned`.
    Owned,
}

unsafe extern "C" fn cleanup_entry(arg: *mut c_void) {
    // SAFETY: on_cleanup registered a plain `fn()` as the argument.
    let hook: fn() = unsafe { std::mem::transmute::<*mut c_void, fn()>(arg) };
    let _ = std::panic::catch_unwind(hook);
}

/// An open Node-API handle scope (see `Env::open_scope`).
#[must_use = "a handle scope must be closed"]
pub struct Scope(sys::napi_handle_scope);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Undefined,
    Null,
    Boolean,
    Number,
    String,
    Symbol,
    Object,
    Function,
    External,
    BigInt,
}

impl Env {
    /// The env napi-rs hands to module initialisation.
    pub fn from_napi(env: &napi::Env) -> Env {
        set_current(env.raw());
        Env(env.raw())
    }

    #[inline]
    fn ok(self, status: sys::napi_status) -> JsResult<()> {
        if status == sys::Status::napi_ok {
            return Ok(());
        }
        // A pending exception explains the failure; otherwise raise one.
        if !self.is_exception_pending() {
            let msg = format!("Node-API call failed (status {status})\0");
            // SAFETY: msg is NUL-terminated; env is the current thread's env.
            unsafe { sys::napi_throw_error(self.0, ptr::null(), msg.as_ptr() as *const c_char) };
        }
        Err(Pending)
    }

    pub fn is_exception_pending(self) -> bool {
        let mut r = false;
        // SAFETY: valid env, out-pointer to a local.
        unsafe { sys::napi_is_exception_pending(self.0, &mut r) };
        r
    }

    pub fn take_exception(self) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: valid env, out-pointer to a local.
        unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut v) };
        v
    }

    pub fn throw(self, value: JsValue) -> Pending {
        // SAFETY: value is a live napi_value of this env.
        unsafe { sys::napi_throw(self.0, value) };
        Pending
    }

    pub fn throw_type_error(self, message: &str) -> Pending {
        let m = format!("{message}\0");
        // SAFETY: NUL-terminated message.
        unsafe { sys::napi_throw_type_error(self.0, ptr::null(), m.as_ptr() as *const c_char) };
        Pending
    }

    pub fn throw_range_error(self, message: &str) -> Pending {
        let m = format!("{message}\0");
        // SAFETY: NUL-terminated message.
        unsafe { sys::napi_throw_range_error(self.0, ptr::null(), m.as_ptr() as *const c_char) };
        Pending
    }

    pub fn throw_error(self, message: &str) -> Pending {
        let m = format!("{message}\0");
        // SAFETY: NUL-terminated message.
        unsafe { sys::napi_throw_error(self.0, ptr::null(), m.as_ptr() as *const c_char) };
        Pending
    }

    #[allow(non_upper_case_globals)]
    pub fn type_of(self, v: JsValue) -> JsResult<Type> {
        let mut t = 0;
        // SAFETY: v is a live value of this env.
        self.ok(unsafe { sys::napi_typeof(self.0, v, &mut t) })?;
        use sys::ValueType::*;
        Ok(match t {
            napi_undefined => Type::Undefined,
            napi_null => Type::Null,
            napi_boolean => Type::Boolean,
            napi_number => Type::Number,
            napi_string => Type::String,
            napi_symbol => Type::Symbol,
            napi_object => Type::Object,
            napi_function => Type::Function,
            napi_external => Type::External,
            _ => Type::BigInt,
        })
    }

    pub fn undefined(self) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_get_undefined(self.0, &mut v) };
        v
    }

    pub fn null(self) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_get_null(self.0, &mut v) };
        v
    }

    pub fn boolean(self, b: bool) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_get_boolean(self.0, b, &mut v) };
        v
    }

    pub fn int32(self, i: i32) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_create_int32(self.0, i, &mut v) };
        v
    }

    pub fn double(self, d: f64) -> JsValue {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_create_double(self.0, d, &mut v) };
        v
    }

    /// A string from UTF-8 bytes. ASCII, the usual case, is made as
    /// Latin-1, which V8 copies without decoding.
    pub fn string(self, s: &[u8]) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        let p = s.as_ptr() as *const c_char;
        // SAFETY: s is a valid byte slice of the given length; ASCII bytes
        // are the same characters in Latin-1.
        self.ok(unsafe {
            if s.is_ascii() {
                sys::napi_create_string_latin1(self.0, p, s.len() as isize, &mut v)
            } else {
                sys::napi_create_string_utf8(self.0, p, s.len() as isize, &mut v)
            }
        })?;
        Ok(v)
    }

    pub fn get_bool(self, v: JsValue) -> JsResult<bool> {
        let mut b = false;
        // SAFETY: out-pointer to a local.
        self.ok(unsafe { sys::napi_get_value_bool(self.0, v, &mut b) })?;
        Ok(b)
    }

    /// The value if `v` is a number, without raising anything otherwise (one
    /// Node-API call on the hot path instead of typeof + get).
    #[inline]
    pub fn try_f64(self, v: JsValue) -> Option<f64> {
        let mut d = 0.0;
        // SAFETY: out-pointer to a local; a non-number only yields a status.
        let st = unsafe { sys::napi_get_value_double(self.0, v, &mut d) };
        if st == sys::Status::napi_ok {
            Some(d)
        } else {
            None
        }
    }

    pub fn get_f64(self, v: JsValue) -> JsResult<f64> {
        let mut d = 0.0;
        // SAFETY: out-pointer to a local.
        self.ok(unsafe { sys::napi_get_value_double(self.0, v, &mut d) })?;
        Ok(d)
    }

    /// UTF-8 contents of a JS string, into `buf` (reused by the caller).
    /// Lone surrogates become U+FFFD, as in any UTF-8 conversion.
    /// The string `v` as UTF-8 into `buf` (lone surrogates become U+FFFD,
    /// as Node-API's UTF-8 read makes them). Read as UTF-16, which V8
    /// copies out of its strings with less work than it takes to encode
    /// UTF-8; most strings are ASCII, which narrows in one pass.
    /// The string `v` as UTF-8 in `buf`; whether that is the whole string
    /// (false when a lone surrogate became U+FFFD).
    pub fn get_string_into(self, v: JsValue, buf: &mut Vec<u8>) -> JsResult<bool> {
        // One call for short strings: a result shorter than the buffer less
        // its terminator is whole.
        const FIRST_TRY: usize = 64;
        let mut units = std::mem::MaybeUninit::<[u16; FIRST_TRY]>::uninit();
        let mut written = 0usize;
        // SAFETY: units has room for FIRST_TRY units (terminator included).
        self.ok(unsafe { sys::napi_get_value_string_utf16(self.0, v, units.as_mut_ptr() as *mut u16, FIRST_TRY, &mut written) })?;
        if written < FIRST_TRY - 1 {
            // SAFETY: Node-API wrote `written` units (and a terminator).
            let units = unsafe { std::slice::from_raw_parts(units.as_ptr() as *const u16, written) };
            return Ok(utf16_to_utf8(units, buf));
        }
        let mut len = 0usize;
        // SAFETY: a null buffer asks for the length only.
        self.ok(unsafe { sys::napi_get_value_string_utf16(self.0, v, ptr::null_mut(), 0, &mut len) })?;
        let mut long = vec![0u16; len + 1];
        // SAFETY: long has room for len + 1 units (terminator included).
        self.ok(unsafe { sys::napi_get_value_string_utf16(self.0, v, long.as_mut_ptr(), len + 1, &mut written) })?;
        Ok(utf16_to_utf8(&long[..written.min(len)], buf))
    }

    pub fn get_string(self, v: JsValue) -> JsResult<String> {
        let mut buf = Vec::new();
        self.get_string_into(v, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub fn object(self) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        self.ok(unsafe { sys::napi_create_object(self.0, &mut v) })?;
        Ok(v)
    }

    pub fn array(self, len: usize) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        self.ok(unsafe { sys::napi_create_array_with_length(self.0, len, &mut v) })?;
        Ok(v)
    }

    pub fn get_named(self, obj: JsValue, name: &str) -> JsResult<JsValue> {
        let n = format!("{name}\0");
        let mut v = ptr::null_mut();
        // SAFETY: NUL-terminated name; obj is a live value.
        self.ok(unsafe { sys::napi_get_named_property(self.0, obj, n.as_ptr() as *const c_char, &mut v) })?;
        Ok(v)
    }

    pub fn set_named(self, obj: JsValue, name: &str, value: JsValue) -> JsResult<()> {
        let n = format!("{name}\0");
        // SAFETY: NUL-terminated name; live values.
        self.ok(unsafe { sys::napi_set_named_property(self.0, obj, n.as_ptr() as *const c_char, value) })
    }

    pub fn get_property(self, obj: JsValue, key: JsValue) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: live values.
        self.ok(unsafe { sys::napi_get_property(self.0, obj, key, &mut v) })?;
        Ok(v)
    }

    pub fn get_element(self, obj: JsValue, i: u32) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: live values.
        self.ok(unsafe { sys::napi_get_element(self.0, obj, i, &mut v) })?;
        Ok(v)
    }

    pub fn set_element(self, obj: JsValue, i: u32, value: JsValue) -> JsResult<()> {
        // SAFETY: live values.
        self.ok(unsafe { sys::napi_set_element(self.0, obj, i, value) })
    }

    pub fn is_array(self, v: JsValue) -> bool {
        let mut r = false;
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_is_array(self.0, v, &mut r) };
        r
    }

    pub fn array_length(self, v: JsValue) -> JsResult<u32> {
        let mut n = 0;
        // SAFETY: out-pointer to a local.
        self.ok(unsafe { sys::napi_get_array_length(self.0, v, &mut n) })?;
        Ok(n)
    }

    pub fn is_promise(self, v: JsValue) -> bool {
        let mut r = false;
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_is_promise(self.0, v, &mut r) };
        r
    }

    pub fn is_error(self, v: JsValue) -> bool {
        let mut r = false;
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_is_error(self.0, v, &mut r) };
        r
    }

    /// The element type, length (in elements) and data of a typed array;
    /// None for anything else. The data lives as long as the array's buffer.
    fn typed_array(self, v: JsValue) -> Option<(sys::napi_typedarray_type, usize, *mut c_void)> {
        let mut is_ta = false;
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_is_typedarray(self.0, v, &mut is_ta) };
        if !is_ta {
            return None;
        }
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        let mut ab = ptr::null_mut();
        let mut offset = 0usize;
        // SAFETY: v is a typed array; out-pointers to locals.
        let st = unsafe { sys::napi_get_typedarray_info(self.0, v, &mut ty, &mut len, &mut data, &mut ab, &mut offset) };
        (st == sys::Status::napi_ok).then_some((ty, len, data))
    }

    /// A copy of the bytes of a Uint8Array or Buffer; None for anything
    /// else.
    pub fn uint8_bytes(self, v: JsValue) -> Option<Vec<u8>> {
        let (ty, len, data) = self.typed_array(v)?;
        if ty != sys::TypedarrayType::uint8_array {
            return None;
        }
        if len == 0 || data.is_null() {
            return Some(Vec::new());
        }
        // SAFETY: Node-API reports `len` bytes at `data`, alive while `v`
        // is (it is a live value of this call); they are copied at once.
        Some(unsafe { std::slice::from_raw_parts(data as *const u8, len) }.to_vec())
    }

    /// The address of element 0 of an Int32Array of at least one element,
    /// or None. The memory lives as long as the array's buffer; a caller
    /// that keeps the address must keep the array alive.
    pub fn int32_array_data(self, v: JsValue) -> Option<*const i32> {
        match self.typed_array(v)? {
            (ty, len, data) if ty == sys::TypedarrayType::int32_array && len > 0 && !data.is_null() => {
                Some(data as *const i32)
            }
            _ => None,
        }
    }

    pub fn uint8array_from(self, bytes: &[u8]) -> JsResult<JsValue> {
        let mut data: *mut c_void = ptr::null_mut();
        let mut ab = ptr::null_mut();
        // SAFETY: out-pointers to locals.
        self.ok(unsafe { sys::napi_create_arraybuffer(self.0, bytes.len(), &mut data, &mut ab) })?;
        if !bytes.is_empty() {
            // SAFETY: Node allocated bytes.len() writable bytes at data.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len()) };
        }
        let mut v = ptr::null_mut();
        // SAFETY: ab is the buffer just created.
        self.ok(unsafe { sys::napi_create_typedarray(self.0, sys::TypedarrayType::uint8_array, bytes.len(), ab, 0, &mut v) })?;
        Ok(v)
    }

    pub fn own_enumerable_string_keys(self, obj: JsValue) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: live object.
        self.ok(unsafe {
            sys::napi_get_all_property_names(
                self.0,
                obj,
                sys::KeyCollectionMode::own_only,
                sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                sys::KeyConversion::numbers_to_strings,
                &mut v,
            )
        })?;
        Ok(v)
    }

    pub fn prototype_of(self, obj: JsValue) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: live object.
        self.ok(unsafe { sys::napi_get_prototype(self.0, obj, &mut v) })?;
        Ok(v)
    }

    pub fn strict_equals(self, a: JsValue, b: JsValue) -> bool {
        let mut r = false;
        // SAFETY: live values.
        unsafe { sys::napi_strict_equals(self.0, a, b, &mut r) };
        r
    }

    pub fn call(self, func: JsValue, this: JsValue, args: &[JsValue]) -> JsResult<JsValue> {
        // Guest code may have run since this native function began.
        bump_epoch();
        self.call_unbumped(func, this, args)
    }

    /// `call` for a caller that has moved the epoch on itself.
    fn call_unbumped(self, func: JsValue, this: JsValue, args: &[JsValue]) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: args are live values of this env.
        self.ok(unsafe { sys::napi_call_function(self.0, this, func, args.len(), args.as_ptr(), &mut v) })?;
        Ok(v)
    }

    /// A native function running `body`.
    pub fn function(self, name: &str, body: Body) -> JsResult<JsValue> {
        self.raw_function(name, body_entry, body as *mut c_void)
    }

    /// A native function running `body` with `data`, which the function
    /// owns: it is dropped when the function is collected.
    pub fn function_with_data<T: 'static>(
        self,
        name: &str,
        body: fn(Env, &CallInfo, &T) -> JsResult<JsValue>,
        data: T,
    ) -> JsResult<JsValue> {
        self.owning_function(name, data_entry::<T, false>, body, data)
    }

    /// As function_with_data, for a body that changes nothing a VM's host
    /// values could read (a property read): calling it leaves the epoch
    /// where it is, so values read before stay valid. The body may call
    /// into JavaScript (Env::call moves the epoch).
    pub fn read_only_function_with_data<T: 'static>(
        self,
        name: &str,
        body: fn(Env, &CallInfo, &T) -> JsResult<JsValue>,
        data: T,
    ) -> JsResult<JsValue> {
        self.owning_function(name, data_entry::<T, true>, body, data)
    }

    fn owning_function<T: 'static>(
        self,
        name: &str,
        cb: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> JsValue,
        body: fn(Env, &CallInfo, &T) -> JsResult<JsValue>,
        data: T,
    ) -> JsResult<JsValue> {
        let thread = THREAD.with(|t| t as *const ThreadState);
        let boxed = Box::into_raw(Box::new(WithData { body, data, thread }));
        let f = match self.raw_function(name, cb, boxed as *mut c_void) {
            Ok(f) => f,
            Err(p) => {
                // SAFETY: Node did not take the box.
                drop(unsafe { Box::from_raw(boxed) });
                return Err(p);
            }
        };
        // SAFETY: f is the live function just made; drop_data::<T> frees the
        // box exactly once, when f is collected.
        let st = unsafe { sys::napi_add_finalizer(self.0, f, boxed as *mut c_void, Some(drop_data::<T>), ptr::null_mut(), ptr::null_mut()) };
        if st != sys::Status::napi_ok {
            // The function exists and may still be called, so the box stays
            // (leaked, once per failure; Node-API only fails here when out of
            // memory).
            return self.ok(st).map(|_| f);
        }
        Ok(f)
    }

    fn raw_function(self, name: &str, cb: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> JsValue, data: *mut c_void) -> JsResult<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: name bytes and length are valid; cb is an extern "C"
        // callback that understands `data`.
        self.ok(unsafe {
            sys::napi_create_function(self.0, name.as_ptr() as *const c_char, name.len() as isize, Some(cb), data, &mut v)
        })?;
        Ok(v)
    }

    /// Marks an object as made by this addon with an odd integer (no
    /// finalizer, nothing to free): see `unwrap`.
    pub fn wrap_tag(self, obj: JsValue, tag: usize) -> JsResult<()> {
        assert!(tag & 1 == 1, "wrap tags are odd, so that they are never taken for owned data");
        // SAFETY: obj is a live object never wrapped before (Node-API
        // refuses otherwise); the data is an integer, never dereferenced.
        let st = unsafe { sys::napi_wrap(self.0, obj, tag as *mut c_void, None, ptr::null_mut(), ptr::null_mut()) };
        self.ok(st)
    }

    /// Attaches `value` to `obj`, which owns it: when `obj` is collected,
    /// `finalize` gets it back. Returns a weak reference to `obj`.
    pub fn wrap_owned<T: 'static>(self, obj: JsValue, value: T, finalize: fn(Env, T)) -> JsResult<RawRef> {
        let boxed = Box::into_raw(Box::new(Owned { type_id: TypeId::of::<T>(), finalize, value }));
        let mut r = ptr::null_mut();
        // SAFETY: obj is a live object; the box is freed by finalize_owned
        // exactly once, or below if Node did not take it.
        let st = unsafe { sys::napi_wrap(self.0, obj, boxed as *mut c_void, Some(finalize_owned::<T>), ptr::null_mut(), &mut r) };
        if st != sys::Status::napi_ok {
            // SAFETY: Node did not take ownership.
            drop(unsafe { Box::from_raw(boxed) });
            return self.ok(st).map(|_| ptr::null_mut());
        }
        Ok(r)
    }

    fn wrap_data(self, v: JsValue) -> Option<*mut c_void> {
        let mut data: *mut c_void = ptr::null_mut();
        // SAFETY: out-pointer to a local; napi_unwrap only succeeds on
        // objects this addon instance wrapped.
        let st = unsafe { sys::napi_unwrap(self.0, v, &mut data) };
        (st == sys::Status::napi_ok && !data.is_null()).then_some(data)
    }

    /// What this addon attached to `v`, if anything.
    pub fn unwrap(self, v: JsValue) -> Option<Wrap> {
        let data = self.wrap_data(v)? as usize;
        Some(if data & 1 == 1 { Wrap::Tag(data) } else { Wrap::Owned })
    }

    /// Runs `f` on the value of type `T` that `wrap_owned` attached to `v`;
    /// None if `v` carries no such value.
    pub fn with_owned<T: 'static, R>(self, v: JsValue, f: impl FnOnce(&T) -> R) -> Option<R> {
        let data = self.wrap_data(v)?;
        if data as usize & 1 == 1 {
            return None;
        }
        // SAFETY: even wrap data is always a Box<Owned<_>> of wrap_owned,
        // whose first field (repr(C)) is the type's id; it lives until `v`
        // is finalized, which cannot happen while `v` is a live value of
        // this call.
        let type_id = unsafe { *(data as *const TypeId) };
        if type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: as above, and the type is T.
        Some(f(unsafe { &(*(data as *const Owned<T>)).value }))
    }

    /// Runs `hook` when this env is torn down (a worker exiting).
    /// The ArrayBuffer of this thread's shared buffer (see "The shared
    /// buffer"); made once per thread.
    pub fn shared_buffer(self) -> JsResult<JsValue> {
        let existing = THREAD.with(|t| t.shared_buffer.get());
        if !existing.is_null() {
            return self.ref_value(existing).ok_or_else(|| self.throw_error("shared buffer collected"));
        }
        let mut data: *mut c_void = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        // SAFETY: out-pointers to locals.
        self.ok(unsafe { sys::napi_create_arraybuffer(self.0, SHARED_LEN * std::mem::size_of::<f64>(), &mut data, &mut buffer) })?;
        let r = self.new_ref(buffer, 1)?;
        THREAD.with(|t| {
            t.shared_buffer.set(r);
            // V8 never moves an ArrayBuffer's backing store, allocates it
            // aligned for any element type, and zeroes it.
            t.shared.set(data as *mut f64);
        });
        Ok(buffer)
    }

    pub fn on_cleanup(self, hook: fn()) {
        // SAFETY: cleanup_entry turns the argument back into the `fn()`.
        unsafe { sys::napi_add_env_cleanup_hook(self.0, Some(cleanup_entry), hook as *mut c_void) };
    }

    /// Tells V8 that native memory held on behalf of JavaScript objects
    /// changed by `delta` bytes.
    pub fn adjust_external_memory(self, delta: i64) {
        let mut total = 0i64;
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_adjust_external_memory(self.0, delta, &mut total) };
    }

    /// A plain `Error` with this message (a string value).
    pub fn error(self, message: JsValue) -> JsResult<JsValue> {
        let mut err = ptr::null_mut();
        // SAFETY: message is a live string; out-pointer to a local.
        self.ok(unsafe { sys::napi_create_error(self.0, ptr::null_mut(), message, &mut err) })?;
        Ok(err)
    }

    pub fn new_ref(self, v: JsValue, count: u32) -> JsResult<RawRef> {
        let mut r = ptr::null_mut();
        // SAFETY: live value.
        self.ok(unsafe { sys::napi_create_reference(self.0, v, count, &mut r) })?;
        Ok(r)
    }

    /// The referenced value, or None if a weak reference's target is gone.
    pub fn ref_value(self, r: RawRef) -> Option<JsValue> {
        let mut v = ptr::null_mut();
        // SAFETY: r is a reference created on this env and not yet deleted
        // (callers keep that invariant).
        let st = unsafe { sys::napi_get_reference_value(self.0, r, &mut v) };
        if st != sys::Status::napi_ok || v.is_null() {
            None
        } else {
            Some(v)
        }
    }

    pub fn delete_ref(self, r: RawRef) {
        if !r.is_null() {
            // SAFETY: r was created on this env and is deleted exactly once.
            unsafe { sys::napi_delete_reference(self.0, r) };
        }
    }

    /// Opens a handle scope: values made until `close_scope` are released
    /// then. Scopes close innermost first.
    pub fn open_scope(self) -> Scope {
        let mut s = ptr::null_mut();
        // SAFETY: out-pointer to a local.
        unsafe { sys::napi_open_handle_scope(self.0, &mut s) };
        Scope(s)
    }

    pub fn close_scope(self, s: Scope) {
        // SAFETY: s was opened on this env by open_scope, innermost first.
        unsafe { sys::napi_close_handle_scope(self.0, s.0) };
    }
}

const INLINE_ARGS: usize = 8;
/// Arguments asked for first (see call_info).
const FIRST_ARGS: usize = 4;

/// Arguments of a native callback; up to 8 without a heap allocation.
pub struct CallInfo {
    data: *mut c_void,
    /// This thread's shared buffer (see "The shared buffer"), or null.
    shared: *mut f64,
    inline: [JsValue; INLINE_ARGS],
    heap: Vec<JsValue>,
    argc: usize,
}

impl CallInfo {
    pub fn args(&self) -> &[JsValue] {
        if self.argc <= INLINE_ARGS {
            &self.inline[..self.argc]
        } else {
            &self.heap
        }
    }
}

impl Env {
    /// Fills `ci` (argc FIRST_ARGS, the rest empty) with the call's
    /// arguments and data.
    fn call_info(self, info: sys::napi_callback_info, ci: &mut CallInfo) -> JsResult<()> {
        // SAFETY: inline has room for argc (= FIRST_ARGS) values.
        self.ok(unsafe {
            sys::napi_get_cb_info(self.0, info, &mut ci.argc, ci.inline.as_mut_ptr(), ptr::null_mut(), &mut ci.data)
        })?;
        if ci.argc > FIRST_ARGS && ci.argc <= INLINE_ARGS {
            // Node-API fills every slot it is given (with undefined past the
            // arguments): the usual few are asked for first, the rest only
            // when there are more.
            let mut argc = ci.argc;
            // SAFETY: inline has room for INLINE_ARGS >= argc values.
            self.ok(unsafe {
                sys::napi_get_cb_info(self.0, info, &mut argc, ci.inline.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
            })?;
        } else if ci.argc > INLINE_ARGS {
            ci.heap = vec![ptr::null_mut(); ci.argc];
            let mut argc = ci.argc;
            // SAFETY: heap has room for argc values.
            self.ok(unsafe {
                sys::napi_get_cb_info(self.0, info, &mut argc, ci.heap.as_mut_ptr(), ptr::null_mut(), ptr::null_mut())
            })?;
        }
        Ok(())
    }
}
