//! Calls across the boundary: host to guest (call_guest; guest functions are
//! JS-layer closures that reach it through api.rs `call`), guest to host
//! (the imports' trampoline, sync and async), and exceptions both ways.

use crate::engine::{self, Value};
use crate::errors::{self, throw_failure, Failure};
use crate::handles::Slot;
use crate::js::{self, Env, JsResult, JsValue, Pending, SharedCall, Type};
use crate::runtime::{self, Helper};
use crate::vm::{CallFailure, Status, VmState};
use std::ffi::c_void;
use std::rc::Rc;
use crate::roots::{Rooted, TempScope};
use crate::membrane::{self, to_guest, to_host};
use crate::membrane::settle_promises;
use crate::pressure::{relieve_pressure, relieve_pressure_in_crossing};

/// Most arguments a call into the guest carries (the engine counts them,
/// with `this`, in a byte, and its stack frame limits them further).
pub const MAX_GUEST_ARGS: usize = 126;

/// The error of a call into the guest with `n` arguments, too many.
pub fn too_many_args(env: Env, n: usize) -> Pending {
    errors::throw(
        env,
        errors::E_TOO_MANY_ARGUMENTS,
        Some(&format!("{n} arguments given; a call into the guest carries at most {MAX_GUEST_ARGS}")),
    )
}

/// Turns a failed engine call into a pending JS exception: an uncaught guest
/// exception becomes the thrown value (or the original host exception).
pub fn call_failure(env: Env, vm: &Rc<VmState>, failure: CallFailure, result: Value) -> Pending {
    match failure {
        CallFailure::Thrown(p) => p,
        CallFailure::Engine(Failure::Error(errors::E_UNCAUGHT_EXCEPTION)) => {
            if let Some(original) = vm.original_host_exception(env, result) {
                return env.throw(original);
            }
            match to_host(env, vm, result) {
                Ok(v) => env.throw(v),
                Err(p) => p,
            }
        }
        CallFailure::Engine(f) => throw_failure(env, f),
    }
}

/// Calls with at most this many arguments keep them on the native stack.
const INLINE_ARGS: usize = 8;

/// An argument of a call into the guest: rooted in a handle slot, or a value
/// that is not a pointer (a small integer, a boolean, undefined...), which
/// the collector never moves and so needs no root.
#[derive(Clone, Copy)]
pub enum Arg {
    Rooted(Slot),
    Immediate(Value),
}

impl From<Slot> for Arg {
    fn from(s: Slot) -> Self {
        Arg::Rooted(s)
    }
}

/// What a call into the guest returned. A small integer is left
/// unconverted until the call has ended, for a caller that hands it over
/// without making a JS number (api.rs `caller`, through the shared buffer).
pub enum Returned {
    Int(i32),
    Js(JsValue),
}

impl Returned {
    pub fn into_js(self, env: Env) -> JsValue {
        match self {
            Returned::Int(i) => env.int32(i),
            Returned::Js(v) => v,
        }
    }
}

