//! GC roots for guest values the host holds.
//!
//! Every guest value the host keeps (behind a proxy, a function, or as a
//! temporary while converting arguments) lives in a slot here. Each slot is
//! an engine `mvm_Handle`, registered with the engine once when its chunk is
//! created, so the collector updates it when the value moves.
//!
//! Taking and releasing a slot is O(1): the engine's `mvm_releaseHandle`
//! walks the VM's whole handle list, so slots are never released to the
//! engine. A released slot is set to `undefined` (which the collector skips
//! cheaply) and pushed on a free list for reuse. The engine's list therefore
//! holds the high-water mark of live slots, in chunks with stable addresses.
//!
//! Identity: the same guest object must come out as the same host value, but
//! guest addresses change when the collector runs. `by_value` maps a guest
//! value to the slot that holds it. A hit is checked against the slot's
//! current value (which the collector keeps up to date), so it is never
//! wrong; a miss after a collection (detected through the allocator hook,
//! `gc_epoch`) rebuilds the map from the slots once.

use crate::engine::{self, GlueContext, RawHandle, Value};
use crate::js::RawRef;
use std::collections::HashMap;

const CHUNK: usize = 256;

pub type Slot = u32;

#[derive(Clone, Copy)]
pub struct SlotMeta {
    /// Weak reference to the host value representing this slot, if any.
    pub host: RawRef,
    /// Bumped each time a new host value is made for the slot, so that the
    /// finalizer of an older, collected host value does not release it.
    pub generation: u32,
    pub in_use: bool,
}

/// Hasher for the u16 guest values of the identity map: one multiply
/// instead of SipHash (the keys are not attacker-chosen collisions that
/// matter; at worst a slower map).
#[derive(Default)]
pub struct ValueHasher(u64);

