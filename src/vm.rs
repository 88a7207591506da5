//! One restored VM: its engine instance, snapshot bytes, handle table, the
//! imports it calls, and its lifetime (live, poisoned by a fatal error,
//! disposed).
//!
//! `VmState` is owned (`Rc`) by the JavaScript "core" object of the VM, which
//! every host value that represents a guest value references (proxy targets
//! and function closures hold it). The engine is freed on `dispose()` or when
//! the core is garbage collected, whichever comes first; after `dispose()`
//! the state stays behind as a tombstone so late uses get a clear error.

use crate::engine::{self, Engine, Value};
use crate::errors::{Failure, Unusable};
use crate::errors;
use crate::handles::{HandleTable, Slot};
use crate::key_cache::KeyCache;
use crate::js::{Env, JsResult, JsValue, Pending, RawRef};
use crate::runtime::{self, DepthGuard};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::rc::Rc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Live,
    /// A fatal engine error (its code) left the engine in an unknown state.
    Poisoned(i32),
    Disposed,
}

pub struct VmState {
    /// Declared first, so dropped before the handle table whose handles it
    /// has as roots.
    engine: Engine,
    pub handles: RefCell<HandleTable>,
    /// Import id → weak reference to the host function. The functions are
    /// held strongly by the JavaScript core object, so a weak reference here
    /// keeps the VM collectable even when an import closes over the VM.
    imports: Vec<Import>,
    pub breakpoint: Cell<RawRef>,
    status: Cell<Status>,
    /// The code of the fatal error that happened at some point, 0 if none
    /// (the status may since have become Disposed): the engine's structures
    /// are not to be trusted.
    fatal: Cell<i32>,
    /// The thread that made this VM, the only one that may use it, and its
    /// state for crossings (used on that thread only).
    pub home_thread: runtime::HomeThread,
    /// The env of the thread that made this VM (see check_usable).
    home: Option<Env>,
    /// Engine calls in progress on this VM (re-entrant calls nest).
    active: Cell<u32>,
    /// The last exception a host function threw into the guest: the original
    /// JavaScript value and the slot of its guest copy. If the guest does not
    /// catch it, the host caller gets the original back.
    host_exception: RefCell<Option<(RawRef, Slot)>>,
    pub core: Cell<RawRef>,
    /// Host Promises of guest promises, to settle when the guest ones do
    /// (see membrane.rs, the part on promises).
    pub pending_promises: RefCell<Vec<PendingPromise>>,
    /// Rejections passed to guests awaiting async imports: the original
    /// value (in a holder object) and the slot of its guest copy, so that a
    /// rejection the guest does not catch reaches the host as the original.
    /// The most recent few only.
    async_rejections: RefCell<Vec<(RawRef, Slot)>>,
    /// Guest heap size above which the host relieves pressure (see
    /// relieve_pressure in pressure.rs).
    pub pressure_mark: Cell<u16>,
    /// What the last look at the heap's size saw (see pressure::heap_size_near).
    pub heap_look: Cell<(u32, u32, u16)>,
    /// The import function last got in a shared crossing scope: (the
    /// scope's serial, 0 for none; the import id; its JS value).
    import_seen: Cell<(u64, u16, JsValue)>,
    /// Host-held values needed before relieve_pressure forces another
    /// JavaScript collection (only with a collector, see `collector`).
    pub force_gc_floor: Cell<usize>,
    /// Weak reference to the function that runs a JavaScript collection for
    /// this VM (`opts.gc`; the JS core object holds it strongly), or null:
    /// then the VM never forces one.
    pub collector: Cell<RawRef>,
    /// pressure::collections_seen when this VM last swept.
    pub swept_at: Cell<u32>,
    /// Operations since pressure::sweep_after_collection last looked.
    pub ops_since_sweep_check: Cell<u32>,
    /// What this VM last reported to V8 as external memory (see
    /// pressure::account).
    pub reported_memory: Cell<i64>,
    /// Distinguishes this VM's host values from other VMs' (see
    /// membrane::attach): unique per thread.
    pub serial: u32,
    /// Host values made while a vm.scope() is open: (slot, generation),
    /// released when the scope that was innermost at the time ends.
    scope_log: RefCell<Vec<(Slot, u32)>>,
    /// Where each open scope starts in `scope_log`, outermost first.
    scope_marks: RefCell<Vec<usize>>,
    /// Log length at which entries for values already gone are dropped (a
    /// long scope whose values V8 collects must not grow the log forever).
    scope_compact_at: Cell<usize>,
    /// An exception thrown by the breakpoint callback, with the gas setting
    /// to restore: the engine cannot unwind from a breakpoint, so the call is
    /// stopped by the gas counter and the exception rethrown to the host.
    breakpoint_error: RefCell<Option<(RawRef, i32)>>,
    pub export_ids: Vec<u16>,
    pub required_version: String,
    /// Property names already converted to guest keys (see keys.rs).
    pub keys: RefCell<KeyCache>,
    /// Reused UTF-8 buffer for strings going into the guest.
    pub string_buf: RefCell<Vec<u8>>,
}

