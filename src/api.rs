//! The native functions the JS layer (lib/) calls. Each takes the VM's core
//! object first; guest values are addressed by their handle slot, which the
//! JS layer got from the proxy factory.

use crate::engine::{self, kind, ByteWrite, Value};
use crate::errors;
use crate::handles;
use crate::js::{self, Body, CallInfo, Env, JsResult, JsValue, Type};
use crate::calls;
use crate::key_cache;
use crate::keys::{self, property_key};
use crate::membrane::{self, to_guest, to_host};
use crate::roots::{Rooted, TempScope};
use crate::runtime;
use crate::restore;
use crate::snapshot;
use crate::vm::{self, VmState};
use std::rc::Rc;

/// The native functions, named as the JS layer calls them.
macro_rules! native {
    ($($name:ident => $body:path),* $(,)?) => {
        pub const FUNCTIONS: &[(&str, Body)] = &[
            $((stringify!($name), $body)),*
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
    keyId => key_id_impl,
    setk => setk_impl,
    has => has_impl,
    getOwn => get_own_impl,
    keyCacheStats => key_cache_stats_impl,
    clearKeyCache => clear_key_cache_impl,
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
    setTimeLimit => set_time_limit_impl,
    getTimeLimit => get_time_limit_impl,
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
    membrane::unwrap_core(env, arg(env, ci, 0)).ok_or_else(|| env.throw_type_error("Microvium: expected a VM"))
}

/// The slot of a host value's id (see handles::host_id), checked current:
/// a released value's id no longer matches its slot.
pub(crate) fn slot_arg(env: Env, ci: &CallInfo, vm: &VmState, i: usize) -> JsResult<u32> {
    checked_slot(env, vm, env.get_f64(arg(env, ci, i))?)
}

/// The slot of a host value's id, checked current (see slot_arg).
fn checked_slot(env: Env, vm: &VmState, id: f64) -> JsResult<u32> {
    let Some((s, generation)) = handles::split_id(id) else {
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
    Ok(match engine::fault_net_self_test() {
        None => env.null(),
        Some(code) => env.int32(code),
    })
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
        .ok_or_else(|| env.throw_type_error("Microvium snapshot must be a Uint8Array"))?;
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
    // VMs dropped since the last collection give their memory back first.
    crate::pressure::reclaim_collected(env);
    let limits = crate::limits::RestoreLimits::parse(env, arg(env, ci, 5), &bytes)?;
    let state = restore::restore(env, &bytes, imports, info, &limits)?;
    membrane::wrap_core(env, core, state.clone())?;
    crate::pressure::track(&state);
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
    let out = vm.engine_op(|e| e.resolve_export(id as u16)).map_err(|f| errors::throw_failure(env, f))?;
    to_host(env, &vm, out)
}

fn required_version_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    env.string(vm.required_version.as_bytes())
}

/// Reads property `key` (a rooted guest key) of the guest value in `slot`.
fn get_property<'a>(env: Env, vm: &'a Rc<VmState>, slot: u32, key: Rooted<'a>) -> JsResult<Rooted<'a>> {
    let obj = { let v = vm.handles.borrow().get(slot); Rooted::new(vm, v) };
    let out = Rooted::new(vm, engine::UNDEFINED);
    vm.engine_op(|e| e.get_property(obj.root(), key.root(), out.root())).map_err(|f| errors::throw_failure(env, f))?;
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
    vm.engine_op(|e| e.set_property(obj.root(), key.root(), value.root())).map_err(|f| errors::throw_failure(env, f))?;
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

/// The read of makeReader's function `(core, slot, keyId, name)`: the name
/// is used if the id is stale (see keys.rs).
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

/// keyId's answers besides an id.
const UNCACHED: f64 = -1.0;
const NOT_INTERNED: f64 = -2.0;

fn id_value(env: Env, id: Option<u64>) -> JsValue {
    env.double(id.map(|i| i as f64).unwrap_or(UNCACHED))
}


/// keyId(core, name, forWrite): the id of a name for getk/setk; -1 if it
/// has none (indexes, `length`, names too long to cache): ask by name;
/// -2 for a read of a name the guest has never interned (absent everywhere
/// for now; not to be remembered). With forWrite the name is interned.
fn key_id_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let key = arg(env, ci, 1);
    if env.type_of(key)? != Type::String {
        return Ok(env.double(UNCACHED));
    }
    let write = env.type_of(arg(env, ci, 2))? == Type::Boolean && env.get_bool(arg(env, ci, 2))?;
    if write {
        let (_, id) = keys::write_key(env, &vm, key)?;
        return Ok(id_value(env, id));
    }
    match keys::read_key(env, &vm, key)? {
        Some((_, id)) => Ok(id_value(env, id)),
        None => Ok(env.double(NOT_INTERNED)),
    }
}


/// has(core, slot, key): whether the guest value has that own property,
/// found directly (not through the list of all its keys).
fn has_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    Ok(env.boolean(keys::own_property(env, &vm, slot, arg(env, ci, 2))?.is_some()))
}

/// getOwn(core, slot, key, absent): the value of an own property of an
/// object or class, or `absent` if it has none.
fn get_own_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let _scope = TempScope::new(&vm);
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    let (kd, _) = vm.engine().kind(value);
    if kd != kind::OBJECT && kd != kind::PROMISE && kd != kind::CLASS {
        return Err(env.throw_type_error("Microvium: getOwn expects an object or class"));
    }
    match keys::own_property(env, &vm, slot, arg(env, ci, 2))? {
        Some(v) if v.get() == engine::DELETED => Ok(env.undefined()),
        Some(v) => to_host(env, &vm, v.get()),
        None => Ok(arg(env, ci, 3)),
    }
}

