'use strict';
// The VM class: argument checking and the public surface. The engine, the
// handles and the value conversions are native (src/); this file only
// shapes them into the public API (declared in index.d.ts, described in the
// README's "API" section).

const util = require('node:util');
const native = require('./native');
const { isAsyncImport, ASYNC_IMPORT } = require('./async');

const DISPOSE = Symbol.dispose || Symbol.for('nodejs.dispose');

function toSnapshotBytes(snapshot) {
  if (snapshot instanceof Uint8Array) return snapshot;
  // The `microvium` compiler's Snapshot object carries its bytes in `data`.
  if (snapshot !== null && typeof snapshot === 'object' && snapshot.data instanceof Uint8Array) return snapshot.data;
  if (snapshot instanceof ArrayBuffer) return new Uint8Array(snapshot);
  if (Array.isArray(snapshot)) {
    for (const b of snapshot) {
      if (!Number.isInteger(b) || b < 0 || b > 255) {
        throw new TypeError('Microvium snapshot array must contain only bytes (integers 0 to 255)');
      }
    }
    return Uint8Array.from(snapshot);
  }
  const type = snapshot === null ? 'null' : typeof snapshot;
  throw new TypeError(`Microvium snapshot must be a Uint8Array, Buffer, ArrayBuffer or array of bytes, not ${type}`);
}

function normaliseImports(imports) {
  if (imports === undefined || imports === null) return [[], []];
  if (typeof imports !== 'object') {
    throw new TypeError('Microvium imports must be an object mapping numeric ids to functions');
  }
  const ids = [];
  const fns = [];
  for (const key of Object.keys(imports)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id > 0xFFFF || String(id) !== key) {
      throw new RangeError(`Microvium import id ${JSON.stringify(key)} is not an integer from 0 to 65535`);
    }
    const fn = imports[key];
    if (typeof fn !== 'function') {
      throw new TypeError(`Microvium import ${id} must be a function, not ${fn === null ? 'null' : typeof fn}`);
    }
    ids.push(id);
    fns.push(fn);
  }
  return [ids, fns];
}

// The collector a VM uses when values the host dropped fill its guest heap
// (see relieve_pressure in src/pressure.rs). By default a minor collection
// had the way V8 itself decides on one, by allocation (see minorCollection
// in lib/native.js). The library turns no V8 flag on and forces no
// collection of its own: a program that wants forced collections passes its
// collector function as `opts.gc`, which makes that its own choice.
function collectorOption(opts) {
  const gc = opts ? opts.gc : undefined;
  if (gc === undefined) return native.minorCollection;
  if (gc === null || gc === false) return undefined;
  if (typeof gc !== 'function') throw new TypeError('opts.gc must be a function, false or null');
  return gc;
}

// The sandbox limits of restore (see "Sandbox limits" in the README):
// opts.maxHeapSize, this VM's guest heap cap in bytes (the native side
// checks it against the snapshot's own heap), and opts.interrupt, an
// Int32Array over a SharedArrayBuffer whose element 0 any thread sets
// (Atomics.store) to stop the running guest call.
function limitsOption(opts) {
  if (!opts) return undefined;
  const { maxHeapSize, interrupt } = opts;
  if (maxHeapSize !== undefined) {
    if (typeof maxHeapSize !== 'number') {
      throw new TypeError(`opts.maxHeapSize must be a number of bytes, not ${maxHeapSize === null ? 'null' : typeof maxHeapSize}`);
    }
    if (!Number.isInteger(maxHeapSize) || maxHeapSize < 1 || maxHeapSize > 65536) {
      throw new RangeError(`opts.maxHeapSize must be an integer number of bytes up to 65536 (64 kB, the engine's heap), not ${maxHeapSize}`);
    }
  }
  if (interrupt !== undefined) {
    if (!util.types.isInt32Array(interrupt) || !util.types.isSharedArrayBuffer(interrupt.buffer)) {
      throw new TypeError('opts.interrupt must be an Int32Array over a SharedArrayBuffer (other threads set it with Atomics.store)');
    }
    if (interrupt.length < 1) throw new RangeError('opts.interrupt must have at least one element (element 0 is the flag)');
  }
  if (maxHeapSize === undefined && interrupt === undefined) return undefined;
  return { maxHeapSize, interrupt };
}

// Reads a VM's private core, for the internal test hooks below.
let coreOf;

class VM {
  #core;
  #exports;

  static {
    coreOf = (vm) => vm.#core;
  }

  constructor(snapshot, imports, opts) {
    const bytes = toSnapshotBytes(snapshot);
    const [ids, fns] = normaliseImports(imports);
    if (opts !== undefined && opts !== null && typeof opts !== 'object') {
      throw new TypeError('Microvium restore options must be an object');
    }
    const breakpointHit = opts ? opts.breakpointHit : undefined;
    if (breakpointHit !== undefined && typeof breakpointHit !== 'function') {
      throw new TypeError('opts.breakpointHit must be a function');
    }
    const gc = collectorOption(opts);
    const limits = limitsOption(opts);
    // The core is what the native side attaches the engine to. It holds the
    // host functions strongly (the native side only weakly), so a VM whose
    // imports close over it can still be garbage collected; and the
    // interrupt flag, whose memory the engine reads as long as it can run.
    const core = {
      imports: fns, breakpointHit, gc, interrupt: limits && limits.interrupt,
      call: undefined, callThis: undefined, getk: undefined,
    };
    native.restore(core, bytes, ids, fns, fns.map(isAsyncImport), limits);
    if (breakpointHit) native.setBreakpointCallback(core, breakpointHit);
    if (gc) native.setCollector(core, gc);
    this.#core = core;
  }

