'use strict';
// The JS half of the membrane: host values for guest objects, arrays,
// classes, Uint8Arrays and functions. The native side decides when a new host value is
// needed (it keeps one per guest value, for identity) and calls makeValue;
// every trap goes back to the native side with (core, slot), where `slot`
// is the id the native side gave (it also tells a released value apart).

const util = require('node:util');
const native = require('../binding.js');

// The value kinds of c/engine.h (GLUE_KIND_*), as the addon exports them.
const KIND = native.kinds;

const CORE = Symbol('microvium.core');
const SLOT = Symbol('microvium.slot');
const PROXY = Symbol('microvium.proxy');
// Reading this key through a guest proxy gives its target (JS-layer only).
const TARGET = Symbol('microvium.target');
// The read cache of a guest object's proxy (see remember).
const CACHE = Symbol('microvium.cache');

// The thread's shared buffer (see "The shared buffer" in src/js.rs). Its
// epoch moves whenever native code may have changed anything a read could
// return (every call into a VM, every write, release, dispose, a fatal
// error...), and only then; calls whose arguments are all numbers leave the
// callee and the arguments there instead of passing them through Node-API.
const SHARED = new Float64Array(native.shared);
const {
  epoch: EPOCH_AT, slot: SLOT_AT, tags: TAGS_AT, args: ARGS_AT, number: ARG_NUMBER, string: ARG_STRING,
  result: RESULT_AT, resultInBuffer: RESULT_IN_BUFFER,
} = native.sharedLayout;

function hidden(target, key, value) {
  // Configurable, so proxy invariants do not force ownKeys to report it.
  Object.defineProperty(target, key, { value, writable: true, enumerable: false, configurable: true });
}

const INDEX = /^(0|[1-9][0-9]*)$/;

// Property names become small integer ids once per VM (core.keyIds), so
// reads and writes through proxies pass numbers, not strings, to the
// native side (see src/keys.rs). Index-like names get -1 (UNCACHED) without
// asking. A read of a name the guest has never interned gets NOT_INTERNED:
// no object has that property, and nothing is remembered, because a later
// write may intern it. The native side drops core.keyIds whenever it
// evicts a name from its cache, and checks every id it is given (a stale
// one falls back to the name passed with it).
const UNCACHED = -1;
const NOT_INTERNED = -2;
const KEY_IDS_MAX = 4096;

function keyId(core, key, forWrite) {
  let ids = core.keyIds;
  if (ids === undefined) ids = core.keyIds = new Map();
  let id = ids.get(key);
  if (id === undefined) {
    id = INDEX.test(key) || SPECIAL_READ.has(key) ? UNCACHED : native.keyId(core, key, forWrite);
    if (id !== NOT_INTERNED) {
      // The native side may have replaced core.keyIds meanwhile.
      ids = core.keyIds;
      if (ids === undefined) ids = core.keyIds = new Map();
      if (ids.size >= KEY_IDS_MAX) ids.clear();
      ids.set(key, id);
    }
  }
  return id;
}

function isOwnGuestKey(target, key) {
  const core = target[CORE];
  const slot = target[SLOT];
  if (Array.isArray(target)) {
    const i = typeof key === 'string' && INDEX.test(key) ? Number(key) : -1;
    return i >= 0 && i < native.length(core, slot);
  }
  if (PROTOCOL.has(key)) return ownProtocolValue(core, slot, key) !== ABSENT;
  return native.has(core, slot, key);
}

// What getOwn returns for a property the guest object does not have.
const ABSENT = Symbol('microvium.absent');

// The protocol rule: the host reads `then` (await, promise resolution),
// `toString` and `valueOf` (String(), template literals, +) and `toJSON`
// (JSON.stringify) implicitly, and calls what it finds with arguments of
// its own choosing (V8's resolve and reject functions, for `then`). A guest
// value under one of these names counts only if it is not one of the VM's
// imports: through the host's proxies, a property holding an import under
// these names does not exist (reads, `in`, descriptors, keys, spread and
// JSON.stringify all skip it, and reads fall back to Object.prototype's or
// Function.prototype's member where there is one). The guest itself is not
// affected.
const PROTOCOL = new Set(['then', 'toString', 'valueOf', 'toJSON']);

