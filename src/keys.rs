//! Property names crossing into the guest.
//!
//! A JavaScript property key is a string (o[10] and o['10'] are one
//! property). The engine keys the array indexes it can represent, canonical
//! decimal integers 0..8191, as int14, `length` and `__proto__` as
//! well-known values, and every other name as an interned string (the
//! engine's toPropertyName, patched by c/patches/property-keys.patch to do
//! this for every string and number).
//!
//! Two ways in:
//! - writes (`property_key`) intern the name in the guest, as a guest
//!   assignment would;
//! - reads (`existing_key`) only look the name up: a name the guest has
//!   never interned is a property of no object, so reading it allocates
//!   nothing and answers "absent" at once. (Interning it would leave a
//!   string and an intern-table cell in the guest heap for every distinct
//!   name ever read.)
//!
//! The cache: names the host uses often map to their guest key without a
//! search, and the JS layer addresses them by a numeric id (getk/setk). A
//! cached name stays rooted in a handle slot, which keeps it and its
//! intern-table cell alive in the guest, so the cache is bounded by the guest
//! bytes it pins (`BUDGET`), not by a count; names in the snapshot's ROM
//! pin nothing. Entries are evicted by the clock algorithm. An id is never
//! reused: it carries a serial number, so an id the JS layer still holds
//! after its entry was evicted no longer matches, and the caller's fallback
//! name is used instead. The JS layer's name → id map is dropped whenever an
//! entry is evicted, so it does not keep stale ids for long.
//!
//! Reads of names the cache lacks search the snapshot's string table and a
//! host-side index of the guest's RAM list of interned strings
//! (`InternIndex`), rebuilt after each guest collection.

use crate::engine::{self, kind};
use crate::errors;
use crate::key_cache::{pinned_cost, InternIndex, KeyCache};
use crate::js::{CallInfo, Env, JsResult, JsValue, Type};
use crate::roots::Rooted;
use crate::vm::VmState;
use std::rc::Rc;

/// What keeps the index of the guest's interned strings (see
/// key_cache::InternIndex) in step with the guest.
trait InternIndexSync {
    /// Brings the index up to date with the guest's list.
    fn sync(&mut self, vm: &VmState) -> Result<(), crate::errors::Failure>;
    /// The guest string spelled `name`, if the index has it.
    fn find(&self, vm: &VmState, name: &[u8]) -> Option<engine::Value>;
}

/// FNV-1a: the index's hash of a name's UTF-8 bytes.
fn name_hash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The bytes of a guest string, into `buf` (emptied first); false if the
/// engine refused.
fn guest_bytes(vm: &VmState, s: engine::Value, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    vm.engine().string_into(s, buf).is_ok()
}

impl InternIndexSync for InternIndex {
    fn sync(&mut self, vm: &VmState) -> Result<(), crate::errors::Failure> {
        let head = vm.engine().intern_head();
        if let Some(code) = vm.take_inspection_fatal() {
            self.valid = false;
            return Err(vm.fatal_failure(code));
        }
        let epoch = vm.gc_epoch();
        if self.valid && self.epoch == epoch && self.head == head {
            return Ok(());
        }
        let incremental = self.valid && self.epoch == epoch;
        let stop = if incremental { self.head } else { engine::UNDEFINED };
        let mut buf = std::mem::take(&mut self.buf);
        let (count, stopped) = loop {
            buf.resize(buf.len().max(256), engine::UNDEFINED);
            let (count, stopped) = vm.engine_op(|e| e.intern_list(stop, &mut buf))?;
            if count < buf.len() || stopped {
                break (count, stopped);
            }
            let n = buf.len() * 2;
            buf.resize(n, engine::UNDEFINED);
        };
        if incremental && !stopped {
            // The old front is gone without a collection: start again.
            self.buf = buf;
            self.valid = false;
            return self.sync(vm);
        }
        if !incremental {
            self.by_hash.clear();
            self.overflow.clear();
        }
        let mut bytes = Vec::new();
        for &s in &buf[..count] {
            if !guest_bytes(vm, s, &mut bytes) {
                continue;
            }
            let h = name_hash(&bytes);
            match self.by_hash.entry(h) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(s);
                }
                std::collections::hash_map::Entry::Occupied(_) => self.overflow.push((h, s)),
            }
        }
        self.buf = buf;
        self.valid = true;
        self.epoch = epoch;
        self.head = head;
        Ok(())
    }

    fn find(&self, vm: &VmState, name: &[u8]) -> Option<engine::Value> {
        let h = name_hash(name);
        let first = self.by_hash.get(&h).copied();
        let more = self.overflow.iter().filter(|(k, _)| *k == h).map(|&(_, s)| s);
        let mut bytes = Vec::new();
        first.into_iter().chain(more).find(|&s| guest_bytes(vm, s, &mut bytes) && bytes == name)
    }
}

