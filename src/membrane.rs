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
//!
//! Related files: roots.rs (temporary roots), keys.rs (property names),
//! calls.rs (calls both ways), promises.rs, pressure.rs.

use crate::engine::{self, kind, Failure, Value};
use crate::errors;
use crate::handles::Slot;
use crate::js::{Env, JsResult, JsValue, Pending, Type};
use crate::runtime::{self, Helper};
use crate::vm::{VmState, Wrapped};
use napi::sys;
use std::ffi::c_void;
use std::rc::Rc;
use crate::keys::property_key;
use crate::roots::{Rooted, TempScope};

/// Deepest nesting of host objects/arrays copied into the guest. The guest
/// heap is 64 kB, so deeper structures cannot fit anyway; the limit keeps the
/// recursive copy far from the native stack's end.
pub const MAX_COPY_DEPTH: usize = 64;

/// Largest host array and object copied into the guest (engine allocation
/// limits; see copy_array and copy_plain).
pub const MAX_ARRAY_ITEMS: u32 = 2047;
pub const MAX_OBJECT_PROPERTIES: usize = 1000;

pub fn throw_failure(env: Env, vm: &VmState, f: Failure) -> Pending {
    match f {
        Failure::Error(e) => errors::throw(env, e, None),
        Failure::Fatal(e) => errors::throw_fatal(env, e, vm.fatal_reason()),
        Failure::Unusable => match vm.check_usable(env) {
            Err(p) => p,
            Ok(()) => env.throw_error("Microvium VM is not usable"),
        },
    }
}

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
        kind::NUMBER => {
            // SAFETY: value is a number of this engine.
            let n = unsafe { engine::glue_to_float64(ctx, value) };
            match vm.take_inspection_fatal() {
                Some(code) => Err(throw_failure(env, vm, Failure::Fatal(code))),
                None => Ok(env.double(n)),
            }
        }
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
        _ => match vm.take_inspection_fatal() {
            Some(code) => Err(throw_failure(env, vm, Failure::Fatal(code))),
            None => Err(env.throw_type_error("Microvium guest value of an unsupported type (symbol or bigint)")),
        },
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
    if slot as usize >= crate::handles::MAX_HOST_SLOTS {
        let mut h = vm.handles.borrow_mut();
        if h.meta(slot).host.is_null() {
            let r = h.release(slot);
            drop(h);
            env.delete_ref(r);
        }
        return Err(env.throw_error("Microvium: too many guest values held by the host"));
    }
    // A new host value. The slot's previous one (if any) was collected but
    // not swept yet: its reference goes now.
    let (generation, old) = vm.handles.borrow_mut().begin_host_value(slot);
    env.delete_ref(old);
    let made = match k {
        kind::PROMISE => crate::promises::make_promise(env, vm, slot, generation),
        _ => make_value(env, vm, slot, k, generation),
    };
    match made {
        Ok(v) => {
            if k != kind::PROMISE {
                vm.note_made(slot, generation);
            }
            Ok(v)
        }
        Err(p) => {
            let mut h = vm.handles.borrow_mut();
            if h.meta(slot).host.is_null() {
                let r = h.release(slot);
                drop(h);
                env.delete_ref(r);
            }
            Err(p)
        }
    }
}

/// Proxies, classes, Uint8Arrays and functions are made by the JS layer
/// (plain JavaScript objects and closures: nothing native per value that
/// would wait for a finalizer).
fn make_value(env: Env, vm: &Rc<VmState>, slot: Slot, k: i32, generation: u32) -> JsResult<JsValue> {
    let factory = runtime::helper(env, Helper::MakeValue)?;
    let core = env.ref_value(vm.core.get()).ok_or_else(|| env.throw_error("Microvium VM core was collected"))?;
    let undefined = env.undefined();
    let id = env.double(crate::handles::host_id(slot, generation));
    let v = env.call(factory, undefined, &[env.int32(k), core, id])?;
    attach(env, vm, v, slot, generation)?;
    Ok(v)
}

/// Marks `v` as the host value of the guest value in `slot` and records a
/// weak reference to it. Neither has a finalizer: the wrap (an integer, not
/// an allocation) goes with `v` when V8 collects it, and the reference is
/// deleted when the slot is swept or released (see handles.rs).
pub fn attach(env: Env, vm: &Rc<VmState>, v: JsValue, slot: Slot, _generation: u32) -> JsResult<()> {
    let tag = guest_tag(vm.serial, slot);
    // SAFETY: v is a live object or function made for this slot and never
    // wrapped before; the data is an integer (odd, so never mistaken for a
    // Box pointer, see unwrap), with no finalizer and no reference returned.
    let st = unsafe { sys::napi_wrap(env.0, v, tag as *mut c_void, None, std::ptr::null_mut(), std::ptr::null_mut()) };
    if st != sys::Status::napi_ok {
        return Err(env.throw_error("Microvium: could not attach a guest value to its host value"));
    }
    let r = env.new_ref(v, 0)?;
    let mut h = vm.handles.borrow_mut();
    h.set_host(slot, r);
    let current = h.get(slot);
    h.remember(current, slot);
    Ok(())
}