pub struct Import {
    pub id: u16,
    pub function: RawRef,
    /// Called with the engine's async protocol (mvm_asyncStart): the guest
    /// gets a promise that settles when the host's promise does.
    pub is_async: bool,
}

/// A host Promise standing for a guest promise, settled by the host once the
/// guest promise settles (checked after every outermost engine call), or
/// rejected when the VM fails or is disposed first.
pub struct PendingPromise {
    pub slot: Slot,
    pub generation: u32,
    /// Weak: a pending Promise nobody holds must not keep its VM alive (nor
    /// the VM it); see membrane.rs, the part on promises.
    pub promise: RawRef,
}

impl VmState {
    /// The state of a VM about to be restored on this thread (see
    /// restore.rs): `engine` holds its snapshot, not yet restored.
    pub fn new(engine: Engine, imports: Vec<Import>, export_ids: Vec<u16>, required_version: String) -> Rc<VmState> {
        let state = Rc::new(VmState {
            engine,
            handles: RefCell::new(HandleTable::new()),
            imports,
            breakpoint: Cell::new(std::ptr::null_mut()),
            status: Cell::new(Status::Live),
            fatal: Cell::new(0),
            home_thread: runtime::HomeThread::this_thread(),
            home: crate::js::current_env(),
            active: Cell::new(0),
            host_exception: RefCell::new(None),
            core: Cell::new(std::ptr::null_mut()),
            pending_promises: RefCell::new(Vec::new()),
            async_rejections: RefCell::new(Vec::new()),
            pressure_mark: Cell::new(PRESSURE_MARK),
            heap_look: Cell::new((u32::MAX, u32::MAX, u16::MAX)),
            import_seen: Cell::new((0, 0, std::ptr::null_mut())),
            force_gc_floor: Cell::new(FORCE_GC_MIN_HOST_VALUES),
            collector: Cell::new(std::ptr::null_mut()),
            reported_memory: Cell::new(0),
            swept_at: Cell::new(0),
            ops_since_sweep_check: Cell::new(0),
            serial: next_serial(),
            scope_log: RefCell::new(Vec::new()),
            scope_marks: RefCell::new(Vec::new()),
            scope_compact_at: Cell::new(SCOPE_LOG_MIN),
            breakpoint_error: RefCell::new(None),
            export_ids,
            required_version,
            keys: RefCell::new(KeyCache::default()),
            string_buf: RefCell::new(Vec::new()),
        });
        // The Rc keeps the state at a fixed address for as long as the
        // engine (which it owns) lives: the engine's callbacks find it so.
        state.engine.set_host(Rc::as_ptr(&state) as *const c_void);
        state
    }

