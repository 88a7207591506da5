//! The native functions the JS layer (lib/) calls. Each takes the VM's core
//! object first; guest values are addressed by their handle slot, which the
//! JS layer got from the proxy factory.

use crate::engine::{self, kind, Value};
use crate::errors;
use crate::handles;
use crate::js::{CallInfo, Env, JsResult, JsValue, Pending, Type};
use crate::calls;
use crate::keys::{self, property_key};
use crate::membrane::{self, to_guest, to_host};
use crate::roots::{Rooted, TempScope};
use crate::runtime;
use crate::snapshot;
use crate::vm::{self, VmState, Wrapped};
use napi::sys;
use std::rc::Rc;

type Body = fn(Env, &CallInfo) -> JsResult<JsValue>;

/// Common entry of every native function: records the env, catches panics
/// (a panic must never unwind into Node), maps errors to a pending exception.
fn entry(raw_env: sys::napi_env, info: sys::napi_callback_info, body: Body) -> sys::napi_value {
    runtime::set_env(raw_env);
    let env = Env(raw_env);
    let outcome = std::panic::catch_unwind(|| -> JsResult<JsValue> {
        let ci = env.call_info(info)?;
        body(env, &ci)
    });
    match outcome {
        Ok(Ok(v)) => v,
        Ok(Err(Pending)) => std::ptr::null_mut(),
        Err(_) => {
            if !env.is_exception_pending() {
                env.throw_error("@microvium/runtime: internal error (panic)");
            }
            std::ptr::null_mut()
        }
    }
}

macro_rules! native {
    ($($name:ident => $body:path),* $(,)?) => {
        $(
            // Named as the JS layer calls them.
            #[allow(non_snake_case)]
            unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                entry(env, info, $body)
            }
        )*
        pub const FUNCTIONS: &[(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value)] = &[
            $((stringify!($name), $name)),*
        ];
    };
}

native! {
    init => init_impl,
    resume => resume_impl,
    restore => restore_impl,
    exportIds => export_ids_impl,
    getExport => get_export_impl,
    requiredEngineVersion => required_version_impl,
    get => get_impl,
    set => set_impl,
    keyId => keys::key_id_impl,
    getk => getk_impl,
    setk => setk_impl,
    has => keys::has_impl,
    getOwn => keys::get_own_impl,
    keyCacheStats => keys::stats_impl,
    clearKeyCache => keys::clear_impl,
    ownKeys => own_keys_impl,
    length => length_impl,
    proto => proto_impl,
    construct => construct_impl,
    u8Slice => u8_slice_impl,
    u8Set => u8_set_impl,
    u8Length => u8_length_impl,
    createSnapshot => create_snapshot_impl,
    runGC => run_gc_impl,
    memoryStats => memory_stats_impl,
    stopAfter => stop_after_impl,
    remaining => remaining_impl,
    setBreakpoint => set_breakpoint_impl,
    removeBreakpoint => remove_breakpoint_impl,
    setBreakpointCallback => set_breakpoint_callback_impl,
    currentAddress => current_address_impl,
    dispose => dispose_impl,
    status => status_impl,
    liveHandles => live_handles_impl,
    faultNetSelfTest => fault_net_self_test_impl,
    callArgs => call_args_impl,
    makeCaller => make_caller_impl,
    makeReader => make_reader_impl,
    release => release_impl,
    pin => pin_impl,
    scopeEnter => scope_enter_impl,
    scopeExit => scope_exit_impl,
    setCollector => set_collector_impl,
    hostHeld => host_held_impl,
    reportedMemory => reported_memory_impl,
}

fn arg(env: Env, ci: &CallInfo, i: usize) -> JsValue {
    ci.args().get(i).copied().unwrap_or_else(|| env.undefined())
}

/// The VM behind a core object, checked usable from this thread.
pub(crate) fn core(env: Env, ci: &CallInfo) -> JsResult<Rc<VmState>> {
    let vm = core_any(env, ci)?;
    vm.check_usable(env)?;
    Ok(vm)
}

/// The VM behind a core object, in any state.
pub(crate) fn core_any(env: Env, ci: &CallInfo) -> JsResult<Rc<VmState>> {
    match membrane::unwrap_core(env, arg(env, ci, 0)) {
        Some(Wrapped::Core(vm)) => Ok(vm.clone()),
        _ => Err(env.throw_type_error("Microvium: expected a VM")),
    }
}