/// clearKeyCache(core): keys::clear_cache, for the tests.
fn clear_key_cache_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    keys::clear_cache(env, &vm);
    Ok(env.undefined())
}

/// keyCacheStats(core): { entries, pinnedBytes, budget }, for the tests.
fn key_cache_stats_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core_any(env, ci)?;
    let (n, pinned) = {
        let c = vm.keys.borrow();
        (c.len(), c.pinned_bytes())
    };
    let o = env.object()?;
    env.set_named(o, "entries", env.double(n as f64))?;
    env.set_named(o, "pinnedBytes", env.double(pinned as f64))?;
    env.set_named(o, "budget", env.double(key_cache::BUDGET as f64))?;
    Ok(o)
}

/// Own keys of a guest object as a host array of strings.
fn keys_of(env: Env, vm: &Rc<VmState>, slot: u32) -> JsResult<JsValue> {
    let value = vm.handles.borrow().get(slot);
    let (k, _) = vm.engine().kind(value);
    if k == kind::ARRAY || k == kind::FIXED_ARRAY || k == kind::UINT8_ARRAY {
        let n = if k == kind::UINT8_ARRAY { uint8_len(vm, value) } else { vm.engine().array_length(value).max(0) as usize };
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
    vm.engine_op(|e| e.object_keys(keys.root())).map_err(|f| errors::throw_failure(env, f))?;
    // keys now holds a fixed-length array.
    let n = vm.engine().array_length(keys.get()).max(0) as u32;
    let mut names = Vec::with_capacity(n as usize);
    for i in 0..n {
        let _iteration = TempScope::new(vm);
        let idx = Rooted::new(vm, engine::int14_encode(i as i32).unwrap_or(engine::UNDEFINED));
        let out = Rooted::new(vm, engine::UNDEFINED);
        vm.engine_op(|e| e.get_property(keys.root(), idx.root(), out.root()))
            .map_err(|f| errors::throw_failure(env, f))?;
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
    vm.engine().uint8array_len(value).unwrap_or(0)
}

fn length_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    let (k, _) = vm.engine().kind(value);
    let n = if k == kind::UINT8_ARRAY { uint8_len(&vm, value) as i32 } else { vm.engine().array_length(value) };
    Ok(env.int32(n))
}

/// The host value of a class instance's guest prototype, or null for plain
/// objects (which report Object.prototype in the JS layer).
fn proto_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    let p = vm.engine().object_proto(value);
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
    if args.len() > calls::MAX_GUEST_ARGS {
        return Err(calls::too_many_args(env, args.len()));
    }
    let mut rooted = Vec::with_capacity(args.len());
    for a in args {
        rooted.push(calls::Arg::Rooted(to_guest(env, &vm, *a)?.slot));
    }
    let instance = { let v = vm.handles.borrow().get(slot); Rooted::new(&vm, v) };
    let ctor = Rooted::new(&vm, engine::UNDEFINED);
    let scratch = Rooted::new(&vm, engine::UNDEFINED);
    vm.engine_op(|e| e.construct(instance.root(), ctor.root(), scratch.root()))
        .map_err(|f| errors::throw_failure(env, f))?;
    calls::invoke(env, &vm, ctor.slot, Some(&instance), &rooted)?;
    to_host(env, &vm, instance.get())
}

fn u8_length_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let len = vm.engine().uint8array_len(vm.handles.borrow().get(slot)).map_err(|code| errors::throw(env, code, None))?;
    Ok(env.int32(len as i32))
}

