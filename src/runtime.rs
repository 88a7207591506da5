//! Per-thread runtime state: the JavaScript helpers the JS layer registers
//! once (error class, proxy factory, type classifier...), and the nesting
//! depth of host/guest calls. (The thread's Node-API env is js.rs's:
//! `js::current_env`.)
//!
//! Every Node.js thread (main or worker) loads its own instance of the addon
//! and runs only its own VMs, so thread-locals are the natural home.

use crate::js::{self, current_env, Env, JsResult, JsValue, RawRef};
use std::cell::Cell;

#[derive(Clone, Copy)]
pub enum Helper {
    /// `(code, errno, message) => MicroviumError`
    MakeError = 0,
    /// `(kind, core, slot) => host value` for guest objects, arrays,
    /// classes, Uint8Arrays and promises.
    MakeValue = 1,
    /// `(value) => typeName | null`: null if the object may be deep-copied
    /// into the guest, else the name of its type for the TypeError.
    Classify = 2,
    /// `(core, callbackSlot, ok, valueOrPromise) => void`: waits for an async
    /// import's result and resumes the guest through `resume`.
    AwaitHost = 3,
    /// `(gc, major) => void`: runs a JavaScript collection with a VM's
    /// collector (see pressure.rs).
    CollectGarbage = 4,
    /// The original `Math.pow`.
    MathPow = 5,
    /// `Object.prototype`, to recognise plain objects without a JS call.
    ObjectPrototype = 6,
    /// `(core) => Promise`: a new pending Promise, its rejection marked
    /// handled, held by the core until SettlePromise settles it (see
    /// membrane.rs).
    NewPromise = 7,
    /// `(promise, ok, value, core) => void`: settles a Promise of NewPromise.
    SettlePromise = 8,
}

const HELPER_COUNT: usize = 9;

thread_local! {
    static HELPERS: Cell<[RawRef; HELPER_COUNT]> = const { Cell::new([std::ptr::null_mut(); HELPER_COUNT]) };
    /// Host/guest calls nested now, the native stack address of the
    /// outermost, and the open crossing scopes (one thread-local: DepthGuard
    /// and a crossing look it up once).
    static NESTING: Nesting = const {
        Nesting { depth: Cell::new((0, 0)), crossing: Cell::new(None), scopes_made: Cell::new(0) }
    };
    /// Weak reference to an object nothing else holds: any V8 collection
    /// (a minor one included) clears it. See collections_seen.
    static CANARY: Cell<RawRef> = const { Cell::new(std::ptr::null_mut()) };
    static COLLECTIONS: Cell<u32> = const { Cell::new(0) };
}

/// A number that changes after V8 has run a collection (it counts those
/// seen, not all of them). One reference read when nothing happened.
pub fn collections_seen(env: Env) -> u32 {
    let canary = CANARY.with(|c| c.get());
    if !canary.is_null() && env.ref_value(canary).is_some() {
        return COLLECTIONS.with(|c| c.get());
    }
    env.delete_ref(canary);
    let fresh = env.object().and_then(|o| env.new_ref(o, 0)).unwrap_or_else(|_| {
        let _ = env.take_exception();
        std::ptr::null_mut()
    });
    CANARY.with(|c| c.set(fresh));
    COLLECTIONS.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    })
}

pub fn set_helpers(env: Env, values: [JsValue; HELPER_COUNT]) -> JsResult<()> {
    let mut refs = [std::ptr::null_mut(); HELPER_COUNT];
    for (i, v) in values.iter().enumerate() {
        refs[i] = env.new_ref(*v, 1)?;
    }
    let old = HELPERS.with(|h| h.replace(refs));
    let first = old.iter().all(|r| r.is_null());
    for r in old {
        env.delete_ref(r);
    }
    if first {
        // Delete the references when this thread's environment goes away
        // (a worker exiting), instead of leaking them.
        env.on_cleanup(release_helpers);
    }
    Ok(())
}

fn release_helpers() {
    let Some(env) = current_env() else { return };
    let refs = HELPERS.with(|h| h.replace([std::ptr::null_mut(); HELPER_COUNT]));
    for r in refs {
        env.delete_ref(r);
    }
    env.delete_ref(CANARY.with(|c| c.replace(std::ptr::null_mut())));
    js::clear_current_env();
}