/// The slot of a host value's id (see handles::host_id), checked current:
/// a released value's id no longer matches its slot.
pub(crate) fn slot_arg(env: Env, ci: &CallInfo, vm: &VmState, i: usize) -> JsResult<u32> {
    let Some((s, generation)) = handles::split_id(env.get_f64(arg(env, ci, i))?) else {
        return Err(env.throw_error("Microvium: stale guest value"));
    };
    if !vm.handles.borrow().is_current(s, generation) {
        if generation != 0 {
            return Err(env.throw_error(RELEASED));
        }
        return Err(env.throw_error("Microvium: stale guest value"));
    }
    Ok(s)
}

const RELEASED: &str = "Microvium value was released (vm.release or vm.scope) and can no longer be used";

fn int_arg(env: Env, ci: &CallInfo, i: usize) -> JsResult<f64> {
    let v = arg(env, ci, i);
    if env.type_of(v)? != Type::Number {
        return Err(env.throw_type_error("Microvium: expected a number"));
    }
    env.get_f64(v)
}

/// For the tests: whether the fault net (c/fault_net.c) is installed, and
/// if so, that it turns a fault in engine code into a fatal-error code
/// (returned) instead of ending the process. Not part of the public API.
fn fault_net_self_test_impl(env: Env, _ci: &CallInfo) -> JsResult<JsValue> {
    // SAFETY: reads the process's SIGSEGV disposition.
    if !unsafe { engine::glue_fault_net_installed() } {
        return Ok(env.null());
    }
    // SAFETY: the read faults inside a boundary with the net installed,
    // which longjmps back to the boundary in the same C function.
    Ok(env.int32(unsafe { engine::glue_fault_net_self_test() }))
}

fn init_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    runtime::set_helpers(env, std::array::from_fn(|i| arg(env, ci, i)))?;
    Ok(env.undefined())
}

/// restore(core, bytes: Uint8Array, importIds: number[], importFns:
/// Function[], importIsAsync: boolean[])
fn restore_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let core = arg(env, ci, 0);
    let bytes = env
        .uint8_bytes(arg(env, ci, 1))
        .ok_or_else(|| env.throw_type_error("Microvium snapshot must be a Uint8Array"))?
        .to_vec();
    let info = match snapshot::validate(&bytes) {
        Ok(i) => i,
        Err(snapshot::Invalid(errno, detail)) if errno == errors::E_WRONG_BYTECODE_VERSION => {
            // Worded as the WebAssembly runtime words it.
            let message = format!(
                "Bytecode is targeting a different engine version. Engine version is {} but bytecode requires ^{}.",
                snapshot::ENGINE_VERSION,
                snapshot::required_version(&bytes)
            );
            return Err(errors::throw_with_message(env, errno, &message, Some(&detail)));
        }
        Err(snapshot::Invalid(errno, detail)) => return Err(errors::throw(env, errno, Some(&detail))),
    };
    let ids = arg(env, ci, 2);
    let fns = arg(env, ci, 3);
    let asyncs = arg(env, ci, 4);
    let n = env.array_length(ids)?;
    let mut imports = Vec::with_capacity(n as usize);
    for i in 0..n {
        let id = env.get_f64(env.get_element(ids, i)?)? as u16;
        let is_async = env.get_bool(env.get_element(asyncs, i)?)?;
        imports.push((id, env.get_element(fns, i)?, is_async));
    }
    let state = vm::restore(env, &bytes, imports, info)?;
    membrane::wrap_core(env, core, state)?;
    Ok(env.undefined())
}

/// resume(core, callbackSlot, ok, value): settles a guest await on an async
/// import by calling the engine's continuation callback (then releases it).
fn resume_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    let callback = vm.handles.borrow().get(slot);
    vm.handles.borrow_mut().release(slot);
    let callback = Rooted::new(&vm, callback);
    let ok = env.get_bool(arg(env, ci, 2))?;
    let outcome = arg(env, ci, 3);
    let (ok, value) = match to_guest(env, &vm, outcome) {
        Ok(value) => {
            let is_host_object = matches!(env.type_of(outcome)?, Type::Object | Type::Function)
                && membrane::unwrap_value(env, outcome).is_none();
            if !ok && is_host_object {
                // If the guest does not catch the rejection, the host Promise
                // of the guest's async function rejects with the original
                // value. (Primitives and guest values come back out as
                // themselves anyway.)
                vm.remember_async_rejection(env, outcome, value.get());
            }
            (ok, value)
        }
        Err(_) => {
            // The outcome cannot cross (a function, a Map, a cycle, a string
            // over 4 kB...). As for a sync import returning such a value, the
            // guest gets the conversion error (a copy) to catch; uncaught, the
            // host gets the conversion error for a fulfilment, the original
            // reason for a rejection (as for a sync import throwing it).
            let error = env.take_exception();
            if vm.status() != crate::vm::Status::Live {
                // The conversion ended the VM: there is nothing to resume,
                // and its promises have been rejected with why.
                return Err(env.throw(error));
            }
            let copy = crate::calls::guest_copy_of_exception(env, &vm, error)?;
            vm.remember_async_rejection(env, if ok { error } else { outcome }, copy.get());
            (false, copy)
        }
    };
    let flag = Rooted::new(&vm, if ok { engine::TRUE } else { engine::FALSE });
    calls::invoke(env, &vm, callback.slot, None, &[flag.slot.into(), value.slot.into()])?;
    Ok(env.undefined())
}

