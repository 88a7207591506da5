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
//! Host values: a slot that backs a host value (proxy, function, promise)
//! holds a plain weak reference to it (`SlotMeta::host`), with no finalizer:
//! Node-API runs finalizers only when the event loop turns, so anything
//! freed by one would pile up in a synchronous loop. The weak reference is
//! cleared by V8's collection itself; `sweep_collected` then releases the
//! slot and deletes the reference, synchronously. The JS layer addresses a
//! host value's slot by an id that also carries the slot's generation
//! (`host_id`), so a value released explicitly (vm.release, vm.scope) is
//! refused instead of reaching whatever reuses its slot.
//!
//! Identity: the same guest object must come out as the same host value, but
//! guest addresses change when the collector runs. `by_value` maps a guest
//! value to the slot that holds it. A hit is checked against the slot's
//! current value (which the collector keeps up to date), so it is never
//! wrong; a miss after a collection (detected through the allocator hook,
//! `gc_epoch`) rebuilds the map from the slots once.

use crate::engine::{self, Engine, RawHandle, Value};
use crate::js::RawRef;
use std::collections::HashMap;

/// Slots in the first chunk; each later chunk doubles the table (chunk k,
/// k >= 1, holds FIRST_CHUNK << (k - 1) slots). A VM that holds a few
/// values pays for a few slots, not hundreds (thousands of small VMs in one
/// process), and the table still grows in O(log n) chunks.
const FIRST_CHUNK: usize = 16;

/// The chunk holding slot `s`, and the slot's index in it.
fn chunk_of(s: usize) -> (usize, usize) {
    if s < FIRST_CHUNK {
        return (0, s);
    }
    let k = (usize::BITS - (s / FIRST_CHUNK).leading_zeros()) as usize;
    (k, s - (FIRST_CHUNK << (k - 1)))
}

pub type Slot = u32;

#[derive(Clone, Copy)]
pub struct SlotMeta {
    /// Weak reference to the host value representing this slot, if any
    /// (owned by the table: `release` hands it back to be deleted).
    pub host: RawRef,
    /// Bumped each time a new host value is made for the slot and each time
    /// the slot is released, so that an id of an older host value (see
    /// `host_id`) no longer matches.
    pub generation: u32,
    pub in_use: bool,
    /// Never released by vm.release or vm.scope (export values: the guest's
    /// export table keeps them alive anyway, and `vm.exports` hands out the
    /// same host value for the VM's whole life).
    pub pinned: bool,
}

/// Bits of a host value id (see `host_id`) that hold the slot; the rest hold
/// the generation. Ids stay below 2^53, so they are exact JS numbers.
pub const ID_SLOT_BITS: u32 = 20;
/// Slots that may back a host value. Each host-held slot roots a distinct
/// guest allocation, so a 64 kB guest heap needs far fewer than this.
pub const MAX_HOST_SLOTS: usize = 1 << ID_SLOT_BITS;
/// A slot whose generation reaches this is retired (never reused), so the
/// generation never wraps and an old id can never match a newer value.
const RETIRE_GENERATION: u32 = u32::MAX - 2;

/// The id the JS layer uses for the host value currently made for `slot`:
/// slot and generation in one exact JS number. Id 0 to MAX_HOST_SLOTS-1
/// (generation 0) are plain slot numbers, which internal callers use.
pub fn host_id(slot: Slot, generation: u32) -> f64 {
    (generation as f64) * (MAX_HOST_SLOTS as f64) + slot as f64
}

