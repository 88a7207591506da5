// @ts-check
// Type test: plain CommonJS JavaScript, checked by TypeScript (checkJs).
'use strict';

const Microvium = require('@microvium/runtime');
const { VM, restore, MicroviumError, engineVersion } = require('@microvium/runtime');

/** @type {import('@microvium/runtime').Imports} */
const imports = { 1: (/** @type {string} */ s) => s.length };

/** @type {import('@microvium/runtime').VM} */
const vm = Microvium.restore([1, 2, 3], imports);
const vm2 = new VM(new Uint8Array(4), imports, { breakpointHit: (address) => { address.toFixed(); } });
const vm3 = Microvium.default.restore(vm.createSnapshot());
const vm4 = restore(new ArrayBuffer(4));
/** @type {number} */
const result = vm.exports[1](2, 3);
/** @type {import('@microvium/runtime').MemoryStats} */
const stats = vm2.getMemoryStats();
/** @type {string} */
const version = engineVersion;
vm.stopAfterNInstructions(10);
/** @type {number} */
const remaining = vm.getInstructionCountRemaining();
try {
  vm.exports[2]();
} catch (e) {
  if (e instanceof MicroviumError) {
    /** @type {string} */
    const code = e.code;
    /** @type {number} */
    const errno = e.errno;
    void code, void errno;
  }
}
vm.dispose();
vm2[Symbol.dispose]();
vm3.runGC();
vm4.setBreakpoint(vm4.currentAddress);

module.exports = { result, stats, version, remaining };