fn export_ids_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    let a = env.array(vm.export_ids.len())?;
    for (i, id) in vm.export_ids.iter().enumerate() {
        env.set_element(a, i as u32, env.int32(*id as i32))?;
    }
    Ok(a)
}

fn get_export_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let id = int_arg(env, ci, 1)?;
    if !(0.0..=65535.0).contains(&id) || id.fract() != 0.0 || !vm.export_ids.contains(&(id as u16)) {
        return Ok(env.undefined());
    }
    let mut out = engine::UNDEFINED;
    let ctx = vm.ctx();
    // SAFETY: ctx is live; out is a local.
    vm.engine_op(|| unsafe { engine::glue_resolve_export(ctx, id as u16, &mut out) })
        .map_err(|f| membrane::throw_failure(env, &vm, f))?;
    to_host(env, &vm, out)
}

fn required_version_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    env.string(vm.required_version.as_bytes())
}

/// Reads property `key` of the guest value in `slot` into a rooted result.
/// Reads property `key` (a rooted guest key) of the guest value in `slot`.
fn get_property<'a>(env: Env, vm: &'a Rc<VmState>, slot: u32, key: Rooted<'a>) -> JsResult<Rooted<'a>> {
    let obj = { let v = vm.handles.borrow().get(slot); Rooted::new(vm, v) };
    let out = Rooted::new(vm, engine::UNDEFINED);
    let ctx = vm.ctx();
    let (o, kp, r) = (obj.raw(), key.raw(), out.raw());
    // SAFETY: rooted slot pointers, taken after the last allocation of a slot.
    vm.engine_op(|| unsafe { engine::glue_get_property(ctx, o, kp, r) })
        .map_err(|f| membrane::throw_failure(env, vm, f))?;
    Ok(out)
}

fn read_property<'a>(env: Env, vm: &'a Rc<VmState>, slot: u32, key: Rooted<'a>) -> JsResult<JsValue> {
    let v = get_property(env, vm, slot, key)?.get();
    if v == engine::DELETED {
        // An array hole reads as undefined.
        return Ok(env.undefined());
    }
    to_host(env, vm, v)
}

fn write_property<'a>(env: Env, vm: &'a Rc<VmState>, slot: u32, key: Rooted<'a>, value: JsValue) -> JsResult<JsValue> {
    // Convert the value first: if it cannot cross, nothing changes.
    let value = to_guest(env, vm, value)?;
    let obj = { let v = vm.handles.borrow().get(slot); Rooted::new(vm, v) };
    let ctx = vm.ctx();
    let (o, kp, x) = (obj.raw(), key.raw(), value.raw());
    // SAFETY: rooted slot pointers.
    vm.engine_op(|| unsafe { engine::glue_set_property(ctx, o, kp, x) })
        .map_err(|f| membrane::throw_failure(env, vm, f))?;
    Ok(env.boolean(true))
}

/// get(core, slot, key)
fn get_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    match keys::existing_key(env, &vm, arg(env, ci, 2))? {
        Some(key) => read_property(env, &vm, slot, key),
        // A name the guest never interned is no object's property.
        None => Ok(env.undefined()),
    }
}

/// set(core, slot, key, value)
fn set_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    let key = property_key(env, &vm, arg(env, ci, 2))?;
    write_property(env, &vm, slot, key, arg(env, ci, 3))
}

/// getk(core, slot, keyId, name): the name is used if the id is stale (see
/// keys.rs).
fn getk_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    read_by_key_id(env, ci, vm)
}