    /// The engine, for entries that cannot fail or run guest code (see
    /// engine_op and engine_call for the others).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn gc_epoch(&self) -> u32 {
        self.engine.gc_epoch()
    }

    pub fn status(&self) -> Status {
        self.status.get()
    }

    /// Poisons the VM if an inspection function (glue_kind and the like,
    /// which return a value, not a status) hit a fatal error. Returns the
    /// code, once per error.
    pub fn take_inspection_fatal(&self) -> Option<i32> {
        let code = self.engine.take_fatal_code();
        if code == 0 {
            return None;
        }
        self.poison(code);
        Some(code)
    }

    /// Records a fatal engine error: nothing may run in this VM any more, and
    /// no promise that came out of it can settle now, so they all reject.
    fn poison(&self, code: i32) {
        if self.fatal.get() == 0 {
            self.fatal.set(code);
        }
        if self.status.get() == Status::Live {
            self.status.set(Status::Poisoned(code));
        }
        if let Some(env) = crate::js::current_env() {
            self.reject_pending_promises(env);
        }
    }

    /// What a host function or breakpoint callback returns to the glue when
    /// this VM hit a fatal error while it ran (in a nested call the host may
    /// have caught): the glue ends the whole engine call at once with it.
    pub fn fatal_return(&self) -> Option<i32> {
        match self.fatal.get() {
            0 => None,
            code => Some(engine::FATAL_BASE + code),
        }
    }

    /// What a failed check said about a fatal error, in a user's terms.
    pub fn fatal_reason(&self) -> Option<&'static str> {
        match self.engine.fatal_reason() {
            engine::REASON_NO_SCOPE => Some(
                "the bytecode uses a closure variable outside the closure scopes that exist. The microvium \
                 8.0.0 compiler produces such bytecode for a function that creates closures in a \
                 `for (let ...)` loop and, after the loop, closures or classes that use the function's own \
                 variables (a compiler defect; move the loop into a function of its own)",
            ),
            _ => None,
        }
    }

    /// The env of the thread that made this VM (the only thread that runs
    /// its engine), None if it was made without one.
    pub fn home_env(&self) -> Option<Env> {
        self.home
    }

    pub fn is_foreign_thread(&self) -> bool {
        !self.home_thread.is_current()
    }

    /// Why the VM cannot be used now, from this thread; None if it can.
    pub fn unusable(&self) -> Option<Unusable> {
        if !self.home_thread.is_current() {
            return Some(Unusable::ForeignThread);
        }
        self.take_inspection_fatal();
        match self.status.get() {
            Status::Live if self.is_engine_freed() => Some(Unusable::EngineFreed),
            Status::Live => None,
            Status::Disposed => Some(Unusable::Disposed),
            Status::Poisoned(code) => Some(Unusable::Poisoned(code)),
        }
    }

    /// Checks that the VM may be used now, from this thread.
    pub fn check_usable(&self, env: Env) -> JsResult<()> {
        // The usual case, decided without a thread-local lookup: a native
        // function's env is its thread's, so the home env means the home
        // thread.
        if self.home == Some(env) && self.status.get() == Status::Live && !self.is_engine_freed() && !self.engine.has_fatal_code() {
            return Ok(());
        }
        match self.unusable() {
            None => Ok(()),
            Some(why) => Err(errors::throw_unusable_vm(env, why)),
        }
    }

    /// The failure of a glue status that is not success (from an inspection
    /// call made outside `engine_op`).
    pub fn engine_failure(&self, status: i32) -> Failure {
        match engine::check(status) {
            Err(Failure::Fatal { code, .. }) => self.fatal_failure(code),
            Err(f) => f,
            Ok(()) => Failure::Error(status),
        }
    }

    /// The failure a fatal error (its code) of this VM is reported as.
    pub fn fatal_failure(&self, code: i32) -> Failure {
        Failure::Fatal { code, reason: self.fatal_reason() }
    }

    pub fn import(&self, id: u16) -> Option<&Import> {
        self.imports.iter().find(|i| i.id == id)
    }

    pub fn import_function(&self, env: Env, id: u16) -> Option<JsValue> {
        env.ref_value(self.import(id)?.function)
    }

    /// import_function for a crossing: the function's JS value got in the
    /// same shared crossing scope is still valid, and is used again (the
    /// reference read makes a handle each time).
    pub fn import_function_in(&self, env: Env, id: u16, crossing: &runtime::Crossing) -> Option<JsValue> {
        let runtime::Crossing::Shared(serial) = *crossing else {
            return self.import_function(env, id);
        };
        let (seen_serial, seen_id, f) = self.import_seen.get();
        if seen_serial == serial && seen_id == id {
            return Some(f);
        }
        let f = self.import_function(env, id)?;
        self.import_seen.set((serial, id, f));
        Some(f)
    }

    /// The import id of `f`, if it is one of this VM's imports.
    pub fn import_id_of(&self, env: Env, f: JsValue) -> Option<u16> {
        for i in &self.imports {
            if let Some(v) = env.ref_value(i.function) {
                if env.strict_equals(v, f) {
                    return Some(i.id);
                }
            }
        }
        None
    }

    pub fn is_idle(&self) -> bool {
        self.active.get() == 0
    }

    /// Runs one engine entry that may run guest code, with the nesting
    /// limits, activity count and fatal-error bookkeeping.
    pub fn engine_call<T>(&self, env: Env, f: impl FnOnce(&Engine) -> Result<T, Failure>) -> Result<T, CallFailure> {
        // The depth guard works on the home thread's state: never another's.
        if self.home != Some(env) {
            return Err(CallFailure::Engine(Failure::Unusable(Unusable::ForeignThread)));
        }
        let Some(_depth) = DepthGuard::enter(&self.home_thread, env) else {
            return Err(CallFailure::Thrown(errors::throw(
                env,
                errors::E_STACK_OVERFLOW,
                Some(&format!(
                    "host/guest calls nested more than {} levels deep (or too much native stack)",
                    runtime::MAX_DEPTH
                )),
            )));
        };
        // The sandbox limits: the deadline armed, a stop reported as its error.
        let result = crate::limits::guest_call(&self.engine, self.is_idle(), || self.engine_op(f));
        self.free_engine_if_idle_and_finished();
        result.map_err(CallFailure::Engine)
    }

    /// One engine entry that cannot run guest code (allocation of strings,
    /// objects...): counted as active, and a fatal error poisons the VM.
    pub fn engine_op<T>(&self, f: impl FnOnce(&Engine) -> Result<T, Failure>) -> Result<T, Failure> {
        self.take_inspection_fatal();
        if self.status.get() != Status::Live || self.is_engine_freed() {
            return Err(Failure::Unusable(self.unusable().unwrap_or(Unusable::EngineFreed)));
        }
        let result = {
            // Counted off even if `f` panics (a bug, caught at the native
            // function's entry), so that a disposed VM is still freed.
            let _active = Active::enter(&self.active);
            f(&self.engine)
        };
        match result {
            Err(Failure::Fatal { code, .. }) => {
                self.poison(code);
                Err(self.fatal_failure(code))
            }
            result => result,
        }
    }

    /// Rejects every pending Promise of a VM that failed (a fatal error) or was
    /// disposed: its guest promises can never settle now. May run in the middle
    /// of an operation; a pending JavaScript exception is kept.
    pub fn reject_pending_promises(&self, env: Env) {
        if self.pending_promises.borrow().is_empty() {
            return;
        }
        let status = self.status();
        if status == Status::Live {
            return;
        }
        let pending = std::mem::take(&mut *self.pending_promises.borrow_mut());
        let saved = if env.is_exception_pending() { Some(env.take_exception()) } else { None };
        let scope = env.open_scope();
        for p in pending {
            let promise = env.ref_value(p.promise);
            env.delete_ref(p.promise);
            let Some(promise) = promise else { continue };
            if let Some(reason) = rejection(env, status) {
                runtime::settle_promise(env, promise, false, reason, env.ref_value(self.core.get()));
            }
        }
        env.close_scope(scope);
        if let Some(e) = saved {
            env.throw(e);
        }
    }

    pub fn dispose(&self, env: Env) {
        if self.status.get() != Status::Disposed {
            if self.active.get() > 0 && !self.is_engine_freed() {
                // Disposed from a host function or breakpoint: stop the guest
                // at its next instruction.
                self.engine.stop_after(0);
            }
            self.status.set(Status::Disposed);
            self.reject_pending_promises(env);
            if let Some((r, _)) = self.host_exception.borrow_mut().take() {
                env.delete_ref(r);
            }
        }
        self.free_engine_if_idle_and_finished();
    }

    /// The VM's core object was collected (see pressure::reclaim_collected):
    /// nothing can call into it again, so its engine goes now; the finalizer
    /// Node runs later frees the rest. Unlike dispose(), pending promises
    /// stay pending (see membrane.rs on promise lifetime).
    pub fn free_unreachable(&self) {
        if self.status.get() != Status::Disposed && self.active.get() == 0 {
            self.status.set(Status::Disposed);
            self.free_engine_if_idle_and_finished();
        }
    }

    /// Frees the engine once the VM is disposed and no engine call is on
    /// the stack (a host function may dispose the VM that called it).
    fn free_engine_if_idle_and_finished(&self) {
        if self.status.get() == Status::Disposed && self.active.get() == 0 {
            // SAFETY: no engine frame of this VM is on the stack (active is
            // 0); freeing is idempotent.
            unsafe { self.engine.free(self.fatal.get() != 0) };
        }
    }

    pub fn is_engine_freed(&self) -> bool {
        self.engine.is_freed()
    }

    pub fn stash_host_exception(&self, env: Env, exception: JsValue, slot: Slot) {
        let old = self.host_exception.borrow_mut().take();
        if let Some((r, s)) = old {
            env.delete_ref(r);
            env.delete_ref(self.handles.borrow_mut().release(s));
        }
        // References hold objects only, so the exception (which may be any
        // value) is kept in a holder object.
        let holder = env.object().and_then(|o| env.set_named(o, "value", exception).map(|_| o));
        match holder.and_then(|o| env.new_ref(o, 1)) {
            Ok(r) => *self.host_exception.borrow_mut() = Some((r, slot)),
            Err(_) => {
                let _ = env.take_exception();
                self.handles.borrow_mut().release(slot);
            }
        }
    }

    /// If `thrown` is the guest copy of a host function's exception, the
    /// original host exception.
    pub fn original_host_exception(&self, env: Env, thrown: Value) -> Option<JsValue> {
        let stash = self.host_exception.borrow();
        let (r, slot) = stash.as_ref()?;
        if self.handles.borrow().get(*slot) == thrown {
            env.ref_value(*r).and_then(|holder| env.get_named(holder, "value").ok())
        } else {
            None
        }
    }

    /// Drops the host-exception stash once no call is active.
    pub fn clear_host_exception_if_idle(&self, env: Env) {
        if self.active.get() == 0 {
            if let Some((r, s)) = self.host_exception.borrow_mut().take() {
                env.delete_ref(r);
                self.handles.borrow_mut().release(s);
            }
        }
    }

    pub fn set_breakpoint_error(&self, env: Env, exception: JsValue) {
        let previous = self.engine.instructions_remaining();
        let holder = env.object().and_then(|o| env.set_named(o, "value", exception).map(|_| o));
        match holder.and_then(|o| env.new_ref(o, 1)) {
            Ok(r) => {
                if let Some((old, _)) = self.breakpoint_error.borrow_mut().replace((r, previous)) {
                    env.delete_ref(old);
                }
            }
            Err(_) => {
                let _ = env.take_exception();
            }
        }
    }

    pub fn has_breakpoint_error(&self) -> bool {
        self.breakpoint_error.borrow().is_some()
    }

    /// The breakpoint callback's exception, if one stopped the call; the gas
    /// counter is restored.
    pub fn take_breakpoint_error(&self, env: Env) -> Option<JsValue> {
        let (r, previous) = self.breakpoint_error.borrow_mut().take()?;
        if !self.is_engine_freed() && self.fatal.get() == 0 {
            self.engine.stop_after(if previous < 0 { -1 } else { previous });
        }
        let v = env.ref_value(r).and_then(|holder| env.get_named(holder, "value").ok());
        env.delete_ref(r);
        v
    }

    /// Slots held by the bounded caches (not leaks; see live_handles).
    pub fn cached_slots(&self) -> usize {
        self.keys.borrow().len() + self.async_rejections.borrow().len()
    }

    pub fn remember_async_rejection(&self, env: Env, original: JsValue, copy: Value) {
        const KEEP: usize = 16;
        let holder = env.object().and_then(|o| env.set_named(o, "value", original).map(|_| o));
        let Ok(r) = holder.and_then(|o| env.new_ref(o, 1)) else {
            let _ = env.take_exception();
            return;
        };
        let slot = self.handles.borrow_mut().alloc(&self.engine, copy);
        let mut list = self.async_rejections.borrow_mut();
        if list.len() >= KEEP {
            let (old_ref, old_slot) = list.remove(0);
            env.delete_ref(old_ref);
            self.handles.borrow_mut().release(old_slot);
        }
        list.push((r, slot));
    }

    /// The original host value of a guest rejection value, if it came from
    /// an async import (and forgets it).
    pub fn take_async_rejection(&self, env: Env, guest: Value) -> Option<JsValue> {
        let mut list = self.async_rejections.borrow_mut();
        let i = {
            let h = self.handles.borrow();
            list.iter().position(|(_, s)| h.get(*s) == guest)?
        };
        let (r, slot) = list.remove(i);
        self.handles.borrow_mut().release(slot);
        let v = env.ref_value(r).and_then(|holder| env.get_named(holder, "value").ok());
        env.delete_ref(r);
        v
    }

    /// Releases the slot of a host value now (vm.release, the end of a
    /// vm.scope): the guest may collect the value, and the host value's id
    /// no longer matches, so every later use of it is refused. Pinned slots
    /// (exports) stay. Returns whether anything was released.
    pub fn release_host_value(&self, env: Env, slot: Slot) -> bool {
        let r = {
            let mut h = self.handles.borrow_mut();
            if !h.is_live(slot) || h.meta(slot).pinned || h.meta(slot).host.is_null() {
                return false;
            }
            h.release(slot)
        };
        env.delete_ref(r);
        true
    }

    /// Records a host value made for `slot` (not promises: see
    /// reference_to_host) for the innermost open vm.scope, if any.
    pub fn note_made(&self, slot: Slot, generation: u32) {
        if self.scope_marks.borrow().is_empty() {
            return;
        }
        let len = {
            let mut log = self.scope_log.borrow_mut();
            log.push((slot, generation));
            log.len()
        };
        if len >= self.scope_compact_at.get() {
            self.compact_scope_log();
        }
    }

    /// Drops log entries whose value is gone already (swept or released),
    /// keeping each open scope's start right.
    fn compact_scope_log(&self) {
        let h = self.handles.borrow();
        let mut log = self.scope_log.borrow_mut();
        let mut marks = self.scope_marks.borrow_mut();
        let mut kept = 0;
        let mut next_mark = 0;
        for i in 0..log.len() {
            while next_mark < marks.len() && marks[next_mark] == i {
                marks[next_mark] = kept;
                next_mark += 1;
            }
            let (slot, generation) = log[i];
            if h.is_current(slot, generation) {
                log[kept] = log[i];
                kept += 1;
            }
        }
        for m in marks[next_mark..].iter_mut() {
            *m = kept;
        }
        log.truncate(kept);
        self.scope_compact_at.set(SCOPE_LOG_MIN.max(2 * kept));
    }

    /// Opens a vm.scope; returns its depth, for `scope_exit`.
    pub fn scope_enter(&self) -> usize {
        let start = self.scope_log.borrow().len();
        let mut marks = self.scope_marks.borrow_mut();
        marks.push(start);
        marks.len()
    }

    /// Closes the vm.scope at `depth` (and any left open inside it),
    /// releasing the host values made since it opened, except `keep` (the
    /// slot of the value the scope's function returned or threw), which
    /// passes to the enclosing scope if there is one.
    pub fn scope_exit(&self, env: Env, depth: usize, keep: Option<Slot>) {
        let mark = {
            let mut marks = self.scope_marks.borrow_mut();
            if depth == 0 || depth > marks.len() {
                return;
            }
            let mark = marks[depth - 1];
            marks.truncate(depth - 1);
            mark
        };
        let made: Vec<(Slot, u32)> = {
            let mut log = self.scope_log.borrow_mut();
            let mark = mark.min(log.len());
            log.drain(mark..).collect()
        };
        let mut kept = None;
        for (slot, generation) in made {
            if !self.handles.borrow().is_current(slot, generation) {
                continue;
            }
            if Some(slot) == keep {
                kept = Some((slot, generation));
                continue;
            }
            self.release_host_value(env, slot);
        }
        if let Some(k) = kept {
            if !self.scope_marks.borrow().is_empty() {
                self.scope_log.borrow_mut().push(k);
            }
        }
        if self.scope_marks.borrow().is_empty() {
            self.scope_compact_at.set(SCOPE_LOG_MIN);
        }
    }
}