function isImport(core, value) {
  if (typeof value !== 'function') return false;
  let imports = core.importSet;
  if (imports === undefined) imports = core.importSet = new Set(core.imports);
  return imports.has(value);
}

// An own protocol-named property's value, or ABSENT (also when it holds an
// import, per the protocol rule).
function ownProtocolValue(core, slot, key) {
  const v = native.getOwn(core, slot, key, ABSENT);
  return isImport(core, v) ? ABSENT : v;
}

// A read of a protocol-named property (own or inherited in the guest).
function protocolRead(core, slot, key) {
  const v = key === 'then' ? thenOf(core, slot) : native.get(core, slot, key);
  return isImport(core, v) ? undefined : v;
}

// Reads fall back to the host prototype the proxy reports (Object.prototype
// or Array.prototype), so p.toString(), arr.map(...) and friends work.
function fallback(target, key) {
  return Array.isArray(target) ? Array.prototype[key] : Object.prototype[key];
}

// Promises read `then` of every value they settle with, in microtasks of
// their own (a promise derived with .catch() or .finally() does so when the
// original fulfils). If that read threw because the VM had been disposed or
// failed in the meantime, the derived promise would reject where nobody
// handles it, and Node ends the process on an unhandled rejection. So `then`
// of a guest object reads as undefined whenever it cannot be read: the next
// explicit use of the VM reports why.
function thenOf(core, slot) {
  if (native.status(core) !== 'live') return undefined;
  try {
    const then = native.get(core, slot, 'then');
    // An import is never a guest `then` (see PROTOCOL).
    return isImport(core, then) ? undefined : then;
  } catch {
    return undefined;
  }
}

function refuseExtensionsChange() {
  throw new TypeError(
    'Microvium objects cannot be frozen, sealed or made non-extensible (Object.freeze, Object.seal, ' +
    'Object.preventExtensions): the guest can always add properties',
  );
}

// Guest properties are plain data properties: writable, enumerable and
// configurable. A descriptor asking for anything else is refused before the
// guest changes (an attribute left out counts as true).
function checkPlainDescriptor(descriptor, key) {
  if (typeof key === 'symbol') {
    throw new TypeError('Cannot define a symbol-keyed property on a Microvium value');
  }
  if (!('value' in descriptor) || 'get' in descriptor || 'set' in descriptor) {
    throw new TypeError('Microvium objects only support plain data properties');
  }
  if (descriptor.writable === false || descriptor.enumerable === false || descriptor.configurable === false) {
    throw new TypeError(
      'Microvium objects only support plain data properties (writable, enumerable and configurable)',
    );
  }
}

// Property values read through an object's proxy are remembered for as long
// as the epoch stays where it was when the read began: a loop reading a held
// object's properties asks the native side once per name. Only primitives
// are kept (a guest object's host value has a lifetime of its own), and only
// a few names per object.
const CACHE_NAMES = 8;
// A proxy's cache: [epoch, count, name, value, name, value...], made once
// at its full size and reset in place (shortening an array is slow in V8).
const CACHE_EPOCH = 0;
const CACHE_COUNT = 1;
const CACHE_FIRST = 2;

function remember(target, epoch, key, value) {
  let cache = target[CACHE];
  if (cache === undefined) {
    target[CACHE] = cache = new Array(CACHE_FIRST + 2 * CACHE_NAMES).fill(undefined);
    cache[CACHE_EPOCH] = epoch;
    cache[CACHE_COUNT] = 0;
  } else if (cache[CACHE_EPOCH] !== epoch) {
    cache[CACHE_EPOCH] = epoch;
    cache[CACHE_COUNT] = 0;
  }
  const n = cache[CACHE_COUNT];
  if (n < CACHE_NAMES) {
    cache[CACHE_FIRST + 2 * n] = key;
    cache[CACHE_FIRST + 2 * n + 1] = value;
    cache[CACHE_COUNT] = n + 1;
  }
}