impl std::hash::Hasher for ValueHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u16(&mut self, v: u16) {
        self.0 = (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ValueMap = HashMap<Value, Slot, std::hash::BuildHasherDefault<ValueHasher>>;

pub struct HandleTable {
    chunks: Vec<Box<[RawHandle; CHUNK]>>,
    meta: Vec<SlotMeta>,
    free: Vec<Slot>,
    by_value: ValueMap,
    map_epoch: u32,
    live: usize,
    /// Slots used as a LIFO stack of temporaries (see TempScope in
    /// membrane.rs): no free-list or map traffic on the call path.
    temps: Vec<Slot>,
    temp_top: usize,
}

impl HandleTable {
    pub fn new() -> Self {
        HandleTable {
            chunks: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            by_value: ValueMap::default(),
            map_epoch: 0,
            live: 0,
            temps: Vec::new(),
            temp_top: 0,
        }
    }

    /// Slots held for the host (temporaries excluded).
    pub fn live(&self) -> usize {
        self.live - self.temps.len()
    }

    /// Roots `value` as a temporary, until `pop_temps` below its mark.
    pub fn push_temp(&mut self, ctx: *mut GlueContext, value: Value) -> Slot {
        if self.temp_top == self.temps.len() {
            let s = self.alloc(ctx, engine::UNDEFINED);
            self.temps.push(s);
        }
        let s = self.temps[self.temp_top];
        self.temp_top += 1;
        *self.ptr(s) = value;
        s
    }

    pub fn temp_mark(&self) -> usize {
        self.temp_top
    }

    pub fn pop_temps(&mut self, mark: usize) {
        for i in mark..self.temp_top {
            let s = self.temps[i];
            *self.ptr(s) = engine::UNDEFINED;
        }
        self.temp_top = self.temp_top.min(mark);
    }

    fn grow(&mut self, ctx: *mut GlueContext) {
        let mut chunk: Box<[RawHandle; CHUNK]> = Box::new(std::array::from_fn(|_| RawHandle {
            value: engine::UNDEFINED,
            next: std::ptr::null_mut(),
        }));
        let base = self.meta.len() as Slot;
        for h in chunk.iter_mut() {
            // SAFETY: the chunk is boxed, so each handle keeps its address
            // for the life of the table, which is the life of the VM; the
            // engine only links it into its root list.
            unsafe { engine::glue_handle_init(ctx, h) };
        }
        self.chunks.push(chunk);
        for i in (0..CHUNK as Slot).rev() {
            self.free.push(base + i);
            self.meta.push(SlotMeta { host: std::ptr::null_mut(), generation: 0, in_use: false });
        }
    }

    /// Roots `value` in a fresh slot.
    pub fn alloc(&mut self, ctx: *mut GlueContext, value: Value) -> Slot {
        if self.free.is_empty() {
            self.grow(ctx);
        }
        let slot = self.free.pop().expect("grow adds free slots");
        *self.ptr(slot) = value;
        let m = &mut self.meta[slot as usize];
        m.in_use = true;
        m.host = std::ptr::null_mut();
        self.live += 1;
        slot
    }

    pub fn release(&mut self, slot: Slot) {
        let m = &mut self.meta[slot as usize];
        if !m.in_use {
            return;
        }
        m.in_use = false;
        m.host = std::ptr::null_mut();
        m.generation = m.generation.wrapping_add(1);
        let p = self.ptr(slot);
        let v = *p;
        *p = engine::UNDEFINED;
        if self.by_value.get(&v) == Some(&slot) {
            self.by_value.remove(&v);
        }
        self.free.push(slot);
        self.live -= 1;
    }

    #[inline]
    pub fn ptr(&mut self, slot: Slot) -> &mut Value {
        let s = slot as usize;
        &mut self.chunks[s / CHUNK][s % CHUNK].value
    }

    #[inline]
    pub fn get(&self, slot: Slot) -> Value {
        let s = slot as usize;
        self.chunks[s / CHUNK][s % CHUNK].value
    }

    /// A raw pointer to the slot's value, for engine calls that take
    /// `mvm_Value*` and may allocate (the slot stays rooted throughout).
    #[inline]
    pub fn raw(&mut self, slot: Slot) -> *mut Value {
        self.ptr(slot) as *mut Value
    }

    pub fn meta(&mut self, slot: Slot) -> &mut SlotMeta {
        &mut self.meta[slot as usize]
    }

    pub fn is_live(&self, slot: Slot) -> bool {
        (slot as usize) < self.meta.len() && self.meta[slot as usize].in_use
    }

    /// The slot already holding this guest reference, if any.
    pub fn find(&mut self, value: Value, gc_epoch: u32) -> Option<Slot> {
        if let Some(&s) = self.by_value.get(&value) {
            if self.meta[s as usize].in_use && self.get(s) == value {
                return Some(s);
            }
        }
        if self.map_epoch != gc_epoch {
            self.rebuild(gc_epoch);
            if let Some(&s) = self.by_value.get(&value) {
                return Some(s);
            }
        }
        None
    }

    /// Records that `slot` represents `value` to the host (identity map).
    pub fn remember(&mut self, value: Value, slot: Slot) {
        self.by_value.insert(value, slot);
    }

    fn rebuild(&mut self, gc_epoch: u32) {
        self.by_value.clear();
        for s in 0..self.meta.len() {
            let m = self.meta[s];
            if m.in_use && !m.host.is_null() {
                let v = self.get(s as Slot);
                self.by_value.insert(v, s as Slot);
            }
        }
        self.map_epoch = gc_epoch;
    }

    /// Releases the slots whose host value has been garbage collected but
    /// not yet finalized (V8 clears weak references during a collection and
    /// runs finalizers later). Returns how many were released. `is_alive`
    /// must not leave handles behind (run it in its own handle scope), or
    /// it would itself keep every live host value from being collected.
    pub fn sweep_collected(&mut self, is_alive: impl Fn(RawRef) -> bool) -> usize {
        let mut released = 0;
        for s in 0..self.meta.len() {
            let m = self.meta[s];
            if m.in_use && !m.host.is_null() && !is_alive(m.host) {
                self.release(s as Slot);
                released += 1;
            }
        }
        released
    }

    /// Slots currently backing a host value.
    pub fn host_held(&self) -> usize {
        self.meta.iter().filter(|m| m.in_use && !m.host.is_null()).count()
    }
}