/// Calls the guest function rooted in `func_slot` with host arguments;
/// `shared` is what the JS layer found them to be, if it looked (see
/// js::SharedCall).
pub fn call_guest(
    env: Env,
    vm: &Rc<VmState>,
    func_slot: Slot,
    this: Option<JsValue>,
    args: &[JsValue],
    shared: Option<&SharedCall>,
) -> JsResult<Returned> {
    if args.len() > MAX_GUEST_ARGS {
        return Err(too_many_args(env, args.len()));
    }
    // The usual call: no `this`, and only small integers, which the JS
    // layer left in the shared buffer. Nothing to convert, root or run:
    // the values go straight to the engine.
    if this.is_none() {
        if let Some(mut argv) = shared.and_then(|s| small_int_args(s, args.len())) {
            let func = vm.handles.borrow().get(func_slot);
            return call_values(env, vm, func, None, &mut argv[..args.len()], &StringArgs::default());
        }
    }
    let _scope = TempScope::new(vm);
    // Converting anything but a number may run host code (a getter, say)
    // that releases the function's slot: from then on the function is
    // rooted in a temporary of its own.
    let mut func_slot = func_slot;
    let mut protected = false;
    let mut protect = |func_slot: &mut Slot| {
        if !protected {
            protected = true;
            let f = vm.handles.borrow().get(*func_slot);
            *func_slot = Rooted::new(vm, f).slot;
        }
    };
    let this_rooted = match this {
        Some(t) => {
            protect(&mut func_slot);
            Some(to_guest(env, vm, t)?)
        }
        None => None,
    };
    // No heap allocation for the usual few arguments, and no root for the
    // small integers among them.
    let mut inline = [Arg::Immediate(engine::UNDEFINED); INLINE_ARGS];
    let mut spilled;
    let converted: &mut [Arg] = if args.len() <= INLINE_ARGS {
        &mut inline[..args.len()]
    } else {
        spilled = vec![Arg::Immediate(engine::UNDEFINED); args.len()];
        &mut spilled
    };
    let mut strings = StringArgs::default();
    for (i, a) in args.iter().enumerate() {
        let tag = shared.map_or(js::ARG_UNKNOWN, |s| s.tag(i));
        // A number runs no host code: the function's slot stays.
        let number = match tag {
            js::ARG_NUMBER => shared.map(|s| s.number(i)),
            js::ARG_STRING => None,
            _ => env.try_f64(*a),
        };
        converted[i] = match number {
            Some(d) => number_arg(env, vm, d)?,
            None => {
                let ty = if tag == js::ARG_STRING { Type::String } else { env.type_of(*a)? };
                if membrane::conversion_runs_host_code(ty) {
                    protect(&mut func_slot);
                }
                if ty == Type::String {
                    let (r, whole) = membrane::string_to_guest(env, vm, *a)?;
                    if whole {
                        strings.add(r.slot, *a);
                    }
                    Arg::Rooted(r.slot)
                } else {
                    Arg::Rooted(membrane::non_number_to_guest(env, vm, *a, ty)?.slot)
                }
            }
        };
    }
    invoke_returned(env, vm, func_slot, this_rooted.as_ref(), converted, &strings)
}

/// The string arguments of a call, rooted (temporaries of the call) with
/// the host strings they were made from: a call that returns one of them
/// (the very guest string, not merely an equal one) gives back the host's
/// own string instead of reading the guest's bytes into a new one. Only
/// strings the guest got whole: one with a lone surrogate comes back with
/// U+FFFD in its place, as any string the guest returns.
#[derive(Default)]
struct StringArgs {
    n: usize,
    args: [(Slot, JsValue); STRING_ARGS],
}

/// String arguments a call remembers (the first few).
const STRING_ARGS: usize = 3;

impl StringArgs {
    fn add(&mut self, slot: Slot, host: JsValue) {
        if self.n < STRING_ARGS {
            self.args[self.n] = (slot, host);
            self.n += 1;
        }
    }

    /// The host string `result` was made from, if it is one of these. The
    /// slots hold each string where the collector has moved it, so equal
    /// values are the same guest string.
    fn host_string(&self, vm: &VmState, result: Value) -> Option<JsValue> {
        if self.n == 0 {
            return None;
        }
        let h = vm.handles.borrow();
        self.args[..self.n].iter().find(|(slot, _)| h.get(*slot) == result).map(|&(_, host)| host)
    }
}

/// The first `n` arguments as guest values, if every one is a small
/// integer tagged as a number in the shared buffer.
fn small_int_args(shared: &SharedCall, n: usize) -> Option<[Value; js::SHARED_MAX_ARGS]> {
    if n > js::SHARED_MAX_ARGS {
        return None;
    }
    let mut argv = [engine::UNDEFINED; js::SHARED_MAX_ARGS];
    for (i, v) in argv.iter_mut().enumerate().take(n) {
        if shared.tag(i) != js::ARG_NUMBER {
            return None;
        }
        *v = membrane::small_int_to_guest(shared.number(i))?;
    }
    Some(argv)
}

