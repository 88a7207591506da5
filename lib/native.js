'use strict';
// Loads the compiled addon through the loader napi-rs generates
// (binding.js) and gives it the JS helpers it calls back into.

const native = require('../binding.js');
const { makeError } = require('./errors');
const { makeValue, classify } = require('./membrane');
const { awaitHost, newPromise, settlePromise } = require('./async');

// A full JavaScript collection, for when host-held guest values fill the
// guest heap (see relieve_pressure in src/membrane.rs). Without --expose-gc
// the gc function is obtained once through V8's flags.
let gcFunction;
function collectGarbage(major) {
  if (!gcFunction) {
    if (typeof globalThis.gc === 'function') {
      gcFunction = globalThis.gc;
    } else {
      require('node:v8').setFlagsFromString('--expose-gc');
      gcFunction = require('node:vm').runInNewContext('gc');
    }
  }
  // A minor collection is enough for host values dropped soon after they
  // were made (the common case) and costs far less than a full one.
  gcFunction(major ? undefined : { type: 'minor' });
}

native.init(makeError, makeValue, classify, awaitHost, collectGarbage, Math.pow, Object.prototype, newPromise, settlePromise);

module.exports = native;