// Names the get trap never reads straight from the guest.
const SPECIAL_READ = new Set([...PROTOCOL, '__proto__']);

// Everything else the get trap reads: symbols, arrays' properties, and
// the names of SPECIAL_READ.
function otherGet(target, key) {
  if (typeof key === 'symbol') {
    if (key === TARGET) return target;
    if (key === Symbol.iterator && Array.isArray(target)) return Array.prototype[Symbol.iterator];
    return key === Symbol.toStringTag ? undefined : fallback(target, key);
  }
  const core = target[CORE];
  const slot = target[SLOT];
  if (key === 'then' && !Array.isArray(target)) return thenOf(core, slot);
  if (key === '__proto__' && !Array.isArray(target)) return objectHandler.getPrototypeOf(target);
  if (Array.isArray(target)) {
    // Guest arrays have only indexes and length; everything else (map,
    // forEach, toJSON...) comes from the reported Array.prototype.
    if (key === 'length') return native.length(core, slot);
    if (!INDEX.test(key)) return Array.prototype[key];
    return native.get(core, slot, key);
  }
  // What is left is a protocol name (toString, valueOf, toJSON) of an object.
  const v = protocolRead(core, slot, key);
  if (v === undefined && key in Object.prototype && !isOwnGuestKey(target, key)) return Object.prototype[key];
  return v;
}

const objectHandler = {
  get(target, key) {
    const cache = target[CACHE];
    if (cache !== undefined && cache[CACHE_EPOCH] === SHARED[EPOCH_AT]) {
      const end = CACHE_FIRST + 2 * cache[CACHE_COUNT];
      for (let i = CACHE_FIRST; i < end; i += 2) {
        if (cache[i] === key) return cache[i + 1];
      }
    }
    const core = target[CORE];
    const ids = core.keyIds;
    // The hot path: a name read before, of a guest object, read by key id
    // through the VM's own reader (see makeReader in src/api.rs). One Map
    // lookup decides it: symbols are never in core.keyIds, and the names of
    // SPECIAL_READ and indexes are there as UNCACHED (see keyId).
    let id = ids === undefined ? undefined : ids.get(key);
    if (Array.isArray(target)) return otherGet(target, key);
    if (!(id >= 0)) {
      if (typeof key !== 'string' || SPECIAL_READ.has(key)) return otherGet(target, key);
      if (id === undefined) id = keyId(core, key, false);
    }
    let v;
    if (id >= 0) {
      const getk = core.getk || (core.getk = native.makeReader(core));
      // The epoch before the read: if anything moves it during the read,
      // what was read is not remembered past that.
      const epoch = SHARED[EPOCH_AT];
      v = getk(core, target[SLOT], id, key);
      if (v !== undefined && typeof v !== 'object' && typeof v !== 'function') remember(target, epoch, key, v);
    } else if (id !== NOT_INTERNED) v = native.get(core, target[SLOT], key);
    if (v === undefined && key in Object.prototype && !isOwnGuestKey(target, key)) return Object.prototype[key];
    return v;
  },
  set(target, key, value) {
    if (typeof key === 'symbol') {
      throw new TypeError('Cannot set a symbol-keyed property on a Microvium object');
    }
    // A length converts as for a host array (a RangeError unless it is a
    // whole number below 2^32). A length the engine cannot hold (more than
    // 2047 items) is its MicroviumError MVM_E_ARRAY_TOO_LONG, and the VM
    // goes on.
    if (key === 'length' && Array.isArray(target)) {
      const n = +value;
      if (n !== n >>> 0) throw new RangeError('Invalid array length');
      value = n;
    }
    const id = Array.isArray(target) ? -1 : keyId(target[CORE], key, true);
    if (id >= 0) native.setk(target[CORE], target[SLOT], id, value, key);
    else native.set(target[CORE], target[SLOT], key, value);
    return true;
  },
  has(target, key) {
    if (typeof key === 'symbol') return key in fallback(target, 'constructor').prototype;
    if (key === 'length' && Array.isArray(target)) return true;
    return isOwnGuestKey(target, key) || key in (Array.isArray(target) ? Array.prototype : Object.prototype);
  },
  ownKeys(target) {
    const keys = native.ownKeys(target[CORE], target[SLOT]);
    if (Array.isArray(target)) keys.push('length');
    else return withoutHiddenProtocolKeys(target[CORE], target[SLOT], keys);
    return keys;
  },
  getOwnPropertyDescriptor(target, key) {
    if (typeof key === 'symbol') return undefined;
    if (Array.isArray(target) && key === 'length') {
      return { value: native.length(target[CORE], target[SLOT]), writable: true, enumerable: false, configurable: false };
    }
    if (Array.isArray(target)) {
      if (!isOwnGuestKey(target, key)) return undefined;
      return { value: native.get(target[CORE], target[SLOT], key), writable: true, enumerable: true, configurable: true };
    }
    // One direct lookup of the key (not a scan of all the object's keys).
    const value = PROTOCOL.has(key)
      ? ownProtocolValue(target[CORE], target[SLOT], key)
      : native.getOwn(target[CORE], target[SLOT], key, ABSENT);
    if (value === ABSENT) return undefined;
    return { value, writable: true, enumerable: true, configurable: true };
  },
  defineProperty(target, key, descriptor) {
    checkPlainDescriptor(descriptor, key);
    native.set(target[CORE], target[SLOT], key, descriptor.value);
    return true;
  },
  deleteProperty() {
    throw new TypeError('Microvium objects do not support deleting properties from the host');
  },
  // Without this trap the proxy's target would be made non-extensible, and
  // a non-extensible target obliges ownKeys to report exactly the target's
  // keys: every later Object.keys of the proxy would throw.
  preventExtensions: refuseExtensionsChange,
  getPrototypeOf(target) {
    if (Array.isArray(target)) return Array.prototype;
    const proto = native.proto(target[CORE], target[SLOT]);
    return proto === null ? Object.prototype : proto;
  },
  setPrototypeOf() {
    return false;
  },
};