impl Drop for VmState {
    fn drop(&mut self) {
        // SAFETY: the last owner is going away; no engine call can be active
        // (every active call holds an Rc).
        unsafe { self.engine.free(self.fatal.get() != 0) };
        if let Some(env) = crate::js::current_env() {
            if self.home_thread.is_current() {
                for i in &self.imports {
                    env.delete_ref(i.function);
                }
                env.delete_ref(self.breakpoint.get());
                env.delete_ref(self.collector.get());
                env.delete_ref(self.core.get());
                // Withdraw what this VM reported to V8 (pressure::account).
                let reported = self.reported_memory.replace(0);
                if reported != 0 {
                    env.adjust_external_memory(-reported);
                }
                // The weak references to host values (each slot's); the
                // values themselves need nothing (see membrane::attach).
                if let Ok(mut h) = self.handles.try_borrow_mut() {
                    for r in h.take_host_refs() {
                        env.delete_ref(r);
                    }
                }
                if let Some((r, _)) = self.host_exception.borrow_mut().take() {
                    env.delete_ref(r);
                }
                for (r, _) in self.async_rejections.borrow_mut().drain(..) {
                    env.delete_ref(r);
                }
                // Promises still pending stay so: nothing can run this VM's
                // guest code any more, and only that could settle them.
                for p in self.pending_promises.borrow_mut().drain(..) {
                    env.delete_ref(p.promise);
                }
            }
        }
    }
}

