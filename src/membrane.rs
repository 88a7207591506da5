//! The value membrane: how values cross between the host (JavaScript) and
//! the guest (Microvium).
//!
//! Out of the guest, primitives are copied; references become host values
//! (native functions for guest functions, JS-layer proxies for the rest)
//! backed by a rooted slot, one host value per guest value at a time.
//! Into the guest, primitives are copied, host values that came out of the
//! same VM go back by reference, plain objects and arrays are deep-copied,
//! and everything else is a TypeError naming its type.
//!
//! GC safety: converting into the guest allocates, and any allocation may
//! move guest objects. A guest value is therefore never held in a Rust
//! variable across an allocation; it is held in a handle slot (`Rooted`).

use crate::engine::{self, kind, Failure, Value};
use crate::errors;
use crate::handles::Slot;
use crate::js::{Env, JsResult, JsValue, Pending, Type};
use crate::runtime::{self, Helper};
use crate::vm::{CallFailure, GuestRef, Status, VmState, Wrapped};
use napi::sys;
use std::ffi::c_void;
use std::rc::Rc;

/// Deepest nesting of host objects/arrays copied into the guest. The guest
/// heap is 64 kB, so deeper structures cannot fit anyway; the limit keeps the
/// recursive copy far from the native stack's end.
pub const MAX_COPY_DEPTH: usize = 64;

// ---------------------------------------------------------------------------
// Temporaries
// ---------------------------------------------------------------------------

/// A temporary handle slot that roots a guest value during a conversion or
/// call. Temporaries live on a per-VM stack and are released together when
/// the enclosing `TempScope` ends, so a `Rooted` must not outlive the scope
/// that was innermost when it was made.
#[derive(Clone, Copy)]
pub struct Rooted<'a> {
    vm: &'a VmState,
    pub slot: Slot,
}

/// Releases the temporaries made since it was created.
pub struct TempScope<'a> {
    vm: &'a VmState,
    mark: usize,
}

impl<'a> TempScope<'a> {
    pub fn new(vm: &'a VmState) -> Self {
        TempScope { vm, mark: vm.handles.borrow().temp_mark() }
    }
}

impl Drop for TempScope<'_> {
    fn drop(&mut self) {
        if let Ok(mut h) = self.vm.handles.try_borrow_mut() {
            h.pop_temps(self.mark);
        }
    }
}

impl<'a> Rooted<'a> {
    pub fn new(vm: &'a VmState, value: Value) -> Self {
        let slot = vm.handles.borrow_mut().push_temp(vm.ctx(), value);
        Rooted { vm, slot }
    }
    pub fn get(&self) -> Value {
        self.vm.handles.borrow().get(self.slot)
    }
    pub fn set(&self, v: Value) {
        *self.vm.handles.borrow_mut().ptr(self.slot) = v;
    }
    /// Pointer to the rooted value, for engine calls taking `mvm_Value*`.
    /// Valid until the table grows (which only `alloc` does), so take it
    /// right before the engine call.
    pub fn raw(&self) -> *mut Value {
        self.vm.handles.borrow_mut().raw(self.slot)
    }
}


pub fn throw_failure(env: Env, vm: &VmState, f: Failure) -> Pending {
    match f {
        Failure::Error(e) => errors::throw(env, e, None),
        Failure::Fatal(e) => {
            let _ = vm;
            errors::throw(env, e, Some("fatal engine error; this VM can no longer be used"))
        }
    }
}

// ---------------------------------------------------------------------------
// Guest → host
// ---------------------------------------------------------------------------

/// Converts a guest value to a host value. Does not allocate in the guest,
/// so `value` may come from anywhere (stack, result slot).
pub fn to_host(env: Env, vm: &Rc<VmState>, value: Value) -> JsResult<JsValue> {
    match value {
        engine::UNDEFINED => return Ok(env.undefined()),
        engine::NULL => return Ok(env.null()),
        engine::TRUE => return Ok(env.boolean(true)),
        engine::FALSE => return Ok(env.boolean(false)),
        _ => {}
    }
    if let Some(i) = engine::int14_decode(value) {
        return Ok(env.int32(i));
    }
    let ctx = vm.ctx();
    let mut extra = 0u16;
    // SAFETY: ctx belongs to a live engine (callers checked the status).
    let k = unsafe { engine::glue_kind(ctx, value, &mut extra) };
    match k {
        kind::UNDEFINED => Ok(env.undefined()),
        kind::NULL => Ok(env.null()),
        kind::BOOLEAN => Ok(env.boolean(extra != 0)),
        // SAFETY: value is a number of this engine.
        kind::NUMBER => Ok(env.double(unsafe { engine::glue_to_float64(ctx, value) })),
        kind::STRING => {
            let mut p = std::ptr::null();
            let mut n = 0usize;
            // SAFETY: value is a string; the engine returns a pointer into
            // its memory, valid until the next allocation, and the bytes are
            // copied into a JS string before anything else runs.
            let code = unsafe { engine::glue_string_utf8(ctx, value, &mut p, &mut n) };
            if code != 0 {
                return Err(throw_failure(env, vm, engine::check(code).unwrap_err()));
            }
            let bytes = if n == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(p as *const u8, n) } };
            env.string(bytes)
        }
        kind::HOST_FUNCTION => match vm.import_function(env, extra) {
            Some(f) => Ok(f),
            None => Err(env.throw_error(&format!("Microvium guest returned host function {extra}, which is not available"))),
        },
        kind::FUNCTION | kind::OBJECT | kind::ARRAY | kind::FIXED_ARRAY | kind::UINT8_ARRAY | kind::CLASS
        | kind::PROMISE => reference_to_host(env, vm, value, k),
        _ => Err(env.throw_type_error("Microvium guest value of an unsupported type (symbol or bigint)")),
    }
}