/// A number as an argument: a small integer needs no root; any other
/// number is allocated in the guest heap (which runs no host code).
fn number_arg(env: Env, vm: &Rc<VmState>, d: f64) -> JsResult<Arg> {
    Ok(match membrane::small_int_to_guest(d) {
        Some(v) => Arg::Immediate(v),
        None => Arg::Rooted(membrane::number_to_guest(env, vm, d)?.slot),
    })
}

/// Calls the guest function rooted in `func_slot` with arguments `args`
/// and converts the result.
pub fn invoke(env: Env, vm: &Rc<VmState>, func_slot: Slot, this: Option<&Rooted>, args: &[Arg]) -> JsResult<JsValue> {
    invoke_returned(env, vm, func_slot, this, args, &StringArgs::default()).map(|r| r.into_js(env))
}

fn invoke_returned(
    env: Env,
    vm: &Rc<VmState>,
    func_slot: Slot,
    this: Option<&Rooted>,
    args: &[Arg],
    strings: &StringArgs,
) -> JsResult<Returned> {
    // Copy the argument values only now: nothing allocates between here and
    // the engine pushing them on its stack.
    let mut inline = [engine::UNDEFINED; INLINE_ARGS];
    let mut spilled;
    let argv: &mut [Value] = if args.len() <= INLINE_ARGS {
        &mut inline[..args.len()]
    } else {
        spilled = vec![engine::UNDEFINED; args.len()];
        &mut spilled
    };
    let h = vm.handles.borrow();
    for (i, a) in args.iter().enumerate() {
        argv[i] = match *a {
            Arg::Rooted(slot) => h.get(slot),
            Arg::Immediate(v) => v,
        };
    }
    let func = h.get(func_slot);
    let this_value = this.map(|t| h.get(t.slot));
    drop(h);
    call_values(env, vm, func, this_value, argv, strings)
}

/// Calls `func` with `this` and `argv`, values read from their roots (or
/// needing none) just before: nothing may allocate between that and here.
fn call_values(
    env: Env,
    vm: &Rc<VmState>,
    func: Value,
    this_value: Option<Value>,
    argv: &mut [Value],
    strings: &StringArgs,
) -> JsResult<Returned> {
    let mut result = engine::UNDEFINED;
    let outcome = vm.engine_call(env, |e| e.call(func, this_value, argv, &mut result));
    let converted = match outcome {
        Ok(()) if vm.status() == Status::Live => match engine::int14_decode(result) {
            Some(i) => Ok(Returned::Int(i)),
            None => match strings.host_string(vm, result) {
                Some(host) => Ok(Returned::Js(host)),
                None => to_host(env, vm, result).map(Returned::Js),
            },
        },
        outcome => {
            // A call that returned normally from a VM that failed or was
            // disposed meanwhile has no result to give.
            let failure = outcome.err().unwrap_or(CallFailure::Engine(Failure::Unusable(vm.unusable().unwrap_or(errors::Unusable::EngineFreed))));
            if let Some(e) = vm.take_breakpoint_error(env) {
                Err(env.throw(e))
            } else if let (Status::Poisoned(code), CallFailure::Engine(_)) = (vm.status(), &failure) {
                // A fatal error during the call (perhaps in a nested call the
                // host caught): the VM is unusable.
                Err(throw_failure(env, vm.fatal_failure(code)))
            } else if vm.status() == Status::Disposed && !matches!(failure, CallFailure::Engine(Failure::Fatal { .. })) {
                // Disposed during the call: the result cannot be read.
                Err(env.throw_error("Microvium VM was disposed during the call"))
            } else {
                Err(call_failure(env, vm, failure, result))
            }
        }
    };
    // A fatal error in the collection that relieves heap pressure is this
    // call's failure: the VM is unusable from here on.
    if let Err(f @ Failure::Fatal { .. }) = after_call(env, vm) {
        return Err(throw_failure(env, f));
    }
    converted
}

