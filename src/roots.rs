//! Temporary GC roots: guest values held by the host only for the length of
//! a conversion or call.
//!
//! Converting into the guest allocates, and any allocation may move guest
//! objects, so a guest value is never held in a Rust variable across an
//! allocation; it is held in a handle slot. Temporaries are slots on a
//! per-VM LIFO stack (see HandleTable::push_temp), released together when
//! the enclosing `TempScope` ends.

use crate::engine::{Root, Value};
use crate::handles::Slot;
use crate::vm::VmState;

/// A temporary handle slot that roots a guest value during a conversion or
/// call. Temporaries live on a per-VM stack and are released together when
/// the enclosing `TempScope` ends, so a `Rooted` must not outlive the scope
/// that was innermost when it was made.
#[derive(Clone, Copy)]
pub struct Rooted<'a> {
    vm: &'a VmState,
    pub slot: Slot,
}

/// Releases the temporaries made since it was created.
pub struct TempScope<'a> {
    vm: &'a VmState,
    mark: usize,
}

impl<'a> TempScope<'a> {
    pub fn new(vm: &'a VmState) -> Self {
        TempScope { vm, mark: vm.handles.borrow().temp_mark() }
    }
}

impl Drop for TempScope<'_> {
    fn drop(&mut self) {
        if let Ok(mut h) = self.vm.handles.try_borrow_mut() {
            h.pop_temps(self.mark);
        }
    }
}

impl<'a> Rooted<'a> {
    pub fn new(vm: &'a VmState, value: Value) -> Self {
        let slot = vm.handles.borrow_mut().push_temp(vm.engine(), value);
        Rooted { vm, slot }
    }
    pub fn get(&self) -> Value {
        self.vm.handles.borrow().get(self.slot)
    }
    pub fn set(&self, v: Value) {
        *self.vm.handles.borrow_mut().ptr(self.slot) = v;
    }
    /// The root, for engine entries that take `mvm_Value*`.
    pub fn root(&self) -> Root<'a> {
        let p = self.vm.handles.borrow_mut().raw(self.slot);
        // SAFETY: the slot's handle was registered with this VM's engine
        // when the table grew, and lies in a boxed chunk that neither moves
        // nor is freed while the VM ('a) lives.
        unsafe { Root::new(self.vm.engine(), p) }
    }
}