/// Adds an interned key to the cache, evicting as needed; returns its id,
/// or None if it is not worth caching.
fn remember(env: Env, vm: &VmState, name: &[u8], value: engine::Value) -> Option<u64> {
    let cost = pinned_cost(value, name.len());
    if !KeyCache::admits(cost) {
        return None;
    }
    let slot = vm.handles.borrow_mut().alloc(vm.engine(), value);
    let (id, evicted) = vm.keys.borrow_mut().insert(name, cost, slot);
    if !evicted.is_empty() {
        let mut h = vm.handles.borrow_mut();
        for s in evicted {
            h.release(s);
        }
        drop(h);
        forget_js_ids(env, vm);
    }
    Some(id)
}

/// Drops the JS layer's name → id map (lib/membrane.js, `core.keyIds`), so
/// that it asks again instead of passing ids of evicted entries.
fn forget_js_ids(env: Env, vm: &VmState) {
    if let Some(core) = env.ref_value(vm.core.get()) {
        let _ = env.set_named(core, "keyIds", env.undefined());
    }
}

/// Empties the cache, unpinning every name it kept alive in the guest. For
/// when the guest heap is tight (see relieve_pressure in src/pressure.rs),
/// before a guest collection, so that names nothing else uses can go.
pub fn clear_cache(env: Env, vm: &VmState) {
    let slots = {
        let Ok(mut c) = vm.keys.try_borrow_mut() else { return };
        c.clear()
    };
    if let Ok(mut h) = vm.handles.try_borrow_mut() {
        for s in slots {
            h.release(s);
        }
    }
    forget_js_ids(env, vm);
}

/// The form a host key takes in the guest before any search.
enum Parsed {
    /// An int14 index or a well-known name: no interned string needed.
    Direct(engine::Value),
    /// A name, whose UTF-8 bytes are in `vm.string_buf`.
    Name,
}

/// The key JavaScript means by `key` (a string, or a number meaning its
/// string), without touching the guest.
fn parse(env: Env, vm: &VmState, key: JsValue) -> JsResult<Parsed> {
    let mut buf = vm.string_buf.borrow_mut();
    if let Some(d) = env.try_f64(key) {
        if d.fract() == 0.0 && (0.0..8192.0).contains(&d) {
            // -0 too: its string is "0".
            return Ok(Parsed::Direct(engine::int14_encode(d as i32).expect("in range")));
        }
        buf.clear();
        buf.extend_from_slice(crate::number_format::js_number_to_string(d).as_bytes());
        return Ok(Parsed::Name);
    }
    if env.type_of(key)? != Type::String {
        return Err(env.throw_type_error("Microvium property keys must be strings or numbers"));
    }
    env.get_string_into(key, &mut buf)?;
    Ok(match &buf[..] {
        // The engine spells these two with well-known values, and treats
        // them specially only in that form (array length, the prototype).
        b"length" => Parsed::Direct(engine::STR_LENGTH),
        b"__proto__" => Parsed::Direct(engine::STR_PROTO),
        b => match index14(b) {
            Some(i) => Parsed::Direct(engine::int14_encode(i).expect("in range")),
            None => Parsed::Name,
        },
    })
}

/// The canonical decimal form of an integer 0..8191 ("01" and "8192" are
/// ordinary names).
fn index14(b: &[u8]) -> Option<i32> {
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_digit) || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let i = b.iter().fold(0i32, |n, d| n * 10 + (d - b'0') as i32);
    (i < 8192).then_some(i)
}

fn cached<'a>(vm: &'a Rc<VmState>, name: &[u8]) -> Option<(Rooted<'a>, u64)> {
    let (slot, id) = vm.keys.borrow_mut().lookup(name)?;
    let v = vm.handles.borrow().get(slot);
    Some((Rooted::new(vm, v), id))
}

/// The guest key for a write of `key`: interned in the guest if it was not
/// (a guest string and an intern-table cell), and cached if worth it.
pub fn property_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<Rooted<'a>> {
    Ok(write_key(env, vm, key)?.0)
}

pub fn write_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<(Rooted<'a>, Option<u64>)> {
    if let Parsed::Direct(v) = parse(env, vm, key)? {
        return Ok((Rooted::new(vm, v), None));
    }
    let name = std::mem::take(&mut *vm.string_buf.borrow_mut());
    let result = intern(env, vm, &name);
    *vm.string_buf.borrow_mut() = name;
    result
}

fn intern<'a>(env: Env, vm: &'a Rc<VmState>, name: &[u8]) -> JsResult<(Rooted<'a>, Option<u64>)> {
    if let Some((r, id)) = cached(vm, name) {
        return Ok((r, Some(id)));
    }
    let r = Rooted::new(vm, engine::UNDEFINED);
    r.set(vm.engine_op(|e| e.new_string(name)).map_err(|f| errors::throw_failure(env, f))?);
    vm.engine_op(|e| e.to_property_key(r.root())).map_err(|f| errors::throw_failure(env, f))?;
    let id = remember(env, vm, name, r.get());
    Ok((r, id))
}

