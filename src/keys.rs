//! Property names crossing into the guest: index-like names become integer
//! keys, others interned guest strings, cached per VM (by UTF-8 bytes, and
//! by small integer id for the proxies' fast path).

use crate::engine;
use crate::js::{Env, JsResult, JsValue, Type};
use crate::vm::VmState;
use std::rc::Rc;
use crate::roots::Rooted;

/// Most distinct property names a VM caches as guest keys.
const KEY_CACHE_LIMIT: usize = 1024;

/// A property key for the guest: array-index-like keys become integers,
/// everything else an interned guest string (cached per VM).
pub fn property_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue) -> JsResult<Rooted<'a>> {
    if let Some(d) = env.try_f64(key) {
        if d.fract() == 0.0 && (0.0..8192.0).contains(&d) && !(d == 0.0 && d.is_sign_negative()) {
            return Ok(Rooted::new(vm, engine::int14_encode(d as i32).expect("in range")));
        }
        let s = env.string(crate::number_format::js_number_to_string(d).as_bytes())?;
        return property_key(env, vm, s);
    }
    if env.type_of(key)? != Type::String {
        return Err(env.throw_type_error("Microvium property keys must be strings or numbers"));
    }
    let mut buf = std::mem::take(&mut *vm.string_buf.borrow_mut());
    let result = string_key(env, vm, key, &mut buf);
    *vm.string_buf.borrow_mut() = buf;
    result
}

fn string_key<'a>(env: Env, vm: &'a Rc<VmState>, key: JsValue, buf: &mut Vec<u8>) -> JsResult<Rooted<'a>> {
    env.get_string_into(key, buf)?;
    // The engine spells these two keys with well-known values, and treats
    // them specially only in that form (array length, the prototype).
    match &buf[..] {
        b"length" => return Ok(Rooted::new(vm, engine::STR_LENGTH)),
        b"__proto__" => return Ok(Rooted::new(vm, engine::STR_PROTO)),
        _ => {}
    }
    if !buf.is_empty() && buf.len() <= 4 && buf.iter().all(u8::is_ascii_digit) && (buf[0] != b'0' || buf.len() == 1) {
        let i: i32 = std::str::from_utf8(buf).expect("ascii").parse().expect("digits");
        if i < 8192 {
            return Ok(Rooted::new(vm, engine::int14_encode(i).expect("in range")));
        }
    }
    if let Some(&id) = vm.key_cache.borrow().get(&buf[..]) {
        let slot = vm.key_ids.borrow()[id as usize];
        let v = vm.handles.borrow().get(slot);
        return Ok(Rooted::new(vm, v));
    }
    let ctx = vm.ctx();
    let r = Rooted::new(vm, engine::UNDEFINED);
    let mut out = engine::UNDEFINED;
    // SAFETY: buf holds buf.len() bytes; ctx is live.
    vm.engine_op(|| unsafe { engine::glue_new_string(ctx, buf.as_ptr() as *const _, buf.len(), &mut out) })
        .map_err(|f| crate::membrane::throw_failure(env, vm, f))?;
    r.set(out);
    let p = r.raw();
    // SAFETY: p points into a rooted slot.
    vm.engine_op(|| unsafe { engine::glue_to_property_key(ctx, p) }).map_err(|f| crate::membrane::throw_failure(env, vm, f))?;
    let mut cache = vm.key_cache.borrow_mut();
    if cache.len() < KEY_CACHE_LIMIT {
        let interned = r.get();
        let slot = vm.handles.borrow_mut().alloc(ctx, interned);
        let mut ids = vm.key_ids.borrow_mut();
        cache.insert(buf.clone().into_boxed_slice(), ids.len() as u32);
        ids.push(slot);
    }
    Ok(r)
}

/// The id of a property name in the VM's key cache (see keyId in api.rs),
/// or -1 if it is not cached (the cache is full, or the key is an index or
/// a well-known name, which need no cache).
pub fn key_id(env: Env, vm: &Rc<VmState>, key: JsValue) -> JsResult<i32> {
    if env.type_of(key)? != Type::String {
        return Ok(-1);
    }
    // Converting caches the name (if there is room); its UTF-8 bytes are
    // left in the VM's string buffer.
    property_key(env, vm, key)?;
    let bytes = vm.string_buf.borrow();
    Ok(vm.key_cache.borrow().get(&bytes[..]).map(|&id| id as i32).unwrap_or(-1))
}
