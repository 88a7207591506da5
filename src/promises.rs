//! Guest promises as host Promises.

use crate::engine;
use crate::handles::Slot;
use crate::js::{Env, JsResult, JsValue};
use crate::vm::{Status, VmState};
use napi::sys;
use std::rc::Rc;
use crate::membrane::to_host;

/// A host Promise for a guest promise. It settles when the guest promise
/// does (see settle_promises); rejections are marked handled so that an
/// ignored guest rejection does not become an unhandled-rejection warning.
pub fn make_promise(env: Env, vm: &Rc<VmState>, slot: Slot, generation: u32) -> JsResult<JsValue> {
    let mut deferred = std::ptr::null_mut();
    let mut promise = std::ptr::null_mut();
    // SAFETY: out-pointers to locals.
    let st = unsafe { sys::napi_create_promise(env.0, &mut deferred, &mut promise) };
    if st != sys::Status::napi_ok {
        return Err(env.throw_error("Microvium: could not create a Promise"));
    }
    mark_handled(env, promise)?;
    crate::membrane::attach(env, vm, promise, slot, generation)?;
    vm.pending_promises.borrow_mut().push(crate::vm::PendingPromise { slot, generation, deferred });
    settle_promises(env, vm);
    Ok(promise)
}

/// Gives a promise a rejection handler that does nothing, so that Node does
/// not report its rejection as unhandled (for promises whose outcome is
/// reported some other way).
pub fn mark_handled(env: Env, promise: JsValue) -> JsResult<()> {
    let then = env.get_named(promise, "then")?;
    let noop = env.function("", Some(noop_callback), std::ptr::null_mut())?;
    env.call(then, promise, &[env.undefined(), noop])?;
    Ok(())
}

unsafe extern "C" fn noop_callback(env: sys::napi_env, _info: sys::napi_callback_info) -> sys::napi_value {
    Env(env).undefined()
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
        let original = if state == 2 { vm.take_async_rejection(env, out) } else { None };
        let host = match original {
            Some(v) => v,
            None => match to_host(env, vm, out) {
                Ok(v) => v,
                Err(_) => env.take_exception(),
            },
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