pub fn helper(env: Env, which: Helper) -> JsResult<JsValue> {
    let r = HELPERS.with(|h| h.get()[which as usize]);
    if r.is_null() {
        return Err(env.throw_error("@microvium/runtime: native helpers not initialised"));
    }
    env.ref_value(r).ok_or_else(|| env.throw_error("@microvium/runtime: helper collected"))
}

/// Settles a Promise of the NewPromise helper (see membrane::make_promise;
/// a no-op if it is settled already).
/// `core` is the VM's core object, if it is still alive (its `pending` set
/// holds the Promise until now).
pub fn settle_promise(env: Env, promise: JsValue, ok: bool, value: JsValue, core: Option<JsValue>) {
    let core = core.unwrap_or_else(|| env.undefined());
    let done = helper(env, Helper::SettlePromise)
        .and_then(|f| env.call(f, env.undefined(), &[promise, env.boolean(ok), value, core]));
    if done.is_err() {
        let _ = env.take_exception();
    }
}

/// Host/guest nesting limits. Each guest→host→guest level costs native stack
/// that V8 does not see (engine frames, Node-API frames); too deep and the
/// process dies with SIGSEGV instead of a JavaScript error. Both the level
/// count and the native stack used since the outermost entry are capped.
pub const MAX_DEPTH: u32 = 64;
const MAX_NATIVE_STACK: usize = 512 * 1024;

struct Nesting {
    depth: Cell<(u32, usize)>,
    /// The crossing scope of the innermost engine call, if it has one (see
    /// crossing_scope); the guards of outer calls keep theirs.
    crossing: Cell<Option<CrossingScope>>,
    /// Crossing scopes opened so far on this thread (their serials).
    scopes_made: Cell<u64>,
}

pub struct DepthGuard {
    home: HomeThread,
    /// The crossing scope of the engine call this one is nested in.
    outer_crossing: Option<CrossingScope>,
    env: Env,
}

impl DepthGuard {
    /// An engine call of a VM whose home thread (this one) is `home`; None
    /// when entering would exceed the limits.
    pub fn enter(home: &HomeThread, env: Env) -> Option<DepthGuard> {
        let marker = 0u8;
        let here = &marker as *const u8 as usize;
        let n = home.nesting();
        let (depth, base) = n.depth.get();
        if depth == 0 {
            n.depth.set((1, here));
        } else if depth >= MAX_DEPTH || base.abs_diff(here) > MAX_NATIVE_STACK {
            return None;
        } else {
            n.depth.set((depth + 1, base));
        }
        Some(DepthGuard { home: *home, outer_crossing: n.crossing.take(), env })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        // The guard is !Send (HomeThread holds raw pointers), so this runs
        // on the thread that made it.
        let n = self.home.nesting();
        // This call's crossing scope, if it opened one, is the innermost
        // open scope: the ones its crossings opened inside are closed.
        if let Some(open) = n.crossing.replace(self.outer_crossing.take()) {
            self.env.close_scope(open.scope);
        }
        let (depth, base) = n.depth.get();
        n.depth.set((depth - 1, base));
    }
}

// Handle scopes of guest→host crossings. Each crossing (a host function the
// guest calls) makes a few handles (the function, its arguments, its
// result) that must not pile up over a guest loop of a million crossings,
// but a Node-API handle scope per crossing costs a heap allocation and two
// calls into V8. So one scope serves the crossings of one engine call, up to
// CROSSINGS_PER_SCOPE of them; it is closed and another opened after that,
// and closed when the engine call ends (DepthGuard). This keeps the scopes
// in order: between two crossings of an engine call only engine code runs,
// and any scope a crossing opens inside (the host function's, a nested
// call's) is closed before the crossing returns.
const CROSSINGS_PER_SCOPE: u32 = 64;

struct CrossingScope {
    scope: js::Scope,
    uses: u32,
    serial: u64,
}

/// The handle scope a crossing runs in.
pub enum Crossing {
    /// Its own, which it must close (no engine call is running).
    Own(js::Scope),
    /// The shared scope with this serial (never 0, never reused), open
    /// until the crossing ends at least: a JS value a crossing got in it
    /// stays valid for any later crossing whose serial is the same.
    Shared(u64),
}