fn read_by_key_id(env: Env, ci: &CallInfo, vm: Rc<VmState>) -> JsResult<JsValue> {
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    match keys::key_by_id(env, &vm, ci, 3, false)? {
        Some(key) => read_property(env, &vm, slot, key),
        None => Ok(env.undefined()),
    }
}

/// setk(core, slot, keyId, value, name)
fn setk_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    let key = keys::key_by_id(env, &vm, ci, 4, true)?.ok_or_else(|| env.throw_error("Microvium: no key"))?;
    write_property(env, &vm, slot, key, arg(env, ci, 3))
}

/// Own keys of a guest object as a host array of strings.
fn keys_of(env: Env, vm: &Rc<VmState>, slot: u32) -> JsResult<JsValue> {
    let ctx = vm.ctx();
    let value = vm.handles.borrow().get(slot);
    let mut extra = 0;
    // SAFETY: ctx is live.
    let k = unsafe { engine::glue_kind(ctx, value, &mut extra) };
    if k == kind::ARRAY || k == kind::FIXED_ARRAY || k == kind::UINT8_ARRAY {
        // SAFETY: as above.
        let n = if k == kind::UINT8_ARRAY { uint8_len(vm, value) } else { unsafe { engine::glue_array_length(ctx, value) }.max(0) as usize };
        let a = env.array(n)?;
        for i in 0..n {
            env.set_element(a, i as u32, env.string(i.to_string().as_bytes())?)?;
        }
        return Ok(a);
    }
    if k != kind::OBJECT && k != kind::PROMISE {
        return env.array(0);
    }
    let keys = Rooted::new(vm, value);
    let kp = keys.raw();
    // SAFETY: rooted slot pointer.
    vm.engine_op(|| unsafe { engine::glue_object_keys(ctx, kp) })
        .map_err(|f| membrane::throw_failure(env, vm, f))?;
    // SAFETY: keys now holds a fixed-length array.
    let n = unsafe { engine::glue_array_length(ctx, keys.get()) }.max(0) as u32;
    let mut names = Vec::with_capacity(n as usize);
    for i in 0..n {
        let _iteration = TempScope::new(vm);
        let idx = Rooted::new(vm, engine::int14_encode(i as i32).unwrap_or(engine::UNDEFINED));
        let out = Rooted::new(vm, engine::UNDEFINED);
        let (kp, ip, op) = (keys.raw(), idx.raw(), out.raw());
        // SAFETY: rooted slot pointers.
        vm.engine_op(|| unsafe { engine::glue_get_property(ctx, kp, ip, op) })
            .map_err(|f| membrane::throw_failure(env, vm, f))?;
        names.push(keys::host_key(env, vm, out.get())?);
    }
    // In JavaScript's order: array indexes ascending, then the rest as created.
    names.sort_by_key(|&(_, index)| index.map_or(u64::MAX, u64::from));
    let a = env.array(n as usize)?;
    for (i, (name, _)) in names.into_iter().enumerate() {
        env.set_element(a, i as u32, name)?;
    }
    Ok(a)
}

fn own_keys_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    keys_of(env, &vm, slot)
}

fn uint8_len(vm: &VmState, value: Value) -> usize {
    let mut data = std::ptr::null_mut();
    let mut size = 0usize;
    let mut writable = false;
    // SAFETY: value is a Uint8Array of this engine; nothing is written.
    unsafe { engine::glue_uint8array_bytes(vm.ctx(), value, &mut data, &mut size, &mut writable) };
    size
}

fn length_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    let mut extra = 0;
    // SAFETY: ctx is live.
    let k = unsafe { engine::glue_kind(vm.ctx(), value, &mut extra) };
    let n = if k == kind::UINT8_ARRAY {
        uint8_len(&vm, value) as i32
    } else {
        // SAFETY: ctx is live.
        unsafe { engine::glue_array_length(vm.ctx(), value) }
    };
    Ok(env.int32(n))
}

/// The host value of a class instance's guest prototype, or null for plain
/// objects (which report Object.prototype in the JS layer).
fn proto_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    // SAFETY: ctx is live.
    let p = unsafe { engine::glue_object_proto(vm.ctx(), value) };
    if p == engine::NULL || p == engine::UNDEFINED {
        return Ok(env.null());
    }
    to_host(env, &vm, p)
}