/// u8Slice(core, slot, begin, end): a copy, with begin/end already
/// normalised by the JS layer.
fn u8_slice_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let value = vm.handles.borrow().get(slot);
    let begin = int_arg(env, ci, 2)? as usize;
    let end = int_arg(env, ci, 3)? as usize;
    let copy = vm.engine().uint8array_read(value, begin, end).map_err(|code| errors::throw(env, code, None))?;
    env.uint8array_from(&copy)
}

/// u8Set(core, slot, source: Uint8Array, offset), bounds checked in JS.
fn u8_set_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let source = env
        .uint8_bytes(arg(env, ci, 2))
        .ok_or_else(|| env.throw_type_error("Microvium: expected a Uint8Array"))?;
    let offset = int_arg(env, ci, 3)? as usize;
    let value = vm.handles.borrow().get(slot);
    match vm.engine().uint8array_write(value, offset, &source).map_err(|code| errors::throw(env, code, None))? {
        ByteWrite::Done => Ok(env.undefined()),
        // The compiler put the array in the snapshot's read-only section.
        ByteWrite::ReadOnly => Err(errors::throw(
            env,
            errors::E_ATTEMPT_TO_WRITE_TO_ROM,
            Some("this Uint8Array is in the snapshot's read-only memory"),
        )),
        ByteWrite::OutOfBounds => Err(env.throw_range_error("offset is out of bounds")),
    }
}

fn create_snapshot_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    match vm.engine_op(|e| e.create_snapshot()).map_err(|f| errors::throw_failure(env, f))? {
        Some(copy) => env.uint8array_from(&copy),
        None => Err(env.throw_error("Microvium: snapshot creation failed")),
    }
}

fn run_gc_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let squeeze = env.type_of(arg(env, ci, 1))? == Type::Boolean && env.get_bool(arg(env, ci, 1))?;
    // Guest values whose host values V8 has collected go first.
    crate::pressure::sweep(env, &vm);
    vm.engine_op(|e| e.run_gc(squeeze)).map_err(|f| errors::throw_failure(env, f))?;
    Ok(env.undefined())
}

fn memory_stats_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let s = vm.engine().memory_stats();
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
    // This VM's guest heap cap (opts.maxHeapSize, else the engine's).
    env.set_named(o, "maxHeapSize", env.double(crate::limits::heap_cap(vm.engine()) as f64))?;
    Ok(o)
}

fn stop_after_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let n = int_arg(env, ci, 1)?;
    let n = if n < 0.0 { -1 } else { n.min(i32::MAX as f64) as i32 };
    vm.engine().stop_after(n);
    Ok(env.undefined())
}

fn remaining_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    Ok(env.int32(vm.engine().instructions_remaining()))
}

/// setTimeLimit(core, ms): ms a finite number >= 0, or -1 for none (lib/vm.js
/// checks the argument and words the errors); see limits.rs.
fn set_time_limit_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let ms = int_arg(env, ci, 1)?;
    if !crate::limits::valid_time_limit(ms) {
        return Err(env.throw_range_error("vm.setTimeLimit(ms): ms must be a finite number >= 0, or -1 for no limit"));
    }
    vm.engine().set_time_limit_ms(ms);
    Ok(env.undefined())
}

fn get_time_limit_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    Ok(env.double(vm.engine().time_limit_ms()))
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
    vm.engine_op(|e| e.set_breakpoint(a)).map_err(|f| errors::throw_failure(env, f))?;
    Ok(env.undefined())
}

fn remove_breakpoint_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let a = address_arg(env, ci)?;
    vm.engine().remove_breakpoint(a);
    Ok(env.undefined())
}

unsafe extern "C" fn breakpoint_trampoline(raw_vm: *mut std::ffi::c_void, address: u16) -> std::os::raw::c_int {
    // SAFETY: raw_vm is the instance calling; its host data is the VmState
    // (see restore), which the active call keeps alive.
    let vm_ptr = unsafe { engine::host_of(raw_vm) } as *const VmState;
    let Some(env) = js::current_env() else { return 0 };
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
                vm.engine().stop_after(0);
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
        vm.engine().set_breakpoint_callback(Some(breakpoint_trampoline));
    } else {
        vm.engine().set_breakpoint_callback(None);
    }
    Ok(env.undefined())
}

fn current_address_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    Ok(env.int32(vm.engine().current_address() as i32))
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