// ownKeys of a guest object, less protocol-named properties that hold
// imports (see PROTOCOL).
function withoutHiddenProtocolKeys(core, slot, keys) {
  let result = keys;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (PROTOCOL.has(k) && ownProtocolValue(core, slot, k) === ABSENT) {
      if (result === keys) result = keys.slice(0, i);
    } else if (result !== keys) {
      result.push(k);
    }
  }
  return result;
}

// util.inspect formats a proxy's target, not what the traps return, so the
// target carries a custom inspector. It inspects a plain copy of the guest
// value, nested guest values copied too (down to the depth Node would show,
// cycles kept as cycles), so the output is exactly a host literal's.
function plainCopy(value, levels, seen) {
  const target = value !== null && typeof value === 'object' ? value[TARGET] : undefined;
  if (target === undefined) return value;
  if (seen.has(value)) return seen.get(value);
  if (levels < 0) return Array.isArray(target) ? [] : {};
  const copy = Array.isArray(target) ? [] : {};
  seen.set(value, copy);
  if (Array.isArray(target)) {
    const n = value.length;
    for (let i = 0; i < n; i++) copy.push(plainCopy(value[i], levels - 1, seen));
  } else {
    for (const k of Object.keys(value)) copy[k] = plainCopy(value[k], levels - 1, seen);
  }
  return copy;
}

function inspectGuest(depth, options, inspect) {
  // Node calls this with the proxy as `this`; with showProxy it inspects the
  // bare target instead.
  const proxy = util.types.isProxy(this) ? this : this[PROXY];
  let copy;
  try {
    copy = plainCopy(proxy, depth === null || depth === Infinity ? 1000 : depth + 1, new Map());
  } catch (e) {
    return '[Microvium value: ' + (e && e.message) + ']';
  }
  return inspect(copy, { ...options, depth });
}