  get exports() {
    if (!this.#exports) {
      const core = this.#core;
      const exports = {};
      for (const id of native.exportIds(core)) {
        Object.defineProperty(exports, id, {
          enumerable: true,
          configurable: true,
          get() {
            // Resolved once: the same value (and function object) each time,
            // so never released by release() or scope().
            const value = native.getExport(core, id);
            native.pin(core, value);
            Object.defineProperty(exports, id, { value, enumerable: true, writable: false, configurable: false });
            return value;
          },
        });
      }
      this.#exports = exports;
    }
    return this.#exports;
  }

  get engineVersion() { return native.engineVersion; }
  get requiredEngineVersion() { return native.requiredEngineVersion(this.#core); }
  get currentAddress() { return native.currentAddress(this.#core); }

  createSnapshot() { return native.createSnapshot(this.#core); }
  runGC(squeeze = false) {
    if (typeof squeeze !== 'boolean') throw new TypeError('runGC(squeeze) expects a boolean');
    native.runGC(this.#core, squeeze);
  }
  getMemoryStats() {
    const stats = native.memoryStats(this.#core);
    // Not a field of mvm_TsMemoryStats: readable, but not listed, so that
    // the object has exactly the engine's fields, as the WebAssembly
    // runtime's has.
    Object.defineProperty(stats, 'maxHeapSize', { enumerable: false });
    return stats;
  }
  stopAfterNInstructions(n) {
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new TypeError('stopAfterNInstructions(n) expects an integer');
    native.stopAfter(this.#core, n);
  }
  getInstructionCountRemaining() { return native.remaining(this.#core); }
  /**
   * Wall-clock limit, in milliseconds, for each later outermost call into
   * the guest (time in host functions it calls included); -1 for none.
   */
  setTimeLimit(ms) {
    if (typeof ms !== 'number') throw new TypeError('setTimeLimit(ms) expects a number of milliseconds, or -1 for no limit');
    if (ms !== -1 && !(Number.isFinite(ms) && ms >= 0)) {
      throw new RangeError(`setTimeLimit(ms): ms must be a finite number >= 0, or -1 for no limit, not ${ms}`);
    }
    native.setTimeLimit(this.#core, ms);
  }
  getTimeLimit() { return native.getTimeLimit(this.#core); }
  setBreakpoint(address) {
    if (typeof address !== 'number') throw new TypeError('setBreakpoint(address) expects a number');
    native.setBreakpoint(this.#core, address);
  }
  removeBreakpoint(address) {
    if (typeof address !== 'number') throw new TypeError('removeBreakpoint(address) expects a number');
    native.removeBreakpoint(this.#core, address);
  }
  /**
   * Releases the guest values behind these host values now, so the guest
   * can collect them without waiting for V8 to collect the host values.
   * Using a released value afterwards throws; releasing one twice, or a
   * primitive, does nothing; a value from another VM is a TypeError. Export
   * values and promises are not released (exports live as long as the VM).
   */
  release(...values) {
    const core = this.#core;
    for (const value of values) native.release(core, value);
  }

  /**
   * Runs `fn()` and then releases every host value this VM made while it
   * ran (as release() does), except the value fn returns or throws. Nested
   * scopes release what was made inside them. fn runs synchronously: what
   * it makes after an `await` is not covered.
   */
  scope(fn) {
    if (typeof fn !== 'function') throw new TypeError('vm.scope(fn) expects a function');
    const core = this.#core;
    const depth = native.scopeEnter(core);
    let result;
    let threw = false;
    try {
      result = fn();
    } catch (e) {
      threw = true;
      result = e;
    }
    native.scopeExit(core, depth, result);
    if (threw) throw result;
    return result;
  }

  dispose() { native.dispose(this.#core); }
  [DISPOSE]() { this.dispose(); }
}

// Internal hooks for tests (live handle count, VM status).
const internals = {
  liveHandles: (vm) => native.liveHandles(coreOf(vm)),
  hostHeld: (vm) => native.hostHeld(coreOf(vm)),
  reportedMemory: (vm) => native.reportedMemory(coreOf(vm)),
  status: (vm) => native.status(coreOf(vm)),
  keyCacheStats: (vm) => native.keyCacheStats(coreOf(vm)),
  clearKeyCache: (vm) => native.clearKeyCache(coreOf(vm)),
};

function restore(snapshot, imports, opts) {
  return new VM(snapshot, imports, opts);
}

module.exports = { VM, restore, internals, engineVersion: native.engineVersion, ASYNC_IMPORT };
