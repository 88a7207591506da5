//! One restored VM: its engine instance, snapshot bytes, handle table, the
//! imports it calls, and its lifetime (live, poisoned by a fatal error,
//! disposed).
//!
//! `VmState` is owned (`Rc`) by the JavaScript "core" object of the VM, which
//! every host value that represents a guest value references (proxy targets
//! and function closures hold it). The engine is freed on `dispose()` or when
//! the core is garbage collected, whichever comes first; after `dispose()`
//! the state stays behind as a tombstone so late uses get a clear error.

use crate::engine::{self, Failure, GlueContext, Value};
use crate::errors;
use crate::handles::{HandleTable, Slot};
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
    ctx: *mut GlueContext,
    /// The engine reads bytecode in place, so the bytes live as long as it.
    _snapshot: Rc<[u8]>,
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
    thread: usize,
    /// Engine calls in progress on this VM (re-entrant calls nest).
    active: Cell<u32>,
    /// The last exception a host function threw into the guest: the original
    /// JavaScript value and the slot of its guest copy. If the guest does not
    /// catch it, the host caller gets the original back.
    host_exception: RefCell<Option<(RawRef, Slot)>>,
    pub core: Cell<RawRef>,
    /// Host Promises of guest promises, to settle when the guest ones do
    /// (see promises.rs).
    pub pending_promises: RefCell<Vec<PendingPromise>>,
    /// Rejections passed to guests awaiting async imports: the original
    /// value (in a holder object) and the slot of its guest copy, so that a
    /// rejection the guest does not catch reaches the host as the original.
    /// The most recent few only.
    async_rejections: RefCell<Vec<(RawRef, Slot)>>,
    /// Guest heap size above which the host relieves pressure (see
    /// relieve_pressure in membrane.rs).
    pub pressure_mark: Cell<u16>,
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
    pub keys: RefCell<crate::keys::KeyCache>,
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
    /// the VM it); see promises.rs.
    pub promise: RawRef,
}

/// What `napi_wrap` attaches (as a Box) to the per-VM core object of the JS
/// layer. Host values of guest values carry an integer instead (see
/// membrane::attach): nothing per value that a finalizer must free.
pub enum Wrapped {
    Core(Rc<VmState>),
}

impl VmState {
    pub fn ctx(&self) -> *mut GlueContext {
        self.ctx
    }

    pub fn gc_epoch(&self) -> u32 {
        // SAFETY: ctx is a live allocation owned by this state; the engine
        // writes it only while this thread is inside an engine call.
        unsafe { (*self.ctx).gc_epoch }
    }

    pub fn status(&self) -> Status {
        self.status.get()
    }