/// The host value for a guest reference: the existing one if the host
/// already holds this guest value, else a new one rooted in a slot.
fn reference_to_host(env: Env, vm: &Rc<VmState>, value: Value, k: i32) -> JsResult<JsValue> {
    let epoch = vm.gc_epoch();
    let (slot, existing) = {
        let mut h = vm.handles.borrow_mut();
        match h.find(value, epoch) {
            Some(s) => {
                let r = h.meta(s).host;
                (s, if r.is_null() { None } else { Some(r) })
            }
            None => (h.alloc(vm.ctx(), value), None),
        }
    };
    if let Some(r) = existing {
        if let Some(v) = env.ref_value(r) {
            return Ok(v);
        }
    }
    let generation = {
        let mut h = vm.handles.borrow_mut();
        let m = h.meta(slot);
        m.generation = m.generation.wrapping_add(1);
        m.host = std::ptr::null_mut();
        m.generation
    };
    let made = match k {
        kind::FUNCTION => make_guest_function(env, vm, slot, generation),
        kind::PROMISE => make_promise(env, vm, slot, generation),
        _ => make_proxy(env, vm, slot, k, generation),
    };
    match made {
        Ok(v) => Ok(v),
        Err(p) => {
            let mut h = vm.handles.borrow_mut();
            if h.meta(slot).host.is_null() {
                h.release(slot);
            }
            Err(p)
        }
    }
}

fn make_proxy(env: Env, vm: &Rc<VmState>, slot: Slot, k: i32, generation: u32) -> JsResult<JsValue> {
    let factory = runtime::helper(env, Helper::MakeValue)?;
    let core = env.ref_value(vm.core.get()).ok_or_else(|| env.throw_error("Microvium VM core was collected"))?;
    let undefined = env.undefined();
    let v = env.call(factory, undefined, &[env.int32(k), core, env.int32(slot as i32)])?;
    attach(env, vm, v, slot, generation)?;
    Ok(v)
}

/// A host Promise for a guest promise. It settles when the guest promise
/// does (see settle_promises); rejections are marked handled so that an
/// ignored guest rejection does not become an unhandled-rejection warning.
fn make_promise(env: Env, vm: &Rc<VmState>, slot: Slot, generation: u32) -> JsResult<JsValue> {
    let mut deferred = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    // SAFETY: out-pointers to locals.
    let st = unsafe { sys::napi_create_promise(env.0, &mut deferred, &mut promise) };
    if st != sys::Status::napi_ok {
        return Err(env.throw_error("Microvium: could not create a Promise"));
    }
    let then = env.get_named(promise, "then")?;
    let noop = env.function("", Some(noop_callback), std::ptr::null_mut())?;
    env.call(then, promise, &[env.undefined(), noop])?;
    attach(env, vm, promise, slot, generation)?;
    vm.pending_promises.borrow_mut().push(crate::vm::PendingPromise { slot, generation, deferred });
    settle_promises(env, vm);
    Ok(promise)
}

unsafe extern "C" fn noop_callback(env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    Env(env).undefined()
}

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
const FORCE_GC_MIN_HOST_VALUES: usize = 64;

pub fn relieve_pressure(env: Env, vm: &Rc<VmState>) {
    if vm.status() != Status::Live || vm.is_engine_freed() {
        return;
    }
    // SAFETY: the engine is live.
    let size = unsafe { engine::glue_heap_size(vm.ctx()) };
    if size < vm.pressure_mark.get() {
        return;
    }
    let alive = |r| {
        let scope = env.open_scope();
        let a = env.ref_value(r).is_some();
        env.close_scope(scope);
        a
    };
    let many = match vm.handles.try_borrow_mut() {
        Ok(mut h) => {
            h.sweep_collected(alive);
            h.host_held() >= FORCE_GC_MIN_HOST_VALUES
        }
        Err(_) => return,
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
    }
    let ctx = vm.ctx();
    // SAFETY: the engine is live; a collection moves guest values, which the
    // handle slots track.
    if vm.engine_op(|| unsafe { engine::glue_run_gc(ctx, false) }).is_err() {
        return;
    }
    // SAFETY: as above.
    let after = unsafe { engine::glue_heap_size(ctx) };
    vm.pressure_mark.set(PRESSURE_MARK.max(after.saturating_add(PRESSURE_ROOM)));
}

