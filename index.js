'use strict';
// @microvium/runtime: run Microvium snapshots in Node.js (native addon).
// The public API is described in README.md and index.d.ts.

const { VM, restore, engineVersion, internals, ASYNC_IMPORT } = require('./lib/vm');
const { MicroviumError } = require('./lib/errors');
const { MicroviumUint8Array } = require('./lib/membrane');

const Microvium = {
  restore,
  VM,
  MicroviumError,
  MicroviumUint8Array,
  engineVersion,
  ASYNC_IMPORT,
};
Microvium.default = Microvium;
Object.defineProperty(Microvium, '__internals', { value: internals, enumerable: false });

module.exports = Microvium;