/// What waits for a call into the guest to end: the host exception stash
/// cleared and the Promises of settled guest promises settled (once the VM
/// is idle), and the guest heap relieved of pressure.
fn after_call(env: Env, vm: &Rc<VmState>) -> Result<(), Failure> {
    vm.clear_host_exception_if_idle(env);
    settle_promises(env, vm);
    relieve_pressure(env, vm)
}

/// The engine's host-function callback for every import. The glue calls it
/// with the engine's host data (c/engine.c, glue_host_function).
pub unsafe extern "C" fn host_function_trampoline(
    host: *const c_void,
    id: u16,
    result: *mut Value,
    args: *mut Value,
    argc: u8,
) -> i32 {
    // SAFETY: host is the host data of the instance calling, its VmState
    // (see restore), which the active call keeps alive.
    let vm_ptr = host as *const VmState;
    // SAFETY: as above. The engine runs on the VM's own thread only, so the
    // VM's home env is this thread's (no thread-local lookup).
    let Some(env) = (unsafe { &*vm_ptr }).home_env() else { return errors::E_HOST_ERROR };
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
        if let Some(fatal) = vm.fatal_return() {
            return fatal;
        }
        if vm.status() != Status::Live || vm.has_breakpoint_error() {
            return errors::E_HOST_ERROR;
        }
        let crossing = vm.home_thread.crossing_scope(env);
        let code = {
            let _temps = TempScope::new(&vm);
            host_call(env, &vm, id, result, args, argc, &crossing)
        };
        let relieved = relieve_pressure_in_crossing(env, &vm);
        if let runtime::Crossing::Own(scope) = crossing {
            env.close_scope(scope);
        }
        // A fatal error of this VM while the host function ran (in a nested
        // call, a property read, the collection just above), even one the
        // host caught: the glue ends the whole engine call with it, so that
        // not one more guest instruction runs.
        if let Some(fatal) = vm.fatal_return() {
            return fatal;
        }
        if relieved.is_err() && code == errors::E_SUCCESS {
            errors::E_HOST_ERROR
        } else {
            code
        }
    }));
    outcome.unwrap_or(errors::E_HOST_ERROR)
}