/// Splits an id from the JS layer into (slot, generation); generation 0 is
/// a plain slot number. None for anything that is not an id.
pub fn split_id(id: f64) -> Option<(Slot, u32)> {
    if !(id >= 0.0 && id < 9007199254740992.0) {
        return None;
    }
    // Through i64, not u64: x86-64 converts i64 to f64 in one instruction,
    // u64 in a chain of several (this is on every call and read).
    let n = id as i64;
    if n as f64 != id {
        return None;
    }
    let id = n as u64;
    let generation = id >> ID_SLOT_BITS;
    if generation > u32::MAX as u64 {
        return None;
    }
    Some(((id & (MAX_HOST_SLOTS as u64 - 1)) as Slot, generation as u32))
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
    chunks: Vec<Box<[RawHandle]>>,
    meta: Vec<SlotMeta>,
    free: Vec<Slot>,
    by_value: ValueMap,
    map_epoch: u32,
    live: usize,
    /// Slots that currently have a host reference (`SlotMeta::host`).
    held: usize,
    /// Slots used as a LIFO stack of temporaries (see TempScope in
    /// roots.rs): no free-list or map traffic on the call path.
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
            held: 0,
            temps: Vec::new(),
            temp_top: 0,
        }
    }

    /// Slots held for the host (temporaries excluded).
    pub fn live(&self) -> usize {
        self.live - self.temps.len()
    }

    /// Roots `value` as a temporary, until `pop_temps` below its mark.
    pub fn push_temp(&mut self, engine: &Engine, value: Value) -> Slot {
        if self.temp_top == self.temps.len() {
            let s = self.alloc(engine, engine::UNDEFINED);
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

    fn grow(&mut self, engine: &Engine) {
        let size = if self.chunks.is_empty() { FIRST_CHUNK } else { self.meta.len() };
        let mut chunk: Box<[RawHandle]> =
            (0..size).map(|_| RawHandle { value: engine::UNDEFINED, next: std::ptr::null_mut() }).collect();
        let base = self.meta.len() as Slot;
        // SAFETY: the chunk is boxed and never freed before the table, so
        // each handle keeps its address for the life of the table, which
        // the VM's engine does not outlive (see VmState); new handles, so
        // none is registered twice.
        unsafe { engine.register_handles(&mut chunk[..]) };
        self.chunks.push(chunk);
        for i in (0..size as Slot).rev() {
            self.free.push(base + i);
            self.meta.push(SlotMeta { host: std::ptr::null_mut(), generation: 0, in_use: false, pinned: false });
        }
    }

    /// Roots `value` in a fresh slot.
    pub fn alloc(&mut self, engine: &Engine, value: Value) -> Slot {
        if self.free.is_empty() {
            self.grow(engine);
        }
        let slot = self.free.pop().expect("grow adds free slots");
        *self.ptr(slot) = value;
        let m = &mut self.meta[slot as usize];
        debug_assert!(m.host.is_null());
        m.in_use = true;
        m.pinned = false;
        self.live += 1;
        slot
    }

    /// Frees the slot. Returns its host reference (null if none), which the
    /// caller must delete (the table has no env).
    pub fn release(&mut self, slot: Slot) -> RawRef {
        let m = &mut self.meta[slot as usize];
        if !m.in_use {
            return std::ptr::null_mut();
        }
        m.in_use = false;
        m.pinned = false;
        let host = std::mem::replace(&mut m.host, std::ptr::null_mut());
        m.generation = m.generation.saturating_add(1);
        let retire = m.generation >= RETIRE_GENERATION;
        if !host.is_null() {
            self.held -= 1;
        }
        let p = self.ptr(slot);
        let v = *p;
        *p = engine::UNDEFINED;
        if self.by_value.get(&v) == Some(&slot) {
            self.by_value.remove(&v);
        }
        if !retire {
            self.free.push(slot);
        }
        self.live -= 1;
        host
    }

    /// Starts a new host value for `slot`: bumps the generation and returns
    /// it, with the previous (collected) host reference to delete, if any.
    pub fn begin_host_value(&mut self, slot: Slot) -> (u32, RawRef) {
        let m = &mut self.meta[slot as usize];
        m.generation = m.generation.saturating_add(1);
        let old = std::mem::replace(&mut m.host, std::ptr::null_mut());
        if !old.is_null() {
            self.held -= 1;
        }
        (m.generation, old)
    }

    /// Records the weak reference to the host value made for `slot`.
    pub fn set_host(&mut self, slot: Slot, host: RawRef) {
        let m = &mut self.meta[slot as usize];
        debug_assert!(m.host.is_null());
        m.host = host;
        self.held += 1;
    }

    #[inline]
    pub fn ptr(&mut self, slot: Slot) -> &mut Value {
        let s = slot as usize;
        let (c, i) = chunk_of(s);
        &mut self.chunks[c][i].value
    }

    #[inline]
    pub fn get(&self, slot: Slot) -> Value {
        let s = slot as usize;
        let (c, i) = chunk_of(s);
        self.chunks[c][i].value
    }

    /// A raw pointer to the slot's value, for engine calls that take
    /// `mvm_Value*` and may allocate (the slot stays rooted throughout).
    #[inline]
    pub fn raw(&mut self, slot: Slot) -> *mut Value {
        self.ptr(slot) as *mut Value
    }

    pub fn meta_ref(&self, slot: Slot) -> &SlotMeta {
        &self.meta[slot as usize]
    }

    pub fn meta(&mut self, slot: Slot) -> &mut SlotMeta {
        &mut self.meta[slot as usize]
    }

    pub fn is_live(&self, slot: Slot) -> bool {
        (slot as usize) < self.meta.len() && self.meta[slot as usize].in_use
    }

    /// Whether `slot` is in use and, for an id with a generation (not 0),
    /// still backs the host value that id was made for.
    pub fn is_current(&self, slot: Slot, generation: u32) -> bool {
        self.is_live(slot) && (generation == 0 || self.meta[slot as usize].generation == generation)
    }

    /// Slots allocated so far (in use or free), for memory accounting.
    pub fn capacity(&self) -> usize {
        self.meta.len()
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

    /// Releases the slots whose host value V8 has collected (it clears weak
    /// references during the collection itself) and hands each one's
    /// reference to `delete`. Returns how many were released. `is_alive`
    /// must not keep the values it looks at alive across a collection (the
    /// caller runs the sweep in a handle scope of its own).
    pub fn sweep_collected(&mut self, is_alive: impl Fn(RawRef) -> bool, mut delete: impl FnMut(RawRef)) -> usize {
        let mut released = 0;
        let mut left = self.held;
        for s in 0..self.meta.len() {
            if left == 0 {
                break;
            }
            let m = self.meta[s];
            if m.in_use && !m.host.is_null() {
                left -= 1;
                if !is_alive(m.host) {
                    delete(self.release(s as Slot));
                    released += 1;
                }
            }
        }
        released
    }

    /// Takes every host reference (when the VM goes away), for deletion.
    pub fn take_host_refs(&mut self) -> Vec<RawRef> {
        let refs: Vec<RawRef> = self
            .meta
            .iter_mut()
            .filter(|m| !m.host.is_null())
            .map(|m| std::mem::replace(&mut m.host, std::ptr::null_mut()))
            .collect();
        self.held = 0;
        refs
    }

    /// Slots currently backing a host value.
    pub fn host_held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    /// An engine that is not restored: the table's bookkeeping needs none
    /// (the glue links handles into a live engine's roots only).
    fn no_engine() -> Engine {
        Engine::new(std::rc::Rc::from(Vec::new()), 0)
    }

    /// A reference value to stand for a host value's weak reference; the
    /// table never dereferences it.
    fn fake_ref(n: usize) -> RawRef {
        (n * 16) as RawRef
    }

    #[test]
    fn ids_carry_slot_and_generation_exactly() {
        for (slot, generation) in [(0, 0), (5, 1), (MAX_HOST_SLOTS as Slot - 1, 7), (123, u32::MAX)] {
            assert_eq!(split_id(host_id(slot, generation)), Some((slot, generation)));
        }
        // A plain slot number is generation 0.
        assert_eq!(split_id(42.0), Some((42, 0)));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 9007199254740992.0] {
            assert_eq!(split_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn released_slots_are_reused_and_counted() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let a = t.alloc(&e, 0x0100);
        let b = t.alloc(&e, 0x0200);
        assert_ne!(a, b);
        assert_eq!((t.get(a), t.get(b)), (0x0100, 0x0200));
        assert_eq!(t.live(), 2);
        assert_eq!(t.capacity(), FIRST_CHUNK, "one chunk so far");
        assert!(t.release(a).is_null());
        assert!(!t.is_live(a));
        assert_eq!(t.get(a), engine::UNDEFINED, "a released slot roots nothing");
        assert_eq!(t.live(), 1);
        // Released twice: nothing happens the second time.
        assert!(t.release(a).is_null());
        assert_eq!(t.live(), 1);
        // The freed slot is the next one handed out.
        let c = t.alloc(&e, 0x0300);
        assert_eq!(c, a);
        assert_eq!(t.get(c), 0x0300);
        // Past a chunk, the table grows by a chunk and keeps the old slots.
        let more: Vec<Slot> = (0..FIRST_CHUNK).map(|i| t.alloc(&e, 4 * i as Value)).collect();
        assert_eq!(t.capacity(), 2 * FIRST_CHUNK);
        assert_eq!(t.get(b), 0x0200);
        assert!(more.iter().enumerate().all(|(i, &s)| t.get(s) == 4 * i as Value));
        assert_eq!(t.live(), FIRST_CHUNK + 2);
    }

    #[test]
    fn an_old_id_never_matches_a_reused_slot() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let s = t.alloc(&e, 0x0100);
        let (generation, old) = t.begin_host_value(s);
        assert!(old.is_null());
        t.set_host(s, fake_ref(1));
        assert!(t.is_current(s, generation));
        assert!(t.is_current(s, 0), "a plain slot number only asks that it is in use");
        assert_eq!(t.host_held(), 1);
        // Released: the id is stale, and the reference comes back to delete.
        assert_eq!(t.release(s), fake_ref(1));
        assert_eq!(t.host_held(), 0);
        assert!(!t.is_current(s, generation));
        // Reused for another value: still stale.
        let again = t.alloc(&e, 0x0200);
        assert_eq!(again, s);
        let (newer, _) = t.begin_host_value(again);
        assert!(newer > generation);
        assert!(!t.is_current(again, generation));
        assert!(t.is_current(again, newer));
        // A new host value for a slot whose old one was collected: the old
        // reference is handed back, and the old id goes stale.
        t.set_host(again, fake_ref(2));
        let (newest, old) = t.begin_host_value(again);
        assert_eq!(old, fake_ref(2));
        assert!(!t.is_current(again, newer) && t.is_current(again, newest));
    }

    #[test]
    fn a_slot_near_generation_overflow_is_retired() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let s = t.alloc(&e, 0x0100);
        t.meta(s).generation = RETIRE_GENERATION - 1;
        t.release(s);
        assert_eq!(t.meta_ref(s).generation, RETIRE_GENERATION);
        // Never handed out again, so its generation never wraps.
        for _ in 0..64 * FIRST_CHUNK {
            assert_ne!(t.alloc(&e, 0x0200), s);
        }
    }

    #[test]
    fn temporaries_are_a_stack_outside_the_count() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let held = t.alloc(&e, 0x0100);
        let mark = t.temp_mark();
        let a = t.push_temp(&e, 0x0200);
        let inner = t.temp_mark();
        let b = t.push_temp(&e, 0x0300);
        assert_eq!(t.live(), 1, "temporaries are not host-held slots");
        t.pop_temps(inner);
        assert_eq!(t.get(b), engine::UNDEFINED);
        assert_eq!(t.get(a), 0x0200);
        // The popped slot is the next temporary again: no new slots.
        let capacity = t.capacity();
        assert_eq!(t.push_temp(&e, 0x0400), b);
        t.pop_temps(mark);
        assert_eq!((t.get(a), t.get(b)), (engine::UNDEFINED, engine::UNDEFINED));
        assert_eq!(t.capacity(), capacity);
        assert_eq!(t.get(held), 0x0100);
    }

    #[test]
    fn collected_host_values_are_swept() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let slots: Vec<Slot> = (1..=4).map(|i| t.alloc(&e, 0x100 * i)).collect();
        for (i, &s) in slots.iter().enumerate() {
            t.begin_host_value(s);
            t.set_host(s, fake_ref(i + 1));
        }
        // V8 collected the host values of the second and fourth.
        let alive = |r: RawRef| r != fake_ref(2) && r != fake_ref(4);
        let mut deleted = Vec::new();
        assert_eq!(t.sweep_collected(alive, |r| deleted.push(r)), 2);
        assert_eq!(deleted, [fake_ref(2), fake_ref(4)]);
        assert!(t.is_live(slots[0]) && !t.is_live(slots[1]) && t.is_live(slots[2]) && !t.is_live(slots[3]));
        assert_eq!(t.host_held(), 2);
        let mut rest = t.take_host_refs();
        rest.sort();
        assert_eq!(rest, [fake_ref(1), fake_ref(3)]);
        assert_eq!(t.host_held(), 0);
    }

    #[test]
    fn identity_survives_values_moving() {
        let e = no_engine();
        let mut t = HandleTable::new();
        let s = t.alloc(&e, 0x0100);
        t.begin_host_value(s);
        t.set_host(s, fake_ref(1));
        t.remember(0x0100, s);
        assert_eq!(t.find(0x0100, 0), Some(s));
        assert_eq!(t.find(0x0104, 0), None);
        // A collection moved the value (the engine writes the handle) and
        // bumped the epoch: the map is rebuilt from the slots.
        *t.ptr(s) = 0x0204;
        assert_eq!(t.find(0x0100, 1), None, "the old address is no one's now");
        assert_eq!(t.find(0x0204, 1), Some(s));
        // A slot without a host value is not in the identity map.
        let plain = t.alloc(&e, 0x0300);
        assert_eq!(t.find(0x0300, 2), None);
        assert!(t.is_live(plain));
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::{chunk_of, FIRST_CHUNK};

    #[test]
    fn every_slot_has_one_place_in_doubling_chunks() {
        // Walk the slots in order: each chunk is filled from index 0 to its
        // size, then the next chunk (twice as large, after the first) starts.
        let mut expected = (0usize, 0usize);
        let mut size = FIRST_CHUNK;
        for s in 0..(FIRST_CHUNK << 12) {
            assert_eq!(chunk_of(s), expected, "slot {s}");
            expected.1 += 1;
            if expected.1 == size {
                if expected.0 > 0 {
                    size *= 2;
                }
                expected = (expected.0 + 1, 0);
            }
        }
    }
}