function makeObject(kind, core, slot) {
  const target = kind === KIND.OBJECT || kind === KIND.PROMISE ? {} : [];
  hidden(target, CORE, core);
  hidden(target, SLOT, slot);
  hidden(target, util.inspect.custom, inspectGuest);
  hidden(target, CACHE, undefined);
  const proxy = new Proxy(target, objectHandler);
  hidden(target, PROXY, proxy);
  return proxy;
}

const classHandler = {
  get(target, key) {
    if (typeof key === 'symbol') return Function.prototype[key];
    if (PROTOCOL.has(key)) {
      const v = protocolRead(target[CORE], target[SLOT], key);
      return v === undefined && key in Function.prototype ? Function.prototype[key] : v;
    }
    return native.get(target[CORE], target[SLOT], key);
  },
  set(target, key, value) {
    if (typeof key === 'symbol') {
      throw new TypeError('Cannot set a symbol-keyed property on a Microvium class');
    }
    native.set(target[CORE], target[SLOT], key, value);
    return true;
  },
  has(target, key) {
    if (typeof key === 'symbol') return key in Function.prototype;
    if (PROTOCOL.has(key)) return ownProtocolValue(target[CORE], target[SLOT], key) !== ABSENT;
    return native.has(target[CORE], target[SLOT], key);
  },
  defineProperty(target, key, descriptor) {
    // Not on the target function: the get trap reads the guest, and a
    // property defined on the target could break the proxy's invariants.
    checkPlainDescriptor(descriptor, key);
    native.set(target[CORE], target[SLOT], key, descriptor.value);
    return true;
  },
  deleteProperty() {
    throw new TypeError('Microvium classes do not support deleting properties from the host');
  },
  preventExtensions: refuseExtensionsChange,
  construct(target, args) {
    return native.construct(target[CORE], target[SLOT], ...args);
  },
  apply() {
    throw new TypeError("Class constructor cannot be invoked without 'new'");
  },
};

function makeClass(core, slot) {
  // A plain function: it is constructible, and its `prototype` is writable,
  // so the get trap may report the guest's prototype object.
  const target = function MicroviumClass() {};
  hidden(target, CORE, core);
  hidden(target, SLOT, slot);
  return new Proxy(target, classHandler);
}