/// construct(core, classSlot, ...args)
fn construct_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    let args = &ci.args()[2.min(ci.args().len())..];
    if args.len() > 126 {
        return Err(errors::throw(env, errors::E_TOO_MANY_ARGUMENTS, Some(&format!("{} arguments given; a call into the guest carries at most 126", args.len()))));
    }
    let mut rooted = Vec::with_capacity(args.len());
    for a in args {
        rooted.push(calls::Arg::Rooted(to_guest(env, &vm, *a)?.slot));
    }
    let instance = { let v = vm.handles.borrow().get(slot); Rooted::new(&vm, v) };
    let ctor = Rooted::new(&vm, engine::UNDEFINED);
    let scratch = Rooted::new(&vm, engine::UNDEFINED);
    let ctx = vm.ctx();
    let (ip, cp, sp) = (instance.raw(), ctor.raw(), scratch.raw());
    // SAFETY: rooted slot pointers.
    vm.engine_op(|| unsafe { engine::glue_construct(ctx, ip, cp, sp) })
        .map_err(|f| membrane::throw_failure(env, &vm, f))?;
    calls::invoke(env, &vm, ctor.slot, Some(&instance), &rooted)?;
    to_host(env, &vm, instance.get())
}

/// The bytes of the guest Uint8Array in `slot`, and whether they may be
/// written (they may not when the compiler put the array in the snapshot's
/// read-only section).
fn u8_bytes<'a>(env: Env, vm: &VmState, slot: u32) -> JsResult<(&'a mut [u8], bool)> {
    let value = vm.handles.borrow().get(slot);
    let mut data = std::ptr::null_mut();
    let mut size = 0usize;
    let mut writable = false;
    // SAFETY: ctx is live.
    let code = unsafe { engine::glue_uint8array_bytes(vm.ctx(), value, &mut data, &mut size, &mut writable) };
    if code != 0 {
        return Err(errors::throw(env, code, None));
    }
    if size == 0 {
        return Ok((&mut [], writable));
    }
    // SAFETY: the engine reports `size` bytes at `data` inside its heap or
    // snapshot; callers use the slice before anything can allocate in the
    // guest, and write only when `writable`.
    Ok((unsafe { std::slice::from_raw_parts_mut(data, size) }, writable))
}

fn u8_length_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    Ok(env.int32(u8_bytes(env, &vm, slot)?.0.len() as i32))
}

/// u8Slice(core, slot, begin, end): a copy, with begin/end already
/// normalised by the JS layer.
fn u8_slice_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let (bytes, _) = u8_bytes(env, &vm, slot)?;
    let begin = (int_arg(env, ci, 2)? as usize).min(bytes.len());
    let end = (int_arg(env, ci, 3)? as usize).clamp(begin, bytes.len());
    let copy = bytes[begin..end].to_vec();
    env.uint8array_from(&copy)
}

/// u8Set(core, slot, source: Uint8Array, offset), bounds checked in JS.
fn u8_set_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let source = env
        .uint8_bytes(arg(env, ci, 2))
        .ok_or_else(|| env.throw_type_error("Microvium: expected a Uint8Array"))?
        .to_vec();
    let offset = int_arg(env, ci, 3)? as usize;
    let (bytes, writable) = u8_bytes(env, &vm, slot)?;
    if !writable {
        return Err(errors::throw(env, errors::E_ATTEMPT_TO_WRITE_TO_ROM, Some("this Uint8Array is in the snapshot's read-only memory")));
    }
    if offset > bytes.len() || source.len() > bytes.len() - offset {
        return Err(env.throw_range_error("offset is out of bounds"));
    }
    bytes[offset..offset + source.len()].copy_from_slice(&source);
    Ok(env.undefined())
}

fn create_snapshot_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let mut data = std::ptr::null_mut();
    let mut size = 0usize;
    let ctx = vm.ctx();
    // SAFETY: ctx is live; out-pointers to locals.
    vm.engine_op(|| unsafe { engine::glue_create_snapshot(ctx, &mut data, &mut size) })
        .map_err(|f| membrane::throw_failure(env, &vm, f))?;
    if data.is_null() {
        return Err(env.throw_error("Microvium: snapshot creation failed"));
    }
    // SAFETY: the engine malloc'd `size` bytes at `data`; freed right after.
    let copy = unsafe { std::slice::from_raw_parts(data as *const u8, size) }.to_vec();
    // SAFETY: data came from the engine's malloc.
    unsafe { engine::glue_free_snapshot(vm.ctx(), data) };
    env.uint8array_from(&copy)
}