/// This thread's state that crossings use, found once (when a VM is made)
/// instead of at every crossing: each thread-local lookup is a call into
/// the dynamic linker in a shared object. Only for the thread that made it,
/// which is the only one that runs the VM's engine (VmState::check_usable).
#[derive(Clone, Copy)]
pub struct HomeThread {
    nesting: *const Nesting,
    js: js::ThreadRef,
}

impl HomeThread {
    pub fn this_thread() -> HomeThread {
        HomeThread { nesting: NESTING.with(|n| n as *const Nesting), js: js::ThreadRef::this_thread() }
    }

    /// Whether the running thread is this one (one thread-local lookup).
    pub fn is_current(&self) -> bool {
        NESTING.with(|n| std::ptr::eq(n, self.nesting))
    }

    fn nesting(&self) -> &Nesting {
        // SAFETY: Nesting has no destructor, so the thread-local stays where
        // it is for the whole life of its thread, and a HomeThread is used
        // only on the thread that made it (see above).
        unsafe { &*self.nesting }
    }

    /// Makes sure the crossing that begins has an open handle scope (see
    /// above). Returns a scope the crossing must close itself, when it does
    /// not run inside an engine call (DepthGuard).
    pub fn crossing_scope(&self, env: Env) -> Crossing {
        let n = self.nesting();
        if n.depth.get().0 == 0 {
        return Crossing::Own(env.open_scope());
    }
        let open = match n.crossing.take() {
            Some(mut open) if open.uses < CROSSINGS_PER_SCOPE => {
                open.uses += 1;
                open
            }
            full => {
                // The innermost open scope: those opened since are closed.
                if let Some(full) = full {
                    env.close_scope(full.scope);
                }
                let serial = n.scopes_made.get() + 1;
                n.scopes_made.set(serial);
                CrossingScope { scope: env.open_scope(), uses: 1, serial }
            }
        };
        let serial = open.serial;
        n.crossing.set(Some(open));
        Crossing::Shared(serial)
    }

    /// `Env::call`, from a crossing.
    pub fn call(&self, env: Env, func: JsValue, this: JsValue, args: &[JsValue]) -> JsResult<JsValue> {
        self.js.call(env, func, this, args)
    }
}

/// `Math.pow(x, y)` as V8 computes it, if this thread has a JS environment.
pub fn math_pow(x: f64, y: f64) -> Option<f64> {
    let env = current_env()?;
    let r = HELPERS.with(|h| h.get()[Helper::MathPow as usize]);
    if r.is_null() {
        return None;
    }
    let scope = env.open_scope();
    let result = (|| {
        let f = env.ref_value(r)?;
        let v = env.call(f, env.undefined(), &[env.double(x), env.double(y)]).ok()?;
        env.try_f64(v)
    })();
    if result.is_none() && env.is_exception_pending() {
        let _ = env.take_exception();
    }
    env.close_scope(scope);
    result
}

/// Polled by the engine about once per million instructions (GLUE_POLL in
/// c/microvium_port.h): true when this thread can no longer run JavaScript,
/// as when its worker is being terminated. Calling into JavaScript is what
/// lets V8 deliver a pending termination; the call is to the original
/// Math.pow, which runs no user code.
#[no_mangle]
pub extern "C" fn host_should_abort() -> bool {
    let Some(env) = current_env() else { return false };
    if env.is_exception_pending() {
        return false;
    }
    let r = HELPERS.with(|h| h.get()[Helper::MathPow as usize]);
    if r.is_null() {
        return false;
    }
    let scope = env.open_scope();
    let ok = env.ref_value(r).map(|f| env.call(f, env.undefined(), &[env.double(1.0), env.double(1.0)]).is_ok());
    // A failed call with an ordinary exception (say, a RangeError near the
    // stack limit) is not a termination: clear it and go on. A termination
    // leaves no exception object to take.
    let abort = if ok == Some(false) {
        let e = env.take_exception();
        e.is_null() || !matches!(env.type_of(e), Ok(js::Type::Object))
    } else {
        false
    };
    env.close_scope(scope);
    abort
}