/// Wrap data of a host value: (VM serial, slot), odd.
fn guest_tag(serial: u32, slot: Slot) -> usize {
    const _: () = assert!(usize::BITS == 64, "guest tags pack a VM serial and a slot into a pointer-sized integer");
    ((serial as usize) << 33) | ((slot as usize) << 1) | 1
}

/// Wraps the core object of a VM (used by the restore entry point).
pub fn wrap_core(env: Env, core: JsValue, vm: Rc<VmState>) -> JsResult<()> {
    let state = vm.clone();
    let data = Box::into_raw(Box::new(Wrapped::Core(vm)));
    let mut r = std::ptr::null_mut();
    // SAFETY: v is a live object; data is a leaked Box freed by
    // finalize_wrapped exactly once.
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
    // SAFETY: data is the Box leaked in wrap_core, finalized once.
    let wrapped = unsafe { Box::from_raw(data as *mut Wrapped) };
    // At environment teardown our cleanup hook has already cleared the
    // thread's env; the last owner of a VM may be dropped here, and its
    // Drop deletes the VM's references through the thread's env.
    let teardown = runtime::current_env().is_none();
    if teardown {
        runtime::set_env(env);
    }
    let env = Env(env);
    let Wrapped::Core(vm) = *wrapped;
    // The core's weak self-reference dies with it.
    let r = vm.core.replace(std::ptr::null_mut());
    env.delete_ref(r);
    if teardown {
        runtime::set_env(std::ptr::null_mut());
    }
}

fn wrap_data(env: Env, v: JsValue) -> Option<usize> {
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: napi_unwrap only succeeds on objects this addon instance
    // wrapped.
    let st = unsafe { sys::napi_unwrap(env.0, v, &mut data) };
    if st != sys::Status::napi_ok || data.is_null() {
        return None;
    }
    Some(data as usize)
}

/// What this addon attached to `v` if it is a VM's core object (a Box).
/// Host values of guest values carry an integer instead: see unwrap_value
/// (named apart from the old `unwrap`, which meant "any value of ours").
pub fn unwrap_core<'a>(env: Env, v: JsValue) -> Option<&'a Wrapped> {
    let data = wrap_data(env, v)?;
    if data & 1 == 1 {
        return None;
    }
    // SAFETY: even wrap data is always a Box<Wrapped> made by wrap_core; the
    // box lives until the object is finalized, which cannot happen while `v`
    // is reachable from the current call.
    Some(unsafe { &*(data as *const Wrapped) })
}

/// What a host value made by this addon stands for.
pub enum Unwrapped {
    Core,
    /// A guest value: the serial of its VM and its slot there. The slot is
    /// only a claim: `guest_slot` checks it.
    Guest { serial: u32, slot: Slot },
}

pub fn unwrap_value(env: Env, v: JsValue) -> Option<Unwrapped> {
    let data = wrap_data(env, v)?;
    if data & 1 == 1 {
        return Some(Unwrapped::Guest { serial: (data >> 33) as u32, slot: ((data >> 1) & 0xFFFF_FFFF) as Slot });
    }
    Some(Unwrapped::Core)
}

/// How a host value relates to `vm`.
pub enum Belongs {
    /// A guest value of this VM, in this slot.
    Here(Slot),
    /// Was a guest value of this VM, released since (vm.release, vm.scope).
    Released,
    /// A guest value of another VM.
    Elsewhere,
    Core,
    NotGuest,
}

/// Whether `v` is (still) the host value of a guest value of `vm`. Exact:
/// the slot's own reference must be `v`, so a released value never reaches
/// whatever reuses its slot.
pub fn belongs(env: Env, vm: &VmState, v: JsValue) -> Belongs {
    match unwrap_value(env, v) {
        None => Belongs::NotGuest,
        Some(Unwrapped::Core) => Belongs::Core,
        Some(Unwrapped::Guest { serial, .. }) if serial != vm.serial => Belongs::Elsewhere,
        Some(Unwrapped::Guest { slot, .. }) => {
            let host = {
                let h = vm.handles.borrow();
                if !h.is_live(slot) {
                    return Belongs::Released;
                }
                h.meta_ref(slot).host
            };
            match (!host.is_null()).then(|| env.ref_value(host)).flatten() {
                Some(current) if env.strict_equals(current, v) => Belongs::Here(slot),
                _ => Belongs::Released,
            }
        }
    }
}