/// An engine entry in progress on a VM (see VmState::active).
struct Active<'a>(&'a Cell<u32>);

impl<'a> Active<'a> {
    fn enter(count: &'a Cell<u32>) -> Self {
        count.set(count.get() + 1);
        Active(count)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// How an engine entry failed.
pub enum CallFailure {
    /// The engine returned an error (or fatal error) code.
    Engine(Failure),
    /// A JavaScript exception is already pending.
    Thrown(Pending),
}

/// Guest heap size above which the host first relieves pressure, and
/// host-held values needed before it first forces a JavaScript collection
/// (see pressure.rs, which moves both).
pub const PRESSURE_MARK: u16 = 0xC000;
pub const FORCE_GC_MIN_HOST_VALUES: usize = 64;

/// Smallest scope log that is compacted (see VmState::note_made).
const SCOPE_LOG_MIN: usize = 1024;

thread_local! {
    static SERIAL: Cell<u32> = const { Cell::new(0) };
}

/// A serial number for a new VM of this thread. Serials distinguish the host
/// values of different VMs; a wrap-around after 2^31 VMs is harmless because
/// membrane::belongs also checks the slot's own reference.
fn next_serial() -> u32 {
    SERIAL.with(|s| {
        let n = s.get().wrapping_add(1) & 0x7FFF_FFFF;
        s.set(n);
        n
    })
}

/// Why a pending Promise of a VM that cannot go on rejects.
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