class MicroviumUint8Array {
  #core;
  #slot;
  constructor(core, slot) {
    this.#core = core;
    this.#slot = slot;
  }
  get length() {
    return native.u8Length(this.#core, this.#slot);
  }
  slice(begin, end) {
    const len = this.length;
    const rel = (x, dflt) => {
      if (x === undefined) return dflt;
      let n = Math.trunc(Number(x));
      if (Number.isNaN(n)) n = 0;
      return n < 0 ? Math.max(len + n, 0) : Math.min(n, len);
    };
    const b = rel(begin, 0);
    const e = rel(end, len);
    return native.u8Slice(this.#core, this.#slot, b, Math.max(e, b));
  }
  set(array, offset = 0) {
    const off = Math.trunc(Number(offset));
    if (!(off >= 0)) throw new RangeError('offset is out of bounds');
    const source = array instanceof Uint8Array ? array : Uint8Array.from(array);
    if (off + source.length > this.length) throw new RangeError('offset is out of bounds');
    native.u8Set(this.#core, this.#slot, source, off);
  }
  *[Symbol.iterator]() {
    yield* this.slice();
  }
  [util.inspect.custom](depth, options, inspect) {
    return 'MicroviumUint8Array(' + this.length + ') ' + inspect(Array.from(this.slice()), options);
  }
}

// A guest function is a plain closure (V8 memory only; a native function per
// guest function would hold native memory until the event loop turns).
// `core.call` and `core.callThis` are the VM's own callers (see makeCaller in src/api.rs), made when the VM's first function reaches the host (an idle
// VM does without them); passing `core` keeps the VM alive as long as the
// function. A plain call (`this` undefined) takes the shorter path.
function makeFunction(core, slot) {
  if (core.call === undefined) {
    core.call = native.makeCaller(core, CALLER_PLAIN);
    core.callThis = native.makeCaller(core, CALLER_WITH_THIS);
  }
  const { call, callThis } = core;
  // `arguments`, not a rest parameter: the usual calls (up to three
  // arguments, no `this`) then allocate no array, and `length` stays 0.
  // The callee and what each argument is go through the shared buffer
  // (read first thing by the native side, before anything else can write
  // it); numbers go there too.
  return function () {
    const n = arguments.length;
    if (this === undefined) {
      SHARED[SLOT_AT] = slot;
      switch (n) {
        case 0:
          SHARED[TAGS_AT] = 0;
          return result(call(core));
        case 1: {
          const a = arguments[0];
          SHARED[TAGS_AT] = tag(a, 0);
          return result(call(core, a));
        }
        case 2: {
          const a = arguments[0];
          const b = arguments[1];
          SHARED[TAGS_AT] = tag(a, 0) | (tag(b, 1) << 2);
          return result(call(core, a, b));
        }
        case 3: {
          const a = arguments[0];
          const b = arguments[1];
          const c = arguments[2];
          SHARED[TAGS_AT] = tag(a, 0) | (tag(b, 1) << 2) | (tag(c, 2) << 4);
          return result(call(core, a, b, c));
        }
      }
    }
    const args = Array.prototype.slice.call(arguments);
    // A long spread would overflow the stack before the native side could
    // report MVM_E_TOO_MANY_ARGUMENTS.
    if (n > 126) return native.callArgs(core, slot, this, args);
    // Not through the shared buffer: a spread runs the array iterator,
    // which a program may have replaced with code that calls the VM.
    return callThis(core, slot, this, ...args);
  };
}

// A plain call's result: a small integer comes back in the shared buffer
// (the native call then returns undefined).
function result(r) {
  return r !== undefined || SHARED[TAGS_AT] !== RESULT_IN_BUFFER ? r : SHARED[RESULT_AT];
}

// What argument `i` of a call is, for the shared buffer; a number is left
// there too.
function tag(value, i) {
  if (typeof value === 'number') {
    SHARED[ARGS_AT + i] = value;
    return ARG_NUMBER;
  }
  return typeof value === 'string' ? ARG_STRING : 0;
}

// The kinds of makeCaller (src/api.rs).
const CALLER_PLAIN = 0;
const CALLER_WITH_THIS = 1;

function makeValue(kind, core, slot) {
  switch (kind) {
    case KIND.FUNCTION: return makeFunction(core, slot);
    case KIND.CLASS: return makeClass(core, slot);
    case KIND.UINT8_ARRAY: return new MicroviumUint8Array(core, slot);
    default: return makeObject(kind, core, slot);
  }
}

// Objects that may be deep-copied into the guest return null; anything else
// returns the name of its type, for the TypeError.
const UNCOPYABLE = [
  ['Map', util.types.isMap], ['Set', util.types.isSet], ['WeakMap', util.types.isWeakMap],
  ['WeakSet', util.types.isWeakSet], ['Promise', util.types.isPromise], ['Date', util.types.isDate],
  ['RegExp', util.types.isRegExp], ['ArrayBuffer', util.types.isAnyArrayBuffer],
  ['DataView', util.types.isDataView], ['Proxy', util.types.isProxy],
  ['boxed primitive', util.types.isBoxedPrimitive], ['WeakRef', (v) => v instanceof WeakRef],
];

function classify(value) {
  if (util.types.isTypedArray(value)) return value.constructor.name;
  for (const [name, test] of UNCOPYABLE) {
    if (test(value)) return name;
  }
  return null;
}

module.exports = { makeValue, classify, MicroviumUint8Array, KIND };