/// Settles the host Promises whose guest promises have settled. Guest
/// promises change state only while guest code runs, so this runs after
/// every outermost engine call (and when a promise first comes out).
pub fn settle_promises(env: Env, vm: &Rc<VmState>) {
    if vm.pending_promises.borrow().is_empty() || !vm.is_idle() || vm.status() != Status::Live {
        return;
    }
    let pending = std::mem::take(&mut *vm.pending_promises.borrow_mut());
    let mut still = Vec::new();
    for p in pending {
        let (live, value) = {
            let mut h = vm.handles.borrow_mut();
            (h.is_live(p.slot) && h.meta(p.slot).generation == p.generation, h.get(p.slot))
        };
        if !live {
            continue;
        }
        let mut out = engine::UNDEFINED;
        // SAFETY: ctx is live (status checked above).
        let state = unsafe { engine::glue_promise_state(vm.ctx(), value, &mut out) };
        if state != 1 && state != 2 {
            still.push(p);
            continue;
        }
        let host = match to_host(env, vm, out) {
            Ok(v) => v,
            Err(_) => env.take_exception(),
        };
        // SAFETY: the deferred is settled exactly once, here.
        unsafe {
            if state == 1 {
                sys::napi_resolve_deferred(env.0, p.deferred, host);
            } else {
                sys::napi_reject_deferred(env.0, p.deferred, host);
            }
        }
    }
    vm.pending_promises.borrow_mut().extend(still);
}

fn make_guest_function(env: Env, vm: &Rc<VmState>, slot: Slot, generation: u32) -> JsResult<JsValue> {
    let data = Box::into_raw(Box::new(Wrapped::Guest(GuestRef {
        vm: vm.clone(),
        slot,
        generation,
        host_ref: std::ptr::null_mut(),
    })));
    let f = match env.function("", Some(guest_function_callback), data as *mut c_void) {
        Ok(f) => f,
        Err(p) => {
            // SAFETY: data was never handed to Node.
            drop(unsafe { Box::from_raw(data) });
            return Err(p);
        }
    };
    wrap_box(env, vm, f, data, slot)?;
    Ok(f)
}

/// Attaches a GuestRef to a host value made by the JS layer.
fn attach(env: Env, vm: &Rc<VmState>, v: JsValue, slot: Slot, generation: u32) -> JsResult<()> {
    let data = Box::into_raw(Box::new(Wrapped::Guest(GuestRef {
        vm: vm.clone(),
        slot,
        generation,
        host_ref: std::ptr::null_mut(),
    })));
    wrap_box(env, vm, v, data, slot)
}

fn wrap_box(env: Env, vm: &Rc<VmState>, v: JsValue, data: *mut Wrapped, slot: Slot) -> JsResult<()> {
    let mut r = std::ptr::null_mut();
    // SAFETY: v is a live object or function; data is a leaked Box freed by
    // finalize_wrapped exactly once.
    let st = unsafe { sys::napi_wrap(env.0, v, data as *mut c_void, Some(finalize_wrapped), std::ptr::null_mut(), &mut r) };
    if st != sys::Status::napi_ok {
        // SAFETY: Node did not take ownership.
        drop(unsafe { Box::from_raw(data) });
        return Err(env.throw_error("Microvium: could not attach a guest value to its host value"));
    }
    // SAFETY: data is alive until finalize_wrapped, which cannot run while
    // `v` is on the stack.
    if let Wrapped::Guest(g) = unsafe { &mut *data } {
        g.host_ref = r;
    }
    let mut h = vm.handles.borrow_mut();
    h.meta(slot).host = r;
    let current = h.get(slot);
    h.remember(current, slot);
    Ok(())
}

/// Wraps the core object of a VM (used by the restore entry point).
pub fn wrap_core(env: Env, core: JsValue, vm: Rc<VmState>) -> JsResult<()> {
    let state = vm.clone();
    let data = Box::into_raw(Box::new(Wrapped::Core(vm)));
    let mut r = std::ptr::null_mut();
    // SAFETY: as in wrap_box.
    let st = unsafe { sys::napi_wrap(env.0, core, data as *mut c_void, Some(finalize_wrapped), std::ptr::null_mut(), &mut r) };
    if st != sys::Status::napi_ok {
        // SAFETY: Node did not take ownership.
        drop(unsafe { Box::from_raw(data) });
        return Err(env.throw_error("Microvium: could not attach the VM to its core object"));
    }
    state.core.set(r);
    Ok(())
}