/// Converts a host value into the guest and roots the result.
pub fn to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue) -> JsResult<Rooted<'a>> {
    let mut path = Vec::new();
    let value = to_guest_value(env, vm, v, &mut path)?;
    Ok(value)
}

fn fail(env: Env, vm: &VmState, f: Failure) -> Pending {
    throw_failure(env, vm, f)
}

/// A number the engine encodes in the value itself (an int14), or None.
pub fn small_int_to_guest(d: f64) -> Option<Value> {
    let as_int = d as i32;
    if as_int as f64 == d && !(as_int == 0 && d.is_sign_negative()) {
        engine::int14_encode(as_int)
    } else {
        None
    }
}

fn number_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, d: f64) -> JsResult<Rooted<'a>> {
    let ctx = vm.ctx();
    // An int32 survives the round trip through i32 (a saturating cast in
    // Rust: NaN, fractions and out-of-range numbers do not); -0 is not one.
    // Compared this way, not with fract(), which is a libm call here.
    let as_int = d as i32;
    let is_int32 = as_int as f64 == d && !(as_int == 0 && d.is_sign_negative());
    if is_int32 {
        if let Some(x) = engine::int14_encode(as_int) {
            // Small integers are encoded in the value itself: no allocation.
            return Ok(Rooted::new(vm, x));
        }
    }
    let r = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    if is_int32 {
        // SAFETY: ctx is live; out is a local written by the engine.
        vm.engine_op(|| unsafe { engine::glue_new_int32(ctx, as_int, &mut out) })
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
/// value (rooted); a value from another VM, or one released, is a TypeError.
fn guest_reference<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue) -> JsResult<Option<Rooted<'a>>> {
    match belongs(env, vm, v) {
        Belongs::Here(slot) => {
            let value = vm.handles.borrow().get(slot);
            Ok(Some(Rooted::new(vm, value)))
        }
        Belongs::Released => Err(env.throw_type_error(
            "Cannot pass a released Microvium value into the VM (it was released with vm.release or vm.scope)",
        )),
        Belongs::Elsewhere => Err(env.throw_type_error("Cannot pass a value from another Microvium VM into this VM")),
        Belongs::Core => Err(env.throw_type_error("Cannot pass a Microvium VM object into a VM")),
        Belongs::NotGuest => Ok(None),
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
    // Plain objects (prototype Object.prototype or null) are the common case
    // and need no classification through JavaScript.
    let plain = !is_array && {
        let proto = env.prototype_of(v)?;
        env.type_of(proto)? == Type::Null
            || runtime::helper(env, Helper::ObjectPrototype).map(|p| env.strict_equals(p, proto)).unwrap_or(false)
    };
    let is_error = !is_array && !plain && env.is_error(v);
    if !is_array && !plain && !is_error {
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
    // The engine stores an array's items in one allocation of at most 4095
    // bytes; a longer array is a fatal error in the engine, so it is refused
    // here, before anything is allocated.
    if len > MAX_ARRAY_ITEMS {
        return Err(errors::throw(
            env,
            errors::E_ALLOCATION_TOO_LARGE,
            Some(&format!("an array of {len} items cannot go into the VM (at most {MAX_ARRAY_ITEMS})")),
        ));
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
    // The collector compacts an object's properties into one allocation of
    // at most 4095 bytes (4 per property) and fails fatally beyond that.
    if n as usize > MAX_OBJECT_PROPERTIES {
        return Err(errors::throw(
            env,
            errors::E_ALLOCATION_TOO_LARGE,
            Some(&format!("an object with {n} properties cannot go into the VM (at most {MAX_OBJECT_PROPERTIES})")),
        ));
    }
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
        let k = property_key(env, vm, key)?;
        if k.get() == engine::STR_PROTO {
            // An own "__proto__" (JSON.parse makes them) would be the
            // object's prototype in the guest, where reading it gives the
            // prototype, not the property: it cannot be copied faithfully.
            return Err(env.throw_type_error(
                "Cannot pass an object with an own \"__proto__\" property into a Microvium VM \
                 (in the guest, __proto__ is always the prototype)",
            ));
        }
        let item = env.get_property(v, key)?;
        if is_error && env.type_of(item)? == Type::Undefined {
            continue;
        }
        let value = to_guest_value(env, vm, item, path)?;
        let (o, kp, x) = (obj.raw(), k.raw(), value.raw());
        // SAFETY: rooted slots, as in copy_array.
        vm.engine_op(|| unsafe { engine::glue_set_property(ctx, o, kp, x) }).map_err(|f| fail(env, vm, f))?;
    }
    Ok(obj)
}