fn run_gc_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let squeeze = env.type_of(arg(env, ci, 1))? == Type::Boolean && env.get_bool(arg(env, ci, 1))?;
    // Guest values whose host values V8 has collected go first.
    crate::pressure::sweep(env, &vm);
    let ctx = vm.ctx();
    // SAFETY: ctx is live.
    vm.engine_op(|| unsafe { engine::glue_run_gc(ctx, squeeze) })
        .map_err(|f| membrane::throw_failure(env, &vm, f))?;
    Ok(env.undefined())
}

fn memory_stats_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let mut s = engine::MemoryStats::default();
    // SAFETY: ctx is live; s is a local of the mirrored layout.
    unsafe { engine::glue_get_memory_stats(vm.ctx(), &mut s) };
    let o = env.object()?;
    for (name, v) in [
        ("totalSize", s.total_size),
        ("fragmentCount", s.fragment_count),
        ("coreSize", s.core_size),
        ("importTableSize", s.import_table_size),
        ("globalVariablesSize", s.global_variables_size),
        ("registersSize", s.registers_size),
        ("stackHeight", s.stack_height),
        ("stackAllocatedCapacity", s.stack_allocated_capacity),
        ("stackHighWaterMark", s.stack_high_water_mark),
        ("virtualHeapUsed", s.virtual_heap_used),
        ("virtualHeapHighWaterMark", s.virtual_heap_high_water_mark),
        ("virtualHeapAllocatedCapacity", s.virtual_heap_allocated_capacity),
    ] {
        env.set_named(o, name, env.double(v as f64))?;
    }
    Ok(o)
}

fn stop_after_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let n = int_arg(env, ci, 1)?;
    let n = if n < 0.0 { -1 } else { n.min(i32::MAX as f64) as i32 };
    // SAFETY: ctx is live.
    unsafe { engine::glue_stop_after(vm.ctx(), n) };
    Ok(env.undefined())
}

fn remaining_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    // SAFETY: ctx is live.
    Ok(env.int32(unsafe { engine::glue_instructions_remaining(vm.ctx()) }))
}

fn address_arg(env: Env, ci: &CallInfo) -> JsResult<u16> {
    let a = int_arg(env, ci, 1)?;
    if !(0.0..=65535.0).contains(&a) || a.fract() != 0.0 {
        return Err(env.throw_range_error("bytecode address must be an integer from 0 to 65535"));
    }
    Ok(a as u16)
}

fn set_breakpoint_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let a = address_arg(env, ci)?;
    let ctx = vm.ctx();
    // SAFETY: ctx is live.
    vm.engine_op(|| unsafe { engine::glue_set_breakpoint(ctx, a) })
        .map_err(|f| membrane::throw_failure(env, &vm, f))?;
    Ok(env.undefined())
}

fn remove_breakpoint_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let a = address_arg(env, ci)?;
    // SAFETY: ctx is live.
    unsafe { engine::glue_remove_breakpoint(vm.ctx(), a) };
    Ok(env.undefined())
}

unsafe extern "C" fn breakpoint_trampoline(raw_vm: *mut std::ffi::c_void, address: u16) -> std::os::raw::c_int {
    // SAFETY: as in host_function_trampoline.
    let vm_ptr = unsafe { (*engine::glue_get_context(raw_vm)).host as *const VmState };
    let Some(env) = runtime::current_env() else { return 0 };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the active call holds the state alive.
        let vm = unsafe { &*vm_ptr };
        let Some(cb) = env.ref_value(vm.breakpoint.get()) else { return };
        let scope = env.open_scope();
        let undefined = env.undefined();
        if env.call(cb, undefined, &[env.int32(address as i32)]).is_err() {
            // The engine cannot unwind from a breakpoint: stop the guest at
            // the next instruction with the gas counter and report the
            // callback's exception to the host caller.
            let e = env.take_exception();
            vm.set_breakpoint_error(env, e);
            if vm.fatal_return().is_none() {
                // SAFETY: ctx is live during the call.
                unsafe { engine::glue_stop_after(vm.ctx(), 0) };
            }
        }
        env.close_scope(scope);
    }));
    // SAFETY: as above.
    let vm = unsafe { &*vm_ptr };
    // A fatal error of this VM during the callback (in a call it made, even
    // one it caught): the glue ends the engine call with it at once.
    vm.fatal_return().map(|r| r - engine::FATAL_BASE).unwrap_or(0)
}