unsafe extern "C" fn finalize_wrapped(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: data is the Box leaked in wrap_box/wrap_core, finalized once.
    let wrapped = unsafe { Box::from_raw(data as *mut Wrapped) };
    let env = Env(env);
    match *wrapped {
        Wrapped::Guest(g) => g.vm.queue_release(env, g.slot, g.generation, g.host_ref),
        Wrapped::Core(vm) => {
            // The core's weak self-reference dies with it.
            let r = vm.core.replace(std::ptr::null_mut());
            env.delete_ref(r);
        }
    }
}

/// What this addon attached to `v`, if anything.
pub fn unwrap<'a>(env: Env, v: JsValue) -> Option<&'a Wrapped> {
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: napi_unwrap only succeeds on objects this addon instance
    // wrapped, all of which carry a Box<Wrapped>.
    let st = unsafe { sys::napi_unwrap(env.0, v, &mut data) };
    if st != sys::Status::napi_ok || data.is_null() {
        return None;
    }
    // SAFETY: see above; the box lives until the object is finalized, which
    // cannot happen while `v` is reachable from the current call.
    Some(unsafe { &*(data as *const Wrapped) })
}

// ---------------------------------------------------------------------------
// Host → guest
// ---------------------------------------------------------------------------

/// Converts a host value into the guest and roots the result.
pub fn to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue) -> JsResult<Rooted<'a>> {
    let mut path = Vec::new();
    let value = to_guest_value(env, vm, v, &mut path)?;
    Ok(value)
}

fn fail(env: Env, vm: &VmState, f: Failure) -> Pending {
    throw_failure(env, vm, f)
}

fn number_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, d: f64) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    if d.fract() == 0.0 && (-8192.0..8192.0).contains(&d) && !(d == 0.0 && d.is_sign_negative()) {
        // Small integers are encoded in the value itself: no allocation.
        return Ok(Rooted::new(vm, engine::int14_encode(d as i32).expect("in range")));
    }
    let r = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    if d.fract() == 0.0 && d.abs() <= 2147483647.0 && !(d == 0.0 && d.is_sign_negative()) {
        if let Some(x) = engine::int14_encode(d as i32) {
            r.set(x);
            return Ok(r);
        }
        // SAFETY: ctx is live; out is a local written by the engine.
        vm.engine_op(|| unsafe { engine::glue_new_int32(ctx, d as i32, &mut out) })
            .map_err(|f| fail(env, vm, f))?;
    } else {
        // SAFETY: as above.
        vm.engine_op(|| unsafe { engine::glue_new_number(ctx, d, &mut out) })
            .map_err(|f| fail(env, vm, f))?;
    }
    r.set(out);
    Ok(r)
}

fn to_guest_value<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    if let Some(d) = env.try_f64(v) {
        return number_to_guest(env, vm, d);
    }
    match env.type_of(v)? {
        Type::Undefined => Ok(Rooted::new(vm, engine::UNDEFINED)),
        Type::Null => Ok(Rooted::new(vm, engine::NULL)),
        Type::Boolean => Ok(Rooted::new(vm, if env.get_bool(v)? { engine::TRUE } else { engine::FALSE })),
        Type::Number => number_to_guest(env, vm, env.get_f64(v)?),
        Type::String => {
            let mut buf = std::mem::take(&mut *vm.string_buf.borrow_mut());
            env.get_string_into(v, &mut buf)?;
            let r = Rooted::new(vm, engine::UNDEFINED);
            let mut out = engine::UNDEFINED;
            let res = vm.engine_op(|| {
                // SAFETY: buf holds buf.len() bytes; ctx is live.
                unsafe { engine::glue_new_string(ctx, buf.as_ptr() as *const _, buf.len(), &mut out) }
            });
            *vm.string_buf.borrow_mut() = buf;
            res.map_err(|f| fail(env, vm, f))?;
            r.set(out);
            Ok(r)
        }
        Type::Symbol => Err(env.throw_type_error("Cannot pass a symbol into a Microvium VM")),
        Type::BigInt => Err(env.throw_type_error("Cannot pass a bigint into a Microvium VM")),
        Type::External => Err(env.throw_type_error("Cannot pass an external value into a Microvium VM")),
        Type::Function => {
            if let Some(r) = guest_reference(env, vm, v)? {
                return Ok(r);
            }
            if let Some(id) = vm.import_id_of(env, v) {
                let r = Rooted::new(vm, engine::UNDEFINED);
                let mut out = engine::UNDEFINED;
                // SAFETY: ctx is live.
                vm.engine_op(|| unsafe { engine::glue_new_host_function(ctx, id, &mut out) }).map_err(|f| match f {
                    Failure::Error(errors::E_UNRESOLVED_IMPORT) => env.throw_type_error(&format!(
                        "Cannot pass host function (import {id}) into the Microvium VM: the snapshot does not import it"
                    )),
                    f => fail(env, vm, f),
                })?;
                r.set(out);
                return Ok(r);
            }
            Err(env.throw_type_error(
                "Cannot pass a function into a Microvium VM unless it is one of the VM's imports or came out of the VM",
            ))
        }
        Type::Object => {
            if let Some(r) = guest_reference(env, vm, v)? {
                return Ok(r);
            }
            copy_object(env, vm, v, path)
        }
    }
}

