//! Guest promises as host Promises.
//!
//! Every host Promise for a guest promise settles: when the guest promise
//! does (checked after every outermost engine call), or, rejected, when its
//! VM hits a fatal error or is disposed first.
//!
//! Lifetime. A pending Promise must not keep its VM alive, nor the VM the
//! Promise: a VM dropped without `dispose()` while one of its promises is
//! pending would otherwise never be freed (the two would hold each other
//! through native references the JavaScript collector cannot see). So:
//! - the Promise holds nothing of its VM (like every host value, it carries
//!   only an integer wrap, see membrane::attach);
//! - the VM holds the Promise weakly (`PendingPromise::promise`), and its
//!   resolving functions are kept in a WeakMap keyed by the Promise in the JS
//!   layer (lib/async.js), alive exactly as long as the Promise is.
//! A Promise that nobody holds is collected with or without its VM. A
//! Promise the host holds, whose VM is collected, stays pending: only guest
//! code could settle it, and nothing can run this VM's guest code any more.
//! It is not rejected then: the moment would be the collector's choice, and
//! a `.then` derived from it without a rejection handler would turn that
//! into an unhandled rejection (which ends the process by default).

use crate::errors;
use crate::handles::Slot;
use crate::js::{CallInfo, Env, JsResult, JsValue};
use crate::membrane::to_host;
use crate::runtime::{self, Helper};
use crate::vm::{PendingPromise, Status, VmState};
use std::rc::Rc;

/// A host Promise for a guest promise (rooted in `slot`). Rejections are
/// marked handled so that an ignored guest rejection does not become an
/// unhandled-rejection warning.
pub fn make_promise(env: Env, vm: &Rc<VmState>, slot: Slot, generation: u32) -> JsResult<JsValue> {
    let new_promise = runtime::helper(env, Helper::NewPromise)?;
    let promise = env.call(new_promise, env.undefined(), &[])?;
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
    crate::membrane::attach(env, vm, promise, slot, generation)
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

/// Settles a Promise of make_promise (a no-op if it is settled already).
fn settle(env: Env, promise: JsValue, ok: bool, value: JsValue) {
    let done = runtime::helper(env, Helper::SettlePromise)
        .and_then(|f| env.call(f, env.undefined(), &[promise, env.boolean(ok), value]));
    if done.is_err() {
        let _ = env.take_exception();
    }
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
        reject_pending(env, vm);
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
        settle(env, promise, ok, host);
    }
    vm.pending_promises.borrow_mut().extend(still);
    if vm.status() != Status::Live {
        reject_pending(env, vm);
    }
}

/// Rejects every pending Promise of a VM that failed (a fatal error) or was
/// disposed: its guest promises can never settle now. May run in the middle
/// of an operation; a pending JavaScript exception is kept.
pub fn reject_pending(env: Env, vm: &VmState) {
    if vm.pending_promises.borrow().is_empty() {
        return;
    }
    let status = vm.status();
    if status == Status::Live {
        return;
    }
    let pending = std::mem::take(&mut *vm.pending_promises.borrow_mut());
    let saved = if env.is_exception_pending() { Some(env.take_exception()) } else { None };
    let scope = env.open_scope();
    for p in pending {
        let promise = env.ref_value(p.promise);
        env.delete_ref(p.promise);
        let Some(promise) = promise else { continue };
        if let Some(reason) = rejection(env, status) {
            settle(env, promise, false, reason);
        }
    }
    env.close_scope(scope);
    if let Some(e) = saved {
        env.throw(e);
    }
}

fn rejection(env: Env, status: Status) -> Option<JsValue> {
    let made = match status {
        Status::Poisoned(code) => {
            errors::unusable_error(env, code, Some("the VM failed while this promise was pending; it can never settle now"))
        }
        _ => env.string(b"Microvium VM was disposed before this promise settled").and_then(|m| env.error(m)),
    };
    match made {
        Ok(e) => Some(e),
        Err(_) => {
            let _ = env.take_exception();
            None
        }
    }
}