fn set_breakpoint_callback_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let cb = arg(env, ci, 1);
    let old = vm.breakpoint.replace(std::ptr::null_mut());
    env.delete_ref(old);
    if env.type_of(cb)? == Type::Function {
        // Weak: the JS layer holds the callback strongly on the core object.
        vm.breakpoint.set(env.new_ref(cb, 0)?);
        // SAFETY: ctx is live.
        unsafe { engine::glue_set_breakpoint_callback(vm.ctx(), Some(breakpoint_trampoline)) };
    } else {
        // SAFETY: ctx is live.
        unsafe { engine::glue_set_breakpoint_callback(vm.ctx(), None) };
    }
    Ok(env.undefined())
}

fn current_address_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    // SAFETY: ctx is live.
    Ok(env.int32(unsafe { engine::glue_current_address(vm.ctx()) } as i32))
}

fn dispose_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    vm.dispose(env);
    // The engine's memory is gone (or goes when the call that disposed it
    // returns): V8 hears of it now.
    crate::pressure::account(env, &vm);
    Ok(env.undefined())
}

/// 'live', 'disposed' or 'poisoned'
fn status_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    let s = match vm.status() {
        vm::Status::Live => "live",
        vm::Status::Disposed => "disposed",
        vm::Status::Poisoned(_) => "poisoned",
    };
    env.string(s.as_bytes())
}

/// Number of slots rooting guest values for the host (for leak tests); the
/// per-VM caches, bounded in size, are not counted.
fn live_handles_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    // Slots whose host values V8 has collected are not live; the next
    // operation would release them anyway.
    crate::pressure::sweep(env, &vm);
    let n = vm.handles.borrow().live() - vm.cached_slots();
    Ok(env.int32(n as i32))
}

/// `this` of a call goes to the guest only if it is a guest value of this
/// VM (a method called through a proxy); anything else is undefined.
fn guest_this(env: Env, vm: &VmState, this: JsValue) -> JsResult<Option<JsValue>> {
    Ok(match env.type_of(this)? {
        Type::Object | Type::Function => match membrane::unwrap_value(env, this) {
            Some(membrane::Unwrapped::Guest { serial, .. }) if serial == vm.serial => Some(this),
            _ => None,
        },
        _ => None,
    })
}

/// makeCaller(core, withThis) -> a function `(core, id, ...args)` (or
/// `(core, id, this, ...args)`) that calls guest functions of this VM, as
/// callArgs does, but finds the VM through its callback data instead of
/// unwrapping `core` (the host→guest call path). The JS layer keeps both on
/// the core, and every closure that calls one passes (so holds) the core,
/// which owns the VM: the data outlives every caller.
fn make_caller_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let with_this = env.get_bool(arg(env, ci, 1))?;
    // VmState is aligned to 8: the low bit says which caller this is.
    const _: () = assert!(std::mem::align_of::<VmState>() >= 2);
    let data = Rc::as_ptr(&vm) as usize | with_this as usize;
    env.function("call", Some(caller_callback), data as *mut std::ffi::c_void)
}

unsafe extern "C" fn caller_callback(raw_env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    entry(raw_env, info, |env, ci| {
        let with_this = ci.data as usize & 1 == 1;
        // SAFETY: the data is the VmState of the core that every caller
        // passes as its first argument (see make_caller_impl); that core's
        // wrap owns an Rc of it, so it is alive. The count taken here keeps
        // it alive for this call even if the call disposes of every owner.
        let vm = unsafe {
            let p = (ci.data as usize & !1) as *const VmState;
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        };
        vm.check_usable(env)?;
        let slot = slot_arg(env, ci, &vm, 1)?;
        let _scope = TempScope::new(&vm);
        let (this, first) = if with_this { (guest_this(env, &vm, arg(env, ci, 2))?, 3) } else { (None, 2) };
        let args = &ci.args()[first.min(ci.args().len())..];
        calls::call_guest(env, &vm, slot, this, args)
    })
}

/// makeReader(core) -> getk for this VM, `(core, slot, keyId, name)`,
/// which finds the VM through its callback data (as makeCaller's callers
/// do) instead of unwrapping `core`: the read through a held proxy is the
/// membrane's hot path.
fn make_reader_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    env.function("getk", Some(reader_callback), Rc::as_ptr(&vm) as *mut std::ffi::c_void)
}

unsafe extern "C" fn reader_callback(raw_env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    entry(raw_env, info, |env, ci| {
        // SAFETY: as in caller_callback: the data is the VmState of the core
        // that holds this function and that every call passes as its first
        // argument; the count taken here keeps it alive for the call.
        let vm = unsafe {
            let p = ci.data as *const VmState;
            Rc::increment_strong_count(p);
            Rc::from_raw(p)
        };
        vm.check_usable(env)?;
        read_by_key_id(env, ci, vm)
    })
}