/// The guest key for a read of `key`, or None if the guest has never
/// interned that name (then no object has such a property). Allocates
/// nothing in the guest.
pub fn existing_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<Option<Rooted<'a>>> {
    Ok(read_key(env, vm, key)?.map(|(r, _)| r))
}

pub fn read_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<Option<(Rooted<'a>, Option<u64>)>> {
    if let Parsed::Direct(v) = parse(env, vm, key)? {
        return Ok(Some((Rooted::new(vm, v), None)));
    }
    let mut name = std::mem::take(&mut *vm.string_buf.borrow_mut());
    let result = find(env, vm, &mut name);
    *vm.string_buf.borrow_mut() = name;
    result
}

fn find<'a>(env: Env, vm: &'a Rc<VmState>, name: &mut Vec<u8>) -> JsResult<Option<(Rooted<'a>, Option<u64>)>> {
    if let Some((r, id)) = cached(vm, name) {
        return Ok(Some((r, Some(id))));
    }
    // The engine sizes strings with their terminator. Nothing is allocated,
    // so the key found cannot move before it is rooted below.
    name.push(0);
    let status = vm.engine_op(|e| e.find_rom_key(name));
    name.pop();
    let out = match status.map_err(|f| errors::throw_failure(env, f))? {
        Some(key) => key,
        None => {
            let mut c = vm.keys.borrow_mut();
            c.interned.sync(vm).map_err(|f| errors::throw_failure(env, f))?;
            match c.interned.find(vm, name) {
                Some(s) => s,
                None => return Ok(None),
            }
        }
    };
    let r = Rooted::new(vm, out);
    let id = remember(env, vm, name, out);
    Ok(Some((r, id)))
}

fn arg(env: Env, ci: &CallInfo, i: usize) -> JsValue {
    ci.args().get(i).copied().unwrap_or_else(|| env.undefined())
}

/// The key a getk/setk call names: its id (arg 2) if still cached, else
/// its name (arg `name_arg`), read or written as `write` says. None: a read
/// of a name never interned.
pub fn key_by_id<'a>(env: Env, vm: &'a Rc<VmState>, ci: &CallInfo, name_arg: usize, write: bool) -> JsResult<Option<Rooted<'a>>> {
    let id = env.try_f64(arg(env, ci, 2)).unwrap_or(-1.0);
    if id >= 0.0 && id < 9007199254740992.0 {
        // Through i64: one instruction on x86-64 (the range is checked).
        let slot = vm.keys.borrow_mut().by_id(id as i64 as u64);
        if let Some(s) = slot {
            let v = vm.handles.borrow().get(s);
            return Ok(Some(Rooted::new(vm, v)));
        }
    }
    let name = arg(env, ci, name_arg);
    if env.type_of(name)? == Type::Undefined {
        return Err(env.throw_error("Microvium: unknown property key id"));
    }
    if write { property_key(env, vm, name).map(Some) } else { existing_key(env, vm, name) }
}

/// An own property of the guest value in `slot`: Some(value) or None.
/// Arrays: indexes below their length (holes included), and `length`.
pub fn own_property<'a>(env: Env, vm: &'a Rc<VmState>, slot: u32, key: JsValue) -> JsResult<Option<Rooted<'a>>> {
    let Some(k) = existing_key(env, vm, key)? else { return Ok(None) };
    let object = vm.handles.borrow().get(slot);
    let (kd, _) = vm.engine().kind(object);
    if kd == kind::ARRAY || kd == kind::FIXED_ARRAY {
        let index = engine::int14_decode(k.get());
        let len = vm.engine().array_length(object);
        return match index {
            Some(i) if i < len => Ok(Some(k)),
            _ if k.get() == engine::STR_LENGTH => Ok(Some(k)),
            _ => Ok(None),
        };
    }
    if kd != kind::OBJECT && kd != kind::PROMISE && kd != kind::CLASS {
        return Ok(None);
    }
    let key = k.get();
    // Nothing is allocated, so the values stay put.
    let found = vm.engine_op(|e| e.own_property(object, key)).map_err(|f| errors::throw_failure(env, f))?;
    Ok(found.map(|out| Rooted::new(vm, out)))
}

/// Whether a name is a JavaScript array index (a canonical decimal integer
/// below 2^32 - 1), which ordinary objects list first, in numeric order.
pub fn array_index(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let n = b.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64);
    (n < u32::MAX as u64).then_some(n as u32)
}

/// A guest property key (from the engine's list of an object's keys) as a
/// host string, with its array index if it is one (for the key order).
pub fn host_key(env: Env, vm: &Rc<VmState>, key: engine::Value) -> JsResult<(JsValue, Option<u32>)> {
    if let Some(i) = engine::int14_decode(key) {
        return Ok((env.string(i.to_string().as_bytes())?, Some(i as u32)));
    }
    let mut bytes = Vec::new();
    if let Err(code) = vm.engine().string_into(key, &mut bytes) {
        return Err(errors::throw_failure(env, vm.engine_failure(code)));
    }
    Ok((env.string(&bytes)?, array_index(&bytes)))
}
