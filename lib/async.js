'use strict';
// Asynchronous imports. When the guest calls an async import, the native
// side starts the engine's async protocol (the guest gets a promise at once)
// and hands the host's result to awaitHost, which resumes the guest when it
// settles.

const util = require('node:util');
const native = require('../binding.js');

// Marks a host function that returns a promise but is not an `async
// function` as asynchronous: fn[ASYNC_IMPORT] = true.
const ASYNC_IMPORT = Symbol.for('microvium.asyncImport');

function isAsyncImport(fn) {
  return util.types.isAsyncFunction(fn) || fn[ASYNC_IMPORT] === true;
}

function awaitHost(core, slot, ok, value) {
  const settle = (success, v) => {
    try {
      native.resume(core, slot, success, v);
    } catch {
      // The VM was disposed (or failed) while the host operation was in
      // flight: there is no guest left to resume.
    }
  };
  if (!ok) {
    queueMicrotask(() => settle(false, value));
    return;
  }
  Promise.resolve(value).then((v) => settle(true, v), (e) => settle(false, e));
}

// Host Promises for guest promises. Their resolving functions live here, in
// a WeakMap keyed by the Promise. While pending, a Promise is also in its
// VM's core.pending, so that it lives as long as the guest could still
// settle it, as a JavaScript promise lives while someone holds its
// resolving functions: \`await vm.exports[1]()\` or \`f().then(log)\` keep no
// reference to the Promise itself, and the guest settles it later (when an
// async import it awaits completes, or a later call). These are plain
// JavaScript references, so a VM dropped with pending promises is still
// collected with them (see src/membrane.rs, the part on promises).
// Captured at load, so that later changes to the globals do not change how
// promises settle.
const NativePromise = Promise;
const promiseThen = Promise.prototype.then;
const resolvers = new WeakMap();
const { get: weakGet, set: weakSet, delete: weakDelete } = WeakMap.prototype;
const { add: setAdd, delete: setDelete } = Set.prototype;
const ignore = () => {};

function newPromise(core) {
  let settlers;
  const p = new NativePromise((resolve, reject) => { settlers = [resolve, reject]; });
  weakSet.call(resolvers, p, settlers);
  if (core !== undefined) {
    if (core.pending === undefined) core.pending = new Set();
    setAdd.call(core.pending, p);
  }
  // Rejections are reported through the Promise itself: an ignored one is
  // not an unhandled rejection.
  promiseThen.call(p, undefined, ignore);
  return p;
}

function settlePromise(p, ok, value, core) {
  if (core !== undefined && core.pending !== undefined) setDelete.call(core.pending, p);
  const settlers = weakGet.call(resolvers, p);
  if (settlers === undefined) return;
  weakDelete.call(resolvers, p);
  settlers[ok ? 0 : 1](value);
}

module.exports = { awaitHost, isAsyncImport, ASYNC_IMPORT, newPromise, settlePromise };
