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
//! Guest promises come out as host Promises, settled when the guest ones do
//! (the second part of this file: they are host values like any other, and
//! settling one converts its outcome, so the two are mutually recursive).
//!
//! Related files: roots.rs (temporary roots), keys.rs (property names),
//! calls.rs (calls both ways), pressure.rs.

use crate::engine::{self, kind, Value};
use crate::errors::{self, throw_failure, Failure};
use crate::handles::Slot;
use crate::js::{CallInfo, Env, JsResult, JsValue, Pending, Type, Wrap};
use crate::runtime::{self, Helper};
use crate::vm::{PendingPromise, Status, VmState};
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
    // The kind, and a string's bytes with it (one call into the engine).
    let mut buf = std::mem::take(&mut *vm.string_buf.borrow_mut());
    buf.clear();
    let (k, extra, read) = vm.engine().kind_string_into(value, &mut buf);
    let string = (k == kind::STRING).then(|| match read {
        Ok(()) => env.string(&buf),
        Err(code) => Err(throw_failure(env, vm.engine_failure(code))),
    });
    *vm.string_buf.borrow_mut() = buf;
    match string {
        Some(made) => made,
        None => to_host_kind(env, vm, value, k, extra),
    }
}

/// to_host for a value of kind `k` that is not a string.
fn to_host_kind(env: Env, vm: &Rc<VmState>, value: Value, k: i32, extra: u16) -> JsResult<JsValue> {
    match k {
        kind::UNDEFINED => Ok(env.undefined()),
        kind::NULL => Ok(env.null()),
        kind::BOOLEAN => Ok(env.boolean(extra != 0)),
        kind::NUMBER => {
            let n = vm.engine().to_float64(value);
            match vm.take_inspection_fatal() {
                Some(code) => Err(throw_failure(env, vm.fatal_failure(code))),
                None => Ok(env.double(n)),
            }
        }
        kind::HOST_FUNCTION => match vm.import_function(env, extra) {
            Some(f) => Ok(f),
            None => Err(env.throw_error(&format!("Microvium guest returned host function {extra}, which is not available"))),
        },
        kind::FUNCTION | kind::OBJECT | kind::ARRAY | kind::FIXED_ARRAY | kind::UINT8_ARRAY | kind::CLASS
        | kind::PROMISE => reference_to_host(env, vm, value, k),
        _ => match vm.take_inspection_fatal() {
            Some(code) => Err(throw_failure(env, vm.fatal_failure(code))),
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
            None => (h.alloc(vm.engine(), value), None),
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
        kind::PROMISE => make_promise(env, vm, slot, generation),
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
    if env.wrap_tag(v, guest_tag(vm.serial, slot)).is_err() {
        let _ = env.take_exception();
        return Err(env.throw_error("Microvium: could not attach a guest value to its host value"));
    }
    let r = env.new_ref(v, 0)?;
    let mut h = vm.handles.borrow_mut();
    h.set_host(slot, r);
    let current = h.get(slot);
    h.remember(current, slot);
    Ok(())
}

/// Wrap tag of a host value: (VM serial, slot), odd (see js::Env::wrap_tag).
fn guest_tag(serial: u32, slot: Slot) -> usize {
    const _: () = assert!(usize::BITS == 64, "guest tags pack a VM serial and a slot into a pointer-sized integer");
    ((serial as usize) << 33) | ((slot as usize) << 1) | 1
}

/// Makes `core` (the JS layer's per-VM object) the owner of the VM (used by
/// the restore entry point).
pub fn wrap_core(env: Env, core: JsValue, vm: Rc<VmState>) -> JsResult<()> {
    let state = vm.clone();
    match env.wrap_owned(core, vm, finalize_core) {
        Ok(r) => {
            state.core.set(r);
            Ok(())
        }
        Err(_) => {
            let _ = env.take_exception();
            Err(env.throw_error("Microvium: could not attach the VM to its core object"))
        }
    }
}

/// The core object was collected: its share of the VM goes (the last share
/// frees the engine, see VmState's Drop).
fn finalize_core(env: Env, vm: Rc<VmState>) {
    // The core's weak self-reference dies with it.
    let r = vm.core.replace(std::ptr::null_mut());
    env.delete_ref(r);
}

/// The VM whose core object `v` is, if it is one.
pub fn unwrap_core(env: Env, v: JsValue) -> Option<Rc<VmState>> {
    env.with_owned(v, |vm: &Rc<VmState>| vm.clone())
}

/// What a host value made by this addon stands for.
pub enum Unwrapped {
    Core,
    /// A guest value: the serial of its VM and its slot there. The slot is
    /// only a claim: `belongs` checks it.
    Guest { serial: u32, slot: Slot },
}

pub fn unwrap_value(env: Env, v: JsValue) -> Option<Unwrapped> {
    Some(match env.unwrap(v)? {
        Wrap::Tag(data) => Unwrapped::Guest { serial: (data >> 33) as u32, slot: ((data >> 1) & 0xFFFF_FFFF) as Slot },
        Wrap::Owned => Unwrapped::Core,
    })
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

fn fail(env: Env, f: Failure) -> Pending {
    throw_failure(env, f)
}

/// The number as an int32, if it is one. An int32 survives the round trip
/// through i32 (a saturating cast in Rust: NaN, fractions and out-of-range
/// numbers do not); -0 is not one. Compared this way, not with fract(),
/// which is a libm call here.
fn as_int32(d: f64) -> Option<i32> {
    let i = d as i32;
    (i as f64 == d && !(i == 0 && d.is_sign_negative())).then_some(i)
}

/// A number the engine encodes in the value itself (an int14), or None.
#[inline]
pub fn small_int_to_guest(d: f64) -> Option<Value> {
    // The range first (NaN fails it), so the conversion needs no
    // saturation: this is on every call and crossing.
    if !(-8192.0..8192.0).contains(&d) {
        return None;
    }
    // SAFETY: d is finite and within i32's range (checked above).
    let i = unsafe { d.to_int_unchecked::<i32>() };
    (i as f64 == d && !(i == 0 && d.is_sign_negative())).then(|| engine::int14_encode(i)).flatten()
}

pub fn number_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, d: f64) -> JsResult<Rooted<'a>> {
    let int = as_int32(d);
    if let Some(x) = int.and_then(engine::int14_encode) {
        // Small integers are encoded in the value itself: no allocation.
        return Ok(Rooted::new(vm, x));
    }
    let r = Rooted::new(vm, engine::UNDEFINED);
    let out = match int {
        Some(i) => vm.engine_op(|e| e.new_int32(i)),
        None => vm.engine_op(|e| e.new_number(d)),
    }
    .map_err(|f| fail(env, f))?;
    r.set(out);
    Ok(r)
}

/// A host value known not to be a number (see to_guest), into the guest.
/// `ty` is the value's type (see js::Type), which the caller already knows.
pub fn non_number_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, ty: Type) -> JsResult<Rooted<'a>> {
    typed_to_guest(env, vm, v, ty, &mut Vec::new())
}