/// If `v` is a host value representing a guest value of this VM, that guest
/// value (rooted); a value from another VM is a TypeError.
fn guest_reference<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue) -> JsResult<Option<Rooted<'a>>> {
    match unwrap(env, v) {
        Some(Wrapped::Guest(g)) => {
            if !Rc::ptr_eq(&g.vm, vm) {
                return Err(env.throw_type_error("Cannot pass a value from another Microvium VM into this VM"));
            }
            let value = vm.handles.borrow().get(g.slot);
            Ok(Some(Rooted::new(vm, value)))
        }
        Some(Wrapped::Core(_)) => Err(env.throw_type_error("Cannot pass a Microvium VM object into a VM")),
        None => Ok(None),
    }
}

fn copy_object<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    if let Some(bytes) = env.uint8_bytes(v) {
        let bytes = bytes.to_vec();
        let r = Rooted::new(vm, engine::UNDEFINED);
        let mut out = engine::UNDEFINED;
        // SAFETY: bytes is a local copy; ctx is live.
        vm.engine_op(|| unsafe { engine::glue_new_uint8array(ctx, bytes.as_ptr(), bytes.len(), &mut out) })
            .map_err(|f| fail(env, vm, f))?;
        r.set(out);
        return Ok(r);
    }
    if path.iter().any(|p| env.strict_equals(*p, v)) {
        return Err(env.throw_type_error("Cannot pass a cyclic structure into a Microvium VM"));
    }
    if path.len() >= MAX_COPY_DEPTH {
        return Err(env.throw_type_error(&format!(
            "Cannot pass a structure nested more than {MAX_COPY_DEPTH} levels deep into a Microvium VM"
        )));
    }
    let is_array = env.is_array(v);
    let is_error = !is_array && env.is_error(v);
    if !is_array && !is_error {
        let classify = runtime::helper(env, Helper::Classify)?;
        let undefined = env.undefined();
        let name = env.call(classify, undefined, &[v])?;
        if env.type_of(name)? == Type::String {
            let n = env.get_string(name)?;
            return Err(env.throw_type_error(&format!("Cannot pass a {n} into a Microvium VM")));
        }
    }
    path.push(v);
    let result = if is_array { copy_array(env, vm, v, path) } else { copy_plain(env, vm, v, path, is_error) };
    path.pop();
    result
}

fn copy_array<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    let len = env.array_length(v)?;
    if len > 8191 {
        return Err(env.throw_range_error(&format!("Cannot pass an array of length {len} into a Microvium VM (at most 8191)")));
    }
    let arr = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    // SAFETY: ctx is live.
    vm.engine_op(|| unsafe { engine::glue_new_array(ctx, len as u16, &mut out) }).map_err(|f| fail(env, vm, f))?;
    arr.set(out);
    for i in 0..len {
        let _iteration = TempScope::new(vm);
        let item = env.get_element(v, i)?;
        let value = to_guest_value(env, vm, item, path)?;
        let key = Rooted::new(vm, engine::int14_encode(i as i32).expect("index < 8192"));
        let (a, k, x) = (arr.raw(), key.raw(), value.raw());
        // SAFETY: the three pointers are rooted slots (no table growth
        // between taking them and the call).
        vm.engine_op(|| unsafe { engine::glue_set_property(ctx, a, k, x) }).map_err(|f| fail(env, vm, f))?;
    }
    Ok(arr)
}

fn copy_plain<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>, is_error: bool) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    let obj = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    // SAFETY: ctx is live.
    vm.engine_op(|| unsafe { engine::glue_new_object(ctx, &mut out) }).map_err(|f| fail(env, vm, f))?;
    obj.set(out);
    let keys = env.own_enumerable_string_keys(v)?;
    let n = env.array_length(keys)?;
    let mut names: Vec<JsValue> = Vec::with_capacity(n as usize + 2);
    for i in 0..n {
        names.push(env.get_element(keys, i)?);
    }
    if is_error {
        // message and name are not own enumerable properties of an Error.
        for extra in ["name", "message"] {
            let s = env.string(extra.as_bytes())?;
            if !names.iter().any(|k| env.strict_equals(*k, s)) {
                names.push(s);
            }
        }
    }
    for key in names {
        let _iteration = TempScope::new(vm);
        let item = env.get_property(v, key)?;
        if is_error && env.type_of(item)? == Type::Undefined {
            continue;
        }
        let value = to_guest_value(env, vm, item, path)?;
        let k = property_key(env, vm, key)?;
        let (o, kp, x) = (obj.raw(), k.raw(), value.raw());
        // SAFETY: rooted slots, as in copy_array.
        vm.engine_op(|| unsafe { engine::glue_set_property(ctx, o, kp, x) }).map_err(|f| fail(env, vm, f))?;
    }
    Ok(obj)
}