    /// Poisons the VM if an inspection function (glue_kind and the like,
    /// which return a value, not a status) hit a fatal error. Returns the
    /// code, once per error.
    pub fn take_inspection_fatal(&self) -> Option<i32> {
        // SAFETY: ctx is a live allocation owned by this state, written by
        // the engine only while this thread is inside an engine call.
        let code = unsafe { std::mem::replace(&mut (*self.ctx).fatal_code, 0) };
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
        if let Some(env) = runtime::current_env() {
            crate::promises::reject_pending(env, self);
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
        // SAFETY: ctx is a live allocation owned by this state, written by
        // the engine only while this thread is inside an engine call.
        match unsafe { (*self.ctx).fatal_reason } {
            engine::REASON_NO_SCOPE => Some(
                "the bytecode uses a closure variable outside the closure scopes that exist. The microvium \
                 8.0.0 compiler produces such bytecode for a function that creates closures in a \
                 `for (let ...)` loop and, after the loop, closures or classes that use the function's own \
                 variables (a compiler defect; move the loop into a function of its own)",
            ),
            _ => None,
        }
    }

    pub fn is_foreign_thread(&self) -> bool {
        runtime::thread_token() != self.thread
    }

    /// Checks that the VM may be used now, from this thread.
    pub fn check_usable(&self, env: Env) -> JsResult<()> {
        if runtime::thread_token() != self.thread {
            return Err(env.throw_error(
                "Microvium VM used from a thread other than the one that created it; each VM belongs to its creating thread",
            ));
        }
        self.take_inspection_fatal();
        match self.status.get() {
            Status::Live => Ok(()),
            Status::Disposed => Err(env.throw_error("Microvium VM has been disposed")),
            Status::Poisoned(code) => Err(errors::throw_unusable(env, code)),
        }
    }

    pub fn import(&self, id: u16) -> Option<&Import> {
        self.imports.iter().find(|i| i.id == id)
    }

    pub fn import_function(&self, env: Env, id: u16) -> Option<JsValue> {
        env.ref_value(self.import(id)?.function)
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

    /// Runs one engine entry with the nesting limits, activity count and
    /// fatal-error bookkeeping. `f` returns the glue's status code.
    pub fn engine_call(&self, env: Env, f: impl FnOnce() -> i32) -> Result<(), CallFailure> {
        let Some(_depth) = DepthGuard::enter() else {
            return Err(CallFailure::Thrown(errors::throw(
                env,
                errors::E_STACK_OVERFLOW,
                Some(&format!(
                    "host/guest calls nested more than {} levels deep (or too much native stack)",
                    runtime::MAX_DEPTH
                )),
            )));
        };
        let result = self.engine_op(f);
        self.free_engine_if_idle_and_finished();
        result.map_err(CallFailure::Engine)
    }

    /// One engine entry that cannot run guest code (allocation of strings,
    /// objects...): counted as active, and a fatal error poisons the VM.
    pub fn engine_op(&self, f: impl FnOnce() -> i32) -> Result<(), Failure> {
        self.take_inspection_fatal();
        if self.status.get() != Status::Live || self.is_engine_freed() {
            return Err(Failure::Unusable);
        }
        self.active.set(self.active.get() + 1);
        let code = f();
        self.active.set(self.active.get() - 1);
        let result = engine::check(code);
        if let Err(Failure::Fatal(c)) = result {
            self.poison(c);
        }
        result
    }

    pub fn dispose(&self, env: Env) {
        if self.status.get() != Status::Disposed {
            if self.active.get() > 0 && !self.is_engine_freed() {
                // Disposed from a host function or breakpoint: stop the guest
                // at its next instruction.
                // SAFETY: the engine is live (freed only once idle).
                unsafe { engine::glue_stop_after(self.ctx, 0) };
            }
            self.status.set(Status::Disposed);
            crate::promises::reject_pending(env, self);
            if let Some((r, _)) = self.host_exception.borrow_mut().take() {
                env.delete_ref(r);
            }
        }
        self.free_engine_if_idle_and_finished();
    }

    /// Frees the engine once the VM is disposed and no engine call is on
    /// the stack (a host function may dispose the VM that called it).
    fn free_engine_if_idle_and_finished(&self) {
        if self.status.get() == Status::Disposed && self.active.get() == 0 {
            // SAFETY: no engine frame of this VM is on the stack (active is
            // 0), and glue_free_vm is idempotent (it clears ctx->vm).
            unsafe { engine::glue_free_vm(self.ctx, self.fatal.get() != 0) };
        }
    }

    pub fn is_engine_freed(&self) -> bool {
        // SAFETY: ctx is owned by this state.
        unsafe { (*self.ctx).vm.is_null() }
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
        // SAFETY: ctx is live during the call that hit the breakpoint.
        let previous = unsafe { engine::glue_instructions_remaining(self.ctx) };
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
            // SAFETY: the engine is live.
            unsafe { engine::glue_stop_after(self.ctx, if previous < 0 { -1 } else { previous }) };
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
        let slot = self.handles.borrow_mut().alloc(self.ctx, copy);
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
        // (every active call holds an Rc). ctx came from Box::into_raw.
        unsafe {
            engine::glue_free_vm(self.ctx, self.fatal.get() != 0);
            drop(Box::from_raw(self.ctx));
        }
        if let Some(env) = runtime::current_env() {
            if runtime::thread_token() == self.thread {
                for i in &self.imports {
                    env.delete_ref(i.function);
                }
                env.delete_ref(self.breakpoint.get());
                env.delete_ref(self.collector.get());
                env.delete_ref(self.core.get());
                crate::pressure::unaccount(env, self);
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

/// How an engine entry failed.
pub enum CallFailure {
    /// The engine returned an error (or fatal error) code.
    Engine(Failure),
    /// A JavaScript exception is already pending.
    Thrown(Pending),
}

/// Zero bytes kept after the snapshot copy (see restore).
const SNAPSHOT_PADDING: usize = 64;

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

thread_local! {
    /// Import ids the snapshot asked for that the host did not provide,
    /// collected by `resolve_import` during a restore.
    static RESOLVE: RefCell<(Vec<u16>, Vec<u16>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

unsafe extern "C" fn resolve_import(
    id: u16,
    _context: *mut c_void,
    out: *mut Option<engine::HostFunction>,
) -> i32 {
    let provided = RESOLVE.with(|r| {
        let mut r = r.borrow_mut();
        if r.0.contains(&id) {
            true
        } else {
            r.1.push(id);
            false
        }
    });
    // SAFETY: the engine passes a valid out-pointer.
    unsafe { *out = Some(crate::calls::host_function_trampoline) };
    if provided {
        0
    } else {
        errors::E_UNRESOLVED_IMPORT
    }
}

/// Restores a VM from validated snapshot bytes. `imports` are (id, function,
/// is_async) already checked by the caller.
pub fn restore(
    env: Env,
    bytes: &[u8],
    imports: Vec<(u16, JsValue, bool)>,
    info: crate::snapshot::SnapshotInfo,
) -> JsResult<Rc<VmState>> {
    let missing: Vec<u16> = info.import_ids.iter().copied().filter(|id| !imports.iter().any(|(i, _, _)| i == id)).collect();
    if !missing.is_empty() {
        // Worded as the WebAssembly runtime words it (the first missing id);
        // `detail` lists them all.
        let list = missing.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        return Err(errors::throw_with_message(
            env,
            errors::E_UNRESOLVED_IMPORT,
            &format!("Import {} is required by the VM but not provided by the host", missing[0]),
            Some(&format!("missing import ids: {list}")),
        ));
    }
    let mut import_refs = Vec::with_capacity(imports.len());
    for (id, f, is_async) in &imports {
        import_refs.push(Import { id: *id, function: env.new_ref(*f, 0)?, is_async: *is_async });
    }
    // The engine reads a word or two past the end of a crafted snapshot's
    // ROM before a check can stop it; zeroed padding keeps those reads in
    // memory this VM owns. The engine is told the real length.
    let snapshot_len = bytes.len();
    let snapshot = crate::snapshot::shared_copy(bytes, SNAPSHOT_PADDING);
    let ctx = Box::into_raw(Box::new(GlueContext {
        vm: std::ptr::null_mut(),
        host: std::ptr::null(),
        spare_stack: std::ptr::null_mut(),
        gc_epoch: 0,
        blocks: std::ptr::null_mut(),
        poll_count: 0,
        bytes: 0,
        fatal_code: 0,
        host_function: std::ptr::null_mut(),
        breakpoint_callback: std::ptr::null_mut(),
        checked_epoch: 0,
        checked_bits: std::ptr::null_mut(),
        fatal_reason: 0,
        verified: std::ptr::null_mut(),
    }));
    let state = Rc::new(VmState {
        ctx,
        _snapshot: snapshot,
        handles: RefCell::new(HandleTable::new()),
        imports: import_refs,
        breakpoint: Cell::new(std::ptr::null_mut()),
        status: Cell::new(Status::Live),
        fatal: Cell::new(0),
        thread: runtime::thread_token(),
        active: Cell::new(0),
        host_exception: RefCell::new(None),
        core: Cell::new(std::ptr::null_mut()),
        pending_promises: RefCell::new(Vec::new()),
        async_rejections: RefCell::new(Vec::new()),
        pressure_mark: Cell::new(crate::pressure::PRESSURE_MARK),
        force_gc_floor: Cell::new(crate::pressure::FORCE_GC_MIN_HOST_VALUES),
        collector: Cell::new(std::ptr::null_mut()),
        reported_memory: Cell::new(0),
        swept_at: Cell::new(0),
        ops_since_sweep_check: Cell::new(0),
        serial: next_serial(),
        scope_log: RefCell::new(Vec::new()),
        scope_marks: RefCell::new(Vec::new()),
        scope_compact_at: Cell::new(SCOPE_LOG_MIN),
        breakpoint_error: RefCell::new(None),
        export_ids: info.export_ids,
        required_version: info.required_version,
        keys: RefCell::new(crate::keys::KeyCache::default()),
        string_buf: RefCell::new(Vec::new()),
    });
    // SAFETY: ctx is a fresh allocation; the Rc keeps the state at a fixed
    // address for as long as the engine (which ctx belongs to) lives.
    unsafe { (*ctx).host = Rc::as_ptr(&state) as *const c_void };
    RESOLVE.with(|r| {
        let mut r = r.borrow_mut();
        r.0 = imports.iter().map(|(i, _, _)| *i).collect();
        r.1.clear();
    });
    let snapshot_ptr = state._snapshot.as_ptr();
    // SAFETY: the snapshot bytes are owned by the state and outlive the
    // engine instance; ctx is valid.
    let code = unsafe { engine::glue_restore(ctx, snapshot_ptr, snapshot_len, resolve_import) };
    match engine::check(code) {
        Ok(()) => Ok(state),
        Err(Failure::Error(e)) => {
            let detail = if e == errors::E_UNRESOLVED_IMPORT {
                let missing = RESOLVE.with(|r| r.borrow().1.clone());
                Some(format!("missing import id {:?}", missing))
            } else if e == errors::E_INVALID_BYTECODE {
                // The verifier (c/verifier.c) rejected the snapshot: why.
                Some(engine::verify_detail())
            } else {
                None
            };
            Err(errors::throw(env, e, detail.as_deref()))
        }
        Err(Failure::Fatal(e)) => Err(errors::throw_fatal(env, e, Some("while restoring the snapshot"))),
        Err(Failure::Unusable) => Err(env.throw_error("Microvium: restore failed")),
    }
}