/// makeCaller(core, kind) -> a function (of one of the kinds below) that
/// calls guest functions of this VM, as callArgs does, but finds the VM
/// through its callback data instead of unwrapping `core` (the host→guest
/// call path). The JS layer keeps all three on
/// the core, and every closure that calls one passes (so holds) the core,
/// which owns the VM: the data outlives every caller.
fn make_caller_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let data = Caller { vm: Rc::downgrade(&vm) };
    match env.get_f64(arg(env, ci, 1))? {
        CALLER_PLAIN => env.function_with_data("call", caller, data),
        CALLER_WITH_THIS => env.function_with_data("callThis", caller_with_this, data),
        _ => Err(env.throw_type_error("Microvium: unknown caller kind")),
    }
}

/// makeCaller's kinds: `(core, ...args)`, with the callee's id and what
/// the JS layer knows of the arguments in the shared buffer (see js.rs);
/// and `(core, slot, this, ...args)`.
const CALLER_PLAIN: f64 = 0.0;
const CALLER_WITH_THIS: f64 = 1.0;

/// What a function of makeCaller carries. The VM is held weakly: the core
/// owns the VM, and the JS layer keeps the callers on the core, so a strong
/// reference here would change nothing but the moment the VM is freed.
struct Caller {
    vm: std::rc::Weak<VmState>,
}

impl Caller {
    /// Every caller passes the core (which owns the VM) as its first
    /// argument, so the VM is alive; the Rc taken here keeps it alive for
    /// the call even if the call disposes of every other owner.
    fn vm(&self, env: Env) -> JsResult<Rc<VmState>> {
        let vm = self.vm.upgrade().ok_or_else(|| env.throw_error("Microvium VM is not usable"))?;
        vm.check_usable(env)?;
        Ok(vm)
    }
}

fn caller(env: Env, ci: &CallInfo, data: &Caller) -> JsResult<JsValue> {
    // First thing: nothing has run since the JS layer wrote the buffer.
    let shared = ci.shared_call().ok_or_else(|| env.throw_error("Microvium: no shared call"))?;
    let vm = data.vm(env)?;
    let slot = checked_slot(env, &vm, shared.callee)?;
    let all = ci.args();
    let returned = calls::call_guest(env, &vm, slot, None, &all[1.min(all.len())..], Some(&shared))?;
    // Last thing (anything run before could have made a call of its own):
    // a small integer goes back through the shared buffer, not as a JS number.
    Ok(match returned {
        calls::Returned::Int(i) => {
            ci.return_number(i as f64);
            env.undefined()
        }
        calls::Returned::Js(v) => {
            ci.return_value();
            v
        }
    })
}

fn caller_with_this(env: Env, ci: &CallInfo, data: &Caller) -> JsResult<JsValue> {
    let vm = data.vm(env)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let _scope = TempScope::new(&vm);
    let this = guest_this(env, &vm, arg(env, ci, 2))?;
    let all = ci.args();
    calls::call_guest(env, &vm, slot, this, &all[3.min(all.len())..], None).map(|r| r.into_js(env))
}

/// makeReader(core) -> getk for this VM, `(core, slot, keyId, name)`,
/// which finds the VM through its function data (as makeCaller's callers
/// do) instead of unwrapping `core`: the read through a held proxy is the
/// membrane's hot path. Made when the VM's first object is read.
fn make_reader_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    env.read_only_function_with_data("getk", reader, Reader { vm: Rc::downgrade(&vm) })
}

/// What makeReader's function carries (held weakly, as Caller's VM).
struct Reader {
    vm: std::rc::Weak<VmState>,
}

fn reader(env: Env, ci: &CallInfo, data: &Reader) -> JsResult<JsValue> {
    let vm = data.vm.upgrade().ok_or_else(|| env.throw_error("Microvium VM is not usable"))?;
    vm.check_usable(env)?;
    read_by_key_id(env, ci, vm)
}

/// callArgs(core, id, this, args: array): a call with the arguments in an
/// array (for calls with more arguments than a spread should carry).
fn call_args_impl(env: Env, ci: &CallInfo) -> JsResult<JsValue> {
    let vm = core(env, ci)?;
    let slot = slot_arg(env, ci, &vm, 1)?;
    let list = arg(env, ci, 3);
    let n = env.array_length(list)?;
    if n as usize > calls::MAX_GUEST_ARGS {
        return Err(calls::too_many_args(env, n as usize));
    }
    let mut args = Vec::with_capacity(n as usize);
    for i in 0..n {
        args.push(env.get_element(list, i)?);
    }
    let _scope = TempScope::new(&vm);
    let this = guest_this(env, &vm, arg(env, ci, 2))?;
    calls::call_guest(env, &vm, slot, this, &args, None).map(|r| r.into_js(env))
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