/// Most distinct property names a VM caches as guest keys.
const KEY_CACHE_LIMIT: usize = 1024;

/// A property key for the guest: array-index-like keys become integers,
/// everything else an interned guest string (cached per VM).
pub fn property_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<Rooted<'a>> {
    if let Some(d) = env.try_f64(key) {
        if d.fract() == 0.0 && (0.0..8192.0).contains(&d) && !(d == 0.0 && d.is_sign_negative()) {
            return Ok(Rooted::new(vm, engine::int14_encode(d as i32).expect("in range")));
        }
        let s = env.string(crate::number_format::js_number_to_string(d).as_bytes())?;
        return property_key(env, vm, s);
    }
    if env.type_of(key)? != Type::String {
        return Err(env.throw_type_error("Microvium property keys must be strings or numbers"));
    }
    let mut buf = std::mem::take(&mut *vm.string_buf.borrow_mut());
    let result = string_key(env, vm, key, &mut buf);
    *vm.string_buf.borrow_mut() = buf;
    result
}

fn string_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue, buf: &mut Vec<u8>) -> JsResult<Rooted<'a>> {
    env.get_string_into(key, buf)?;
    // The engine spells these two keys with well-known values, and treats
    // them specially only in that form (array length, the prototype).
    match &buf[..] {
        b"length" => return Ok(Rooted::new(vm, engine::STR_LENGTH)),
        b"__proto__" => return Ok(Rooted::new(vm, engine::STR_PROTO)),
        _ => {}
    }
    if !buf.is_empty() && buf.len() <= 4 && buf.iter().all(u8::is_ascii_digit) && (buf[0] != b'0' || buf.len() == 1) {
        let i: i32 = std::str::from_utf8(buf).expect("ascii").parse().expect("digits");
        if i < 8192 {
            return Ok(Rooted::new(vm, engine::int14_encode(i).expect("in range")));
        }
    }
    if let Some(&slot) = vm.key_cache.borrow().get(&buf[..]) {
        let v = vm.handles.borrow().get(slot);
        return Ok(Rooted::new(vm, v));
    }
    let ctx = vm.ctx();
    let r = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    // SAFETY: buf holds buf.len() bytes; ctx is live.
    vm.engine_op(|| unsafe { engine::glue_new_string(ctx, buf.as_ptr() as *const _, buf.len(), &mut out) })
        .map_err(|f| fail(env, vm, f))?;
    r.set(out);
    let p = r.raw();
    // SAFETY: p points into a rooted slot.
    vm.engine_op(|| unsafe { engine::glue_to_property_key(ctx, p) }).map_err(|f| fail(env, vm, f))?;
    let mut cache = vm.key_cache.borrow_mut();
    if cache.len() < KEY_CACHE_LIMIT {
        let interned = r.get();
        let slot = vm.handles.borrow_mut().alloc(ctx, interned);
        cache.insert(buf.clone().into_boxed_slice(), slot);
        vm.key_ids.borrow_mut().push(slot);
    }
    Ok(r)
}

