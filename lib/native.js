'use strict';
// Loads the compiled addon through the loader napi-rs generates
// (binding.js) and gives it the JS helpers it calls back into.

const native = require('../binding.js');
const { makeError } = require('./errors');
const { makeValue, classify } = require('./membrane');
const { awaitHost, newPromise, settlePromise } = require('./async');

// Runs a JavaScript collection with the collector of a VM (see
// collectorOption in lib/vm.js) when values the host dropped fill its guest
// heap (see relieve_pressure in src/pressure.rs). A minor collection is
// enough for host values dropped soon after they were made (the common
// case) and costs far less than a full one, which comes only if the minor
// one freed too little.
function collectGarbage(gc, major) {
  gc(major ? undefined : { type: 'minor' });
}

// The default collector of a program that did not expose V8's gc: a minor
// collection obtained the way V8 itself decides on one, by filling what is
// left of its young generation with short-lived arrays (no V8 flag, no
// global). Host values dropped since the last collection die in it. A full
// collection cannot be had this way; V8 runs those on its own schedule.
const v8 = require('node:v8');
const CHUNK_ITEMS = 16000; // a ~128 kB array: still a regular young object
const CHUNK_BYTES = CHUNK_ITEMS * 8;
let sink;
function minorCollection(options) {
  if (!options || options.type !== 'minor') return;
  let available = CHUNK_BYTES;
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space') available = space.space_available_size;
  }
  // Kept in `sink` so that the arrays are really allocated.
  for (let n = Math.ceil(available / CHUNK_BYTES) + 1; n > 0; n--) sink = new Array(CHUNK_ITEMS);
  sink = undefined;
}

native.init(makeError, makeValue, classify, awaitHost, collectGarbage, Math.pow, Object.prototype, newPromise, settlePromise);

module.exports = native;
module.exports.minorCollection = minorCollection;