/// callArgs(core, id, this, args: array): a call with the arguments in an
/// array (for calls with more arguments than a spread should carry).
fn call_args_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let list = arg(env, ci, 3);
    let n = env.array_length(list)?;
    if n > 126 {
        return Err(errors::throw(
            env,
            errors::E_TOO_MANY_ARGUMENTS,
            Some(&format!("{n} arguments given; a call into the guest carries at most 126")),
        ));
    }
    let mut args = Vec::with_capacity(n as usize);
    for i in 0..n {
        args.push(env.get_element(list, i)?);
    }
    let _scope = TempScope::new(&vm);
    let this = guest_this(env, &vm, arg(env, ci, 2))?;
    calls::call_guest(env, &vm, slot, this, &args)
}

/// Checks that `v` may be released through this VM; the slot, or None when
/// there is nothing to release (a primitive, a promise, a value released
/// already).
fn releasable(env: Env, vm: &VmState, v: JsValue, what: &str) -> JsResult<Option<u32>> {
    if !matches!(env.type_of(v)?, Type::Object | Type::Function) {
        return Ok(None);
    }
    match membrane::belongs(env, vm, v) {
        membrane::Belongs::Here(slot) => Ok(if env.is_promise(v) { None } else { Some(slot) }),
        membrane::Belongs::Released => Ok(None),
        membrane::Belongs::Elsewhere => Err(env.throw_type_error(&format!("{what}: the value belongs to another Microvium VM"))),
        membrane::Belongs::Core | membrane::Belongs::NotGuest => {
            Err(env.throw_type_error(&format!("{what}: the value did not come out of this Microvium VM")))
        }
    }
}

/// The VM behind a core object, from this thread, in any state (releasing
/// is bookkeeping only, so it works after dispose too).
fn core_this_thread(env: Env, ci: &CallInfo) -> JsResult<Rc<VmState>> {
    let vm = core_any(env, ci)?;
    if vm.is_foreign_thread() {
        // The same error every other use from another thread gets.
        vm.check_usable(env)?;
    }
    Ok(vm)
}

/// release(core, value): releases the guest value behind `value` now.
fn release_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_this_thread(env, ci)?;
    if let Some(slot) = releasable(env, &vm, arg(env, ci, 1), "vm.release")? {
        vm.release_host_value(env, slot);
    }
    Ok(env.undefined())
}

/// pin(core, value): `value` (an export) is never released by vm.release or
/// vm.scope.
fn pin_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let v = arg(env, ci, 1);
    if matches!(env.type_of(v)?, Type::Object | Type::Function) {
        if let membrane::Belongs::Here(slot) = membrane::belongs(env, &vm, v) {
            vm.handles.borrow_mut().meta(slot).pinned = true;
        }
    }
    Ok(env.undefined())
}

/// scopeEnter(core) -> depth, for scopeExit
fn scope_enter_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    Ok(env.double(vm.scope_enter() as f64))
}

/// scopeExit(core, depth, result): releases what the scope made, except
/// `result` if it is one of them.
fn scope_exit_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_this_thread(env, ci)?;
    let depth = env.get_f64(arg(env, ci, 1))?;
    let result = arg(env, ci, 2);
    let keep = match env.type_of(result)? {
        Type::Object | Type::Function => match membrane::belongs(env, &vm, result) {
            membrane::Belongs::Here(slot) => Some(slot),
            _ => None,
        },
        _ => None,
    };
    vm.scope_exit(env, depth.max(0.0) as usize, keep);
    Ok(env.undefined())
}

/// setCollector(core, fn | undefined): the function relieve_pressure may
/// call to run a JavaScript collection (held weakly: the core holds it).
fn set_collector_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let f = arg(env, ci, 1);
    env.delete_ref(vm.collector.replace(std::ptr::null_mut()));
    if env.type_of(f)? == Type::Function {
        vm.collector.set(env.new_ref(f, 0)?);
    }
    Ok(env.undefined())
}

/// For the tests: slots backing host values (collected ones not swept yet
/// included).
fn host_held_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    let n = vm.handles.borrow().host_held();
    Ok(env.int32(n as i32))
}

/// For the tests: the native memory this VM last reported to V8.
fn reported_memory_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    Ok(env.double(vm.reported_memory.get() as f64))
}