/// The id of a property name in the VM's key cache (see keyId in api.rs),
/// or -1 if it is not cached (the cache is full, or the key is an index or
/// a well-known name, which need no cache).
pub fn key_id(env: Env, vm: &Rc<VmState>, key: JsValue) -> JsResult<i32> {
    if env.type_of(key)? != Type::String {
        return Ok(-1);
    }
    let key_value = property_key(env, vm, key)?.get();
    let ids = vm.key_ids.borrow();
    let h = vm.handles.borrow();
    Ok(ids.iter().position(|s| h.get(*s) == key_value).map(|i| i as i32).unwrap_or(-1))
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

/// Turns a failed engine call into a pending JS exception: an uncaught guest
/// exception becomes the thrown value (or the original host exception).
pub fn call_failure(env: Env, vm: &Rc<VmState>, failure: CallFailure, result: Value) -> Pending {
    match failure {
        CallFailure::Thrown(p) => p,
        CallFailure::Engine(Failure::Error(engine::E_UNCAUGHT_EXCEPTION)) => {
            if let Some(original) = vm.original_host_exception(env, result) {
                return env.throw(original);
            }
            match to_host(env, vm, result) {
                Ok(v) => env.throw(v),
                Err(p) => p,
            }
        }
        CallFailure::Engine(f) => throw_failure(env, vm, f),
    }
}

/// Calls the guest function rooted in `func_slot` with host arguments.
pub fn call_guest(env: Env, vm: &Rc<VmState>, func: Value, this: Option<JsValue>, args: &[JsValue]) -> JsResult<JsValue> {
    if args.len() > 126 {
        return Err(errors::throw(
            env,
            errors::E_TOO_MANY_ARGUMENTS,
            Some(&format!("{} arguments given; a call into the guest carries at most 126", args.len())),
        ));
    }
    let f = Rooted::new(vm, func);
    let this_rooted = match this {
        Some(t) => Some(to_guest(env, vm, t)?),
        None => None,
    };
    // The argument slots (no heap allocation on the call path).
    let mut slots = [0 as Slot; 127];
    for (i, a) in args.iter().enumerate() {
        slots[i] = to_guest(env, vm, *a)?.slot;
    }
    invoke(env, vm, &f, this_rooted.as_ref(), &slots[..args.len()])
}

/// Calls a rooted guest function with arguments rooted in `args` (slots)
/// and converts the result.
pub fn invoke(env: Env, vm: &Rc<VmState>, f: &Rooted, this: Option<&Rooted>, args: &[Slot]) -> JsResult<JsValue> {
    let ctx = vm.ctx();
    // Copy the argument values only now: nothing allocates between here and
    // the engine pushing them on its stack.
    let mut argv: [Value; 127] = [engine::UNDEFINED; 127];
    let h = vm.handles.borrow();
    for (i, a) in args.iter().enumerate() {
        argv[i] = h.get(*a);
    }
    let func = h.get(f.slot);
    let this_value = this.map(|t| h.get(t.slot));
    drop(h);
    let mut result = engine::UNDEFINED;
    let this_ptr = this_value.as_ref().map(|t| t as *const Value).unwrap_or(std::ptr::null());
    let outcome = vm.engine_call(env, || {
        // SAFETY: argv holds args.len() values; result and this are locals.
        unsafe { engine::glue_call(ctx, func, this_ptr, &mut result, argv.as_mut_ptr(), args.len() as u8) }
    });
    let converted = match outcome {
        Ok(()) => to_host(env, vm, result),
        Err(failure) => {
            if let Some(e) = vm.take_breakpoint_error(env) {
                Err(env.throw(e))
            } else if let (Status::Poisoned(code), CallFailure::Engine(_)) = (vm.status(), &failure) {
                // A fatal error during the call (perhaps in a nested call the
                // host caught): the VM is unusable.
                Err(throw_failure(env, vm, Failure::Fatal(code)))
            } else if vm.status() == Status::Disposed && !matches!(failure, CallFailure::Engine(Failure::Fatal(_))) {
                // Disposed during the call: the result cannot be read.
                Err(env.throw_error("Microvium VM was disposed during the call"))
            } else {
                Err(call_failure(env, vm, failure, result))
            }
        }
    };
    vm.clear_host_exception_if_idle(env);
    settle_promises(env, vm);
    relieve_pressure(env, vm);
    converted
}

/// Node-API callback of every host function that represents a guest
/// function (its data is the GuestRef).
unsafe extern "C" fn guest_function_callback(raw_env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let env = Env(raw_env);
    runtime::set_env(raw_env);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> JsResult<JsValue> {
        let ci = env.call_info(info)?;
        // SAFETY: data is the Box<Wrapped> given to napi_create_function, alive
        // while the function is (it is being called).
        let Wrapped::Guest(g) = (unsafe { &*(ci.data as *const Wrapped) }) else {
            return Err(env.throw_error("Microvium: bad function data"));
        };
        let vm = g.vm.clone();
        vm.check_usable(env)?;
        let _scope = TempScope::new(&vm);
        let func = vm.handles.borrow().get(g.slot);
        // `this` goes to the guest only if it is a guest value of this VM
        // (a method called through a proxy); anything else is undefined.
        // A plain call's receiver is the global object, checked first
        // because unwrapping the global proxy is a slow lookup.
        let this = if env.strict_equals(ci.this, env.global()) {
            None
        } else {
            match unwrap(env, ci.this) {
                Some(Wrapped::Guest(t)) if Rc::ptr_eq(&t.vm, &vm) => Some(ci.this),
                _ => None,
            }
        };
        call_guest(env, &vm, func, this, ci.args())
    }));
    match outcome {
        Ok(Ok(v)) => v,
        Ok(Err(Pending)) => std::ptr::null_mut(),
        Err(_) => {
            env.throw_error("@microvium/runtime: internal error (panic)");
            std::ptr::null_mut()
        }
    }
}