/// Whether converting a value of this type into the guest may run host
/// code (a getter, a proxy trap): only objects and functions.
pub fn conversion_runs_host_code(ty: Type) -> bool {
    matches!(ty, Type::Object | Type::Function)
}

fn to_guest_value<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    if let Some(d) = env.try_f64(v) {
        return number_to_guest(env, vm, d);
    }
    other_to_guest(env, vm, v, path)
}

fn other_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    typed_to_guest(env, vm, v, env.type_of(v)?, path)
}

/// The host string `v` as a new guest string, and whether the guest string
/// is the whole of it (false when a lone surrogate became U+FFFD).
pub fn string_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue) -> JsResult<(Rooted<'a>, bool)> {
    let mut buf = std::mem::take(&mut *vm.string_buf.borrow_mut());
    let whole = env.get_string_into(v, &mut buf);
    let r = Rooted::new(vm, engine::UNDEFINED);
    let res = whole.is_ok().then(|| vm.engine_op(|e| e.new_string(&buf)));
    *vm.string_buf.borrow_mut() = buf;
    let whole = whole?;
    r.set(res.expect("made when the string was read").map_err(|f| fail(env, f))?);
    Ok((r, whole))
}

fn typed_to_guest<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, ty: Type, path: &mut Vec<JsValue>) -> JsResult<Rooted<'a>> {
    match ty {
        Type::Undefined => Ok(Rooted::new(vm, engine::UNDEFINED)),
        Type::Null => Ok(Rooted::new(vm, engine::NULL)),
        Type::Boolean => Ok(Rooted::new(vm, if env.get_bool(v)? { engine::TRUE } else { engine::FALSE })),
        Type::Number => number_to_guest(env, vm, env.get_f64(v)?),
        Type::String => string_to_guest(env, vm, v).map(|(r, _)| r),
        Type::Symbol => Err(env.throw_type_error("Cannot pass a symbol into a Microvium VM")),
        Type::BigInt => Err(env.throw_type_error("Cannot pass a bigint into a Microvium VM")),
        Type::External => Err(env.throw_type_error("Cannot pass an external value into a Microvium VM")),
        Type::Function => {
            if let Some(r) = guest_reference(env, vm, v)? {
                return Ok(r);
            }
            if let Some(id) = vm.import_id_of(env, v) {
                let r = Rooted::new(vm, engine::UNDEFINED);
                let out = vm.engine_op(|e| e.new_host_function(id)).map_err(|f| match f {
                    Failure::Error(errors::E_UNRESOLVED_IMPORT) => env.throw_type_error(&format!(
                        "Cannot pass host function (import {id}) into the Microvium VM: the snapshot does not import it"
                    )),
                    f => fail(env, f),
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
    if let Some(bytes) = env.uint8_bytes(v) {
        let r = Rooted::new(vm, engine::UNDEFINED);
        r.set(vm.engine_op(|e| e.new_uint8array(&bytes)).map_err(|f| fail(env, f))?);
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
    arr.set(vm.engine_op(|e| e.new_array(len as u16)).map_err(|f| fail(env, f))?);
    for i in 0..len {
        let _iteration = TempScope::new(vm);
        let item = env.get_element(v, i)?;
        let value = to_guest_value(env, vm, item, path)?;
        let key = Rooted::new(vm, engine::int14_encode(i as i32).expect("index < 8192"));
        vm.engine_op(|e| e.set_property(arr.root(), key.root(), value.root())).map_err(|f| fail(env, f))?;
    }
    Ok(arr)
}

fn copy_plain<'a>(env: Env, vm: &'a Rc<VmState>, v: JsValue, path: &mut Vec<JsValue>, is_error: bool) -> JsResult<Rooted<'a>> {
    let obj = Rooted::new(vm, engine::UNDEFINED);
    obj.set(vm.engine_op(|e| e.new_object()).map_err(|f| fail(env, f))?);
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
        vm.engine_op(|e| e.set_property(obj.root(), k.root(), value.root())).map_err(|f| fail(env, f))?;
    }
    Ok(obj)
}

// ---- Guest promises as host Promises -------------------------------------
//
//
// Every host Promise for a guest promise settles: when the guest promise
// does (checked after every outermost engine call), or, rejected, when its
// VM hits a fatal error or is disposed first.
//
// Lifetime. A pending Promise lives as long as its guest could settle it:
// the VM's core object holds it (core.pending, lib/async.js) until it
// settles, so `await vm.exports[1]()`, which holds no reference to the
// Promise, resumes even when a collection runs while the guest awaits an
// async import. Those are JavaScript references only, so V8 sees the whole
// cycle (core -> Promise -> its reactions -> whatever they hold, the VM
// perhaps) and a VM dropped with pending promises is still collected: the
// native side holds the Promise weakly (`PendingPromise::promise`), and the
// Promise itself holds nothing of its VM (like every host value, it carries
// only an integer wrap, see membrane::attach). A guest promise that never
// settles stays in memory as long as its VM, as a JavaScript promise does
// while its resolving functions are held.
// A Promise the host holds, whose VM is collected, stays pending: only guest
// code could settle it, and nothing can run this VM's guest code any more.
// It is not rejected then: the moment would be the collector's choice, and
// a `.then` derived from it without a rejection handler would turn that
// into an unhandled rejection (which ends the process by default).

/// A host Promise for a guest promise (rooted in `slot`). Rejections are
/// marked handled so that an ignored guest rejection does not become an
/// unhandled-rejection warning.
pub fn make_promise(env: Env, vm: &Rc<VmState>, slot: Slot, generation: u32) -> JsResult<JsValue> {
    let new_promise = runtime::helper(env, Helper::NewPromise)?;
    // Held by the core while pending (see lib/async.js).
    let core = env.ref_value(vm.core.get()).unwrap_or_else(|| env.undefined());
    let promise = env.call(new_promise, env.undefined(), &[core])?;
    let weak = env.new_ref(promise, 0)?;
    if let Err(p) = wrap_promise(env, vm, promise, slot, generation) {
        env.delete_ref(weak);
        return Err(p);
    }
    vm.pending_promises.borrow_mut().push(PendingPromise { slot, generation, promise: weak });
    settle_promises(env, vm);
    Ok(promise)
}

/// Attaches the guest promise to its host Promise (for identity, and so
/// that the Promise goes back into the guest as the guest promise), as for
/// every host value: no finalizer, nothing that holds the VM.
fn wrap_promise(env: Env, vm: &Rc<VmState>, promise: JsValue, slot: Slot, generation: u32) -> JsResult<()> {
    attach(env, vm, promise, slot, generation)
}

/// Gives a promise a rejection handler that does nothing, so that Node does
/// not report its rejection as unhandled (for promises whose outcome is
/// reported some other way).
pub fn mark_handled(env: Env, promise: JsValue) -> JsResult<()> {
    let then = env.get_named(promise, "then")?;
    let noop = env.function("", noop)?;
    env.call(then, promise, &[env.undefined(), noop])?;
    Ok(())
}

fn noop(env: Env, _ci: &CallInfo) -> JsResult<JsValue> {
    Ok(env.undefined())
}

/// Settles the host Promises whose guest promises have settled. Guest
/// promises change state only while guest code runs, so this runs after
/// every outermost engine call (and when a promise first comes out), also
/// one that failed: the exception it leaves pending is kept (Node-API calls
/// fail while one is pending, which left such promises pending forever).
pub fn settle_promises(env: Env, vm: &Rc<VmState>) {
    if vm.pending_promises.borrow().is_empty() || !vm.is_idle() {
        return;
    }
    if vm.status() != Status::Live {
        vm.reject_pending_promises(env);
        return;
    }
    let saved = if env.is_exception_pending() { Some(env.take_exception()) } else { None };
    settle_settled(env, vm);
    if let Some(e) = saved {
        env.throw(e);
    }
}

fn settle_settled(env: Env, vm: &Rc<VmState>) {
    let pending = std::mem::take(&mut *vm.pending_promises.borrow_mut());
    let mut still = Vec::new();
    for p in pending {
        // Settling runs JavaScript (reading `then` of a guest object, say),
        // which may end the VM; the rest are then rejected below.
        if vm.status() != Status::Live {
            still.push(p);
            continue;
        }
        let (live, value) = {
            let mut h = vm.handles.borrow_mut();
            (h.is_live(p.slot) && h.meta(p.slot).generation == p.generation, h.get(p.slot))
        };
        if !live {
            // The Promise was collected (and its slot released).
            env.delete_ref(p.promise);
            continue;
        }
        let (state, out) = vm.engine().promise_state(value);
        if state != 1 && state != 2 {
            // Pending (or a fatal error, which poisons the VM here).
            vm.take_inspection_fatal();
            still.push(p);
            continue;
        }
        let promise = env.ref_value(p.promise);
        env.delete_ref(p.promise);
        let Some(promise) = promise else { continue };
        let original = if state == 2 { vm.take_async_rejection(env, out) } else { None };
        let (ok, host) = match original {
            Some(v) => (false, v),
            None => match to_host(env, vm, out) {
                Ok(v) => (state == 1, v),
                // The outcome cannot come out (the VM failed meanwhile, say):
                // the Promise rejects with why.
                Err(_) => (false, env.take_exception()),
            },
        };
        runtime::settle_promise(env, promise, ok, host, env.ref_value(vm.core.get()));
    }
    vm.pending_promises.borrow_mut().extend(still);
    if vm.status() != Status::Live {
        vm.reject_pending_promises(env);
    }
}
