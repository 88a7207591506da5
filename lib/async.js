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

module.exports = { awaitHost, isAsyncImport, ASYNC_IMPORT };
