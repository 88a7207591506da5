//! The key cache's data (see keys.rs for what it is for and how it is
//! used): names the host uses often and the guest keys they map to, each
//! rooted in a handle slot of the VM, evicted by the clock algorithm within
//! a budget of the guest bytes they pin; and the host's index of the guest's
//! interned strings. Plain data with no engine access, so the VM state
//! (vm.rs) can hold it below the modules that touch the guest.

use crate::engine;
use crate::handles::Slot;
use std::collections::HashMap;

/// Guest heap bytes the cache may keep alive (strings and their cells).
pub const BUDGET: usize = 2048;
/// Entries at most (ROM names cost no guest bytes); ids keep the entry's
/// index in their low bits.
const MAX_ENTRIES: usize = 256;
const INDEX_BITS: u32 = 8;
/// A name whose key would take more than this is not cached: a few long
/// names would otherwise push out everything else.
const MAX_COST: usize = BUDGET / 8;

struct Entry {
    name: Box<[u8]>,
    slot: Slot,
    id: u64,
    cost: usize,
    /// Clock bit: used since the hand last passed.
    used: bool,
}

#[derive(Default)]
pub struct KeyCache {
    by_name: HashMap<Box<[u8]>, usize>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    hand: usize,
    pinned: usize,
    serial: u64,
    pub(crate) interned: InternIndex,
}

/// The host's index of the guest's RAM list of interned strings (by a hash
/// of their bytes), so that a read of a name not in the cache costs a hash
/// lookup, not a walk of the list. Guest strings move when the guest heap
/// is collected, so the index is rebuilt after a collection (gc_epoch);
/// between collections the list only grows at its front, and only the new
/// cells are indexed. It holds no guest values alive.
#[derive(Default)]
pub struct InternIndex {
    pub(crate) valid: bool,
    pub(crate) epoch: u32,
    pub(crate) head: engine::Value,
    pub(crate) by_hash: HashMap<u64, engine::Value, std::hash::BuildHasherDefault<crate::handles::ValueHasher>>,
    /// Strings whose hash another string already has.
    pub(crate) overflow: Vec<(u64, engine::Value)>,
    pub(crate) buf: Vec<engine::Value>,
}

impl KeyCache {
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn pinned_bytes(&self) -> usize {
        self.pinned
    }

    pub fn lookup(&mut self, name: &[u8]) -> Option<(Slot, u64)> {
        let &i = self.by_name.get(name)?;
        let e = self.entries[i].as_mut().expect("mapped entries are live");
        e.used = true;
        Some((e.slot, e.id))
    }

    pub fn by_id(&mut self, id: u64) -> Option<Slot> {
        let i = (id & ((1 << INDEX_BITS) - 1)) as usize;
        match self.entries.get_mut(i) {
            Some(Some(e)) if e.id == id => {
                e.used = true;
                Some(e.slot)
            }
            _ => None,
        }
    }

    /// Removes one entry chosen by the clock; returns its slot.
    fn evict_one(&mut self) -> Option<Slot> {
        if self.by_name.is_empty() {
            return None;
        }
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.entries.len();
            match &mut self.entries[i] {
                Some(e) if e.used => e.used = false,
                Some(_) => {
                    let e = self.entries[i].take().expect("checked");
                    self.by_name.remove(&e.name);
                    self.pinned -= e.cost;
                    self.free.push(i);
                    return Some(e.slot);
                }
                None => {}
            }
        }
    }

    /// Whether a key that pins `cost` guest bytes is worth caching.
    pub fn admits(cost: usize) -> bool {
        cost <= MAX_COST
    }

    /// Adds the key `name`, rooted in `slot` and pinning `cost` guest
    /// bytes, evicting entries until it fits. Returns its id and the slots
    /// of the entries evicted, which the caller releases.
    pub fn insert(&mut self, name: &[u8], cost: usize, slot: Slot) -> (u64, Vec<Slot>) {
        let mut evicted = Vec::new();
        while self.pinned + cost > BUDGET || (self.free.is_empty() && self.entries.len() >= MAX_ENTRIES) {
            match self.evict_one() {
                Some(s) => evicted.push(s),
                None => break,
            }
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(None);
                self.entries.len() - 1
            }
        };
        self.serial += 1;
        let id = self.serial << INDEX_BITS | index as u64;
        self.entries[index] = Some(Entry { name: name.into(), slot, id, cost, used: false });
        self.by_name.insert(name.into(), index);
        self.pinned += cost;
        (id, evicted)
    }

    /// Empties the cache; returns the slots of its entries, which the
    /// caller releases.
    pub fn clear(&mut self) -> Vec<Slot> {
        let slots = self.entries.iter().flatten().map(|e| e.slot).collect();
        *self = KeyCache::default();
        slots
    }
}

/// Guest bytes that keeping `value`, an interned key of `len` UTF-8 bytes,
/// alive costs: the string (header, bytes, terminator, padding) and its
/// intern-table cell (header, next, string). Keys in ROM cost nothing.
pub fn pinned_cost(value: engine::Value, len: usize) -> usize {
    let in_ram = value & 1 == 0;
    if in_ram { 2 + ((len + 2) & !1) + 6 } else { 0 }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_name_and_id_until_evicted() {
        let mut c = KeyCache::default();
        let (a, evicted) = c.insert(b"alpha", 100, 1);
        assert!(evicted.is_empty());
        let (b, _) = c.insert(b"beta", 100, 2);
        assert_ne!(a, b);
        assert_eq!(c.lookup(b"alpha"), Some((1, a)));
        assert_eq!(c.by_id(b), Some(2));
        assert_eq!((c.len(), c.pinned_bytes()), (2, 200));
        // Filling the budget evicts; the clock spares entries used since the
        // hand last passed (alpha and beta, just looked up), once.
        let mut out = Vec::new();
        for i in 0..BUDGET / 100 {
            let (_, e) = c.insert(format!("n{i}").as_bytes(), 100, 10 + i as Slot);
            out.extend(e);
        }
        assert!(c.pinned_bytes() <= BUDGET);
        assert_eq!(out, [10, 11], "the unused entries go first");
        for i in 0..BUDGET / 100 {
            let (_, e) = c.insert(format!("m{i}").as_bytes(), 100, 100 + i as Slot);
            out.extend(e);
        }
        assert!(out.contains(&1) && out.contains(&2), "{out:?}");
        // An evicted entry's id never matches again, even if its index is
        // reused.
        assert_eq!(c.by_id(a), None);
        assert_eq!(c.lookup(b"alpha"), None);
    }

    #[test]
    fn names_in_rom_cost_nothing_and_long_names_are_not_cached() {
        assert_eq!(pinned_cost(0x0003, 10), 0, "odd values are in ROM");
        // A header, the byte and its terminator, and the intern-table cell.
        assert_eq!(pinned_cost(0x0100, 1), 2 + 2 + 6);
        assert!(KeyCache::admits(pinned_cost(0x0100, 100)));
        assert!(!KeyCache::admits(pinned_cost(0x0100, 400)));
        // At most MAX_ENTRIES entries, even of names that pin nothing.
        let mut c = KeyCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(format!("k{i}").as_bytes(), 0, i as Slot);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert_eq!(c.clear().len(), MAX_ENTRIES);
        assert_eq!((c.len(), c.pinned_bytes()), (0, 0));
    }
}