fn host_call(
    env: Env,
    vm: &Rc<VmState>,
    id: u16,
    result: *mut Value,
    args: *mut Value,
    argc: u8,
    crossing: &runtime::Crossing,
) -> i32 {
    // The async protocol must start before anything else touches the engine.
    let mut async_callback = None;
    if vm.import(id).map(|i| i.is_async).unwrap_or(false) {
        // SAFETY: called first thing in the host function, as the engine
        // requires; result is the engine's result slot.
        let started = vm.engine_op(|e| unsafe { e.async_start(result) });
        match started {
            Ok(callback) => {
                // Rooted until `resume` releases it.
                async_callback = Some(vm.handles.borrow_mut().alloc(vm.engine(), callback));
            }
            Err(Failure::Fatal { .. }) | Err(Failure::Unusable(_)) => return errors::E_HOST_ERROR,
            // No await points in the script (MVM_E_ASYNC_WITHOUT_AWAIT): the
            // engine has no promise to give the guest, and the host's promise
            // cannot be passed in (its rejection would then go unhandled and
            // end the process), so the host function is not called.
            Err(Failure::Error(code)) => {
                let detail = format!(
                    "import {id} is async, but the guest script has no `await`, so it cannot receive a promise; the host function was not called"
                );
                errors::throw(env, code, Some(&detail));
                return throw_into_guest(env, vm, result);
            }
        }
    }
    let Some(func) = vm.import_function_in(env, id, crossing) else {
        let _ = env.throw_error(&format!("Microvium import {id} is no longer available"));
        return throw_into_guest(env, vm, result);
    };
    let undefined = env.undefined();
    let mut inline = [undefined; INLINE_ARGS];
    let mut spilled;
    let host_args: &mut [JsValue] = if argc as usize <= INLINE_ARGS {
        &mut inline[..argc as usize]
    } else {
        spilled = vec![undefined; argc as usize];
        &mut spilled
    };
    for (i, slot) in host_args.iter_mut().enumerate() {
        // SAFETY: the engine passes argc values at args; reading them does
        // not allocate, and they are re-read for each argument.
        let v = unsafe { *args.add(i) };
        match to_host(env, vm, v) {
            Ok(h) => *slot = h,
            Err(_) => return throw_into_guest(env, vm, result),
        }
    }
    let call = vm.home_thread.call(env, func, undefined, host_args);
    if let Some(slot) = async_callback {
        if vm.status() != Status::Live {
            // The host function disposed the VM or hit a fatal error of it
            // (in a nested call it may have caught): there is no guest to
            // resume. The host's promise must not end the process with an
            // unhandled rejection; an exception it threw stays pending, for
            // the host caller.
            vm.handles.borrow_mut().release(slot);
            if let Ok(returned) = call {
                if env.is_promise(returned) {
                    let _ = crate::membrane::mark_handled(env, returned);
                }
            }
            return errors::E_HOST_ERROR;
        }
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
        return errors::E_SUCCESS;
    }
    let returned = match call {
        Ok(r) => r,
        Err(_) => return throw_into_guest(env, vm, result),
    };
    if vm.status() != Status::Live {
        return errors::E_HOST_ERROR;
    }
    // A small integer needs neither a root nor the general conversion.
    if let Some(v) = env.try_f64(returned).and_then(membrane::small_int_to_guest) {
        // SAFETY: result points to the engine's GC-reachable result slot.
        unsafe { *result = v };
        return errors::E_SUCCESS;
    }
    match to_guest(env, vm, returned) {
        Ok(r) => {
            // SAFETY: as above.
            unsafe { *result = r.get() };
            errors::E_SUCCESS
        }
        Err(_) => {
            // A promise from an import not marked async: the guest gets the
            // TypeError, which reports the failure; its rejection must not
            // also end the process as an unhandled one.
            if env.is_promise(returned) {
                let pending = env.take_exception();
                let _ = crate::membrane::mark_handled(env, returned);
                env.throw(pending);
            }
            throw_into_guest(env, vm, result)
        }
    }
}

/// Moves the pending JS exception into the guest as a thrown value.
fn throw_into_guest(env: Env, vm: &Rc<VmState>, result: *mut Value) -> i32 {
    let exception = env.take_exception();
    if vm.status() != Status::Live {
        // Put it back so that the host caller sees it.
        env.throw(exception);
        return errors::E_HOST_ERROR;
    }
    let Ok(copy) = guest_copy_of_exception(env, vm, exception) else {
        // Only when the VM failed meanwhile.
        return errors::E_HOST_ERROR;
    };
    let value = copy.get();
    // SAFETY: as in host_call.
    unsafe { *result = value };
    // Keep the copy rooted in the stash so it can be matched later.
    let slot = vm.handles.borrow_mut().alloc(vm.engine(), value);
    vm.stash_host_exception(env, exception, slot);
    errors::E_UNCAUGHT_EXCEPTION
}

/// The guest copy of a host exception, for the guest to catch. If it cannot
/// cross (a symbol, say), the guest gets a message instead. Fails (with a
/// pending exception, the original) only if the VM failed meanwhile.
pub fn guest_copy_of_exception<'a>(env: Env, vm: &'a Rc<VmState>, exception: JsValue) -> JsResult<Rooted<'a>> {
    match to_guest(env, vm, exception) {
        Ok(r) => return Ok(r),
        Err(_) => {
            let _ = env.take_exception();
            if vm.status() != Status::Live {
                return Err(env.throw(exception));
            }
        }
    }
    let message = "a host function threw a value that cannot be passed into the VM";
    match env.string(message.as_bytes()).and_then(|s| to_guest(env, vm, s)) {
        Ok(r) => Ok(r),
        Err(_) => {
            let _ = env.take_exception();
            if vm.status() != Status::Live {
                return Err(env.throw(exception));
            }
            Ok(Rooted::new(vm, engine::UNDEFINED))
        }
    }
}