/// The engine's host-function callback for every import.
pub unsafe extern "C" fn host_function_trampoline(
    raw_vm: *mut c_void,
    id: u16,
    result: *mut Value,
    args: *mut Value,
    argc: u8,
) -> i32 {
    // SAFETY: the context of every VM is its GlueContext, whose host field
    // points to the VmState that an active call keeps alive.
    let vm_ptr = unsafe { (*engine::glue_get_context(raw_vm)).host as *const VmState };
    let Some(env) = runtime::current_env() else { return 14 };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: see above. Rc::increment_strong_count keeps it alive for
        // this call even if the host function drops every other owner.
        let vm = unsafe {
            Rc::increment_strong_count(vm_ptr);
            Rc::from_raw(vm_ptr)
        };
        // MVM_E_HOST_ERROR unwinds the guest (uncatchable); the host caller
        // reports why. A breakpoint callback that threw stops the guest
        // before the host function at the breakpoint runs.
        if vm.status() != Status::Live || vm.has_breakpoint_error() {
            return 14;
        }
        let scope = env.open_scope();
        let code = {
            let _temps = TempScope::new(&vm);
            host_call(env, &vm, id, result, args, argc)
        };
        relieve_pressure(env, &vm);
        env.close_scope(scope);
        code
    }));
    outcome.unwrap_or(14)
}

fn host_call(env: Env, vm: &Rc<VmState>, id: u16, result: *mut Value, args: *mut Value, argc: u8) -> i32 {
    // The async protocol must start before anything else touches the engine.
    let mut async_callback = None;
    if vm.import(id).map(|i| i.is_async).unwrap_or(false) {
        let mut callback = engine::UNDEFINED;
        // SAFETY: called first thing in the host function, as the engine
        // requires; result is the engine's result slot.
        let code = vm.engine_op(|| unsafe { engine::glue_async_start(vm.ctx(), result, &mut callback) });
        match code {
            Ok(()) => {
                // Rooted until `resume` releases it.
                async_callback = Some(vm.handles.borrow_mut().alloc(vm.ctx(), callback));
            }
            Err(Failure::Fatal(_)) => return 14,
            // No await points in the script: an ordinary call.
            Err(Failure::Error(_)) => {}
        }
    }
    let Some(func) = vm.import_function(env, id) else {
        let _ = env.throw_error(&format!("Microvium import {id} is no longer available"));
        return throw_into_guest(env, vm, result);
    };
    let mut host_args = Vec::with_capacity(argc as usize);
    for i in 0..argc as usize {
        // SAFETY: the engine passes argc values at args; reading them does
        // not allocate, and they are re-read for each argument.
        let v = unsafe { *args.add(i) };
        match to_host(env, vm, v) {
            Ok(h) => host_args.push(h),
            Err(_) => return throw_into_guest(env, vm, result),
        }
    }
    let undefined = env.undefined();
    let call = env.call(func, undefined, &host_args);
    if let Some(slot) = async_callback {
        // The guest already has its promise; the host's outcome settles it
        // later, from the event loop, through the AwaitHost helper.
        let (ok, value) = match call {
            Ok(r) => (true, r),
            Err(_) => (false, env.take_exception()),
        };
        let awaited = runtime::helper(env, Helper::AwaitHost).and_then(|h| {
            let core = env.ref_value(vm.core.get()).ok_or_else(|| env.throw_error("Microvium VM core was collected"))?;
            env.call(h, undefined, &[core, env.int32(slot as i32), env.boolean(ok), value])
        });
        if awaited.is_err() {
            let _ = env.take_exception();
            vm.handles.borrow_mut().release(slot);
        }
        return 0;
    }
    let returned = match call {
        Ok(r) => r,
        Err(_) => return throw_into_guest(env, vm, result),
    };
    if vm.status() != Status::Live {
        return 14;
    }
    match to_guest(env, vm, returned) {
        Ok(r) => {
            // SAFETY: result points to the engine's GC-reachable result slot.
            unsafe { *result = r.get() };
            0
        }
        Err(_) => throw_into_guest(env, vm, result),
    }
}

/// Moves the pending JS exception into the guest as a thrown value.
fn throw_into_guest(env: Env, vm: &Rc<VmState>, result: *mut Value) -> i32 {
    let exception = env.take_exception();
    if vm.status() != Status::Live {
        // Put it back so that the host caller sees it.
        env.throw(exception);
        return 14;
    }
    let copy = match to_guest(env, vm, exception) {
        Ok(r) => r,
        Err(_) => {
            // The exception itself cannot cross (a symbol, say): the guest
            // gets a message instead; the host caller still gets the original.
            let _ = env.take_exception();
            let message = "a host function threw a value that cannot be passed into the VM";
            match env.string(message.as_bytes()).and_then(|s| to_guest(env, vm, s)) {
                Ok(r) => r,
                Err(_) => {
                    let _ = env.take_exception();
                    Rooted::new(vm, engine::UNDEFINED)
                }
            }
        }
    };
    let value = copy.get();
    // SAFETY: as in host_call.
    unsafe { *result = value };
    // Keep the copy rooted in the stash so it can be matched later.
    let slot = vm.handles.borrow_mut().alloc(vm.ctx(), value);
    vm.stash_host_exception(env, exception, slot);
    engine::E_UNCAUGHT_EXCEPTION
}
