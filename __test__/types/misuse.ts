// Type test: misuse of the API that must NOT compile.
//
// Every line ending in `// error TSnnnn` must produce exactly one error with
// that code, and no other line may produce an error (__test__/types.test.js
// checks both). expect-error.ts repeats each of these lines after a
// `// @ts-expect-error` comment and must compile; the test also checks that
// the two files list the same lines.

import Microvium, { VM, restore, MicroviumError, engineVersion } from '@microvium/runtime';
import type { Imports, RestoreOptions, MemoryStats, MicroviumUint8Array, Snapshot } from '@microvium/runtime';
import { Nope } from '@microvium/runtime'; // error TS2614

declare const bytes: Uint8Array;
declare const u8: MicroviumUint8Array;
declare const microviumError: MicroviumError;
const vm = restore(bytes);

// restore / new VM: arguments
restore(123); // error TS2345
restore('snapshot'); // error TS2345
restore(null); // error TS2345
Microvium.default.restore(undefined); // error TS2345
restore(); // error TS2554
restore(bytes, { 1: 'not a function' }); // error TS2322
restore(bytes, [(x: number) => x], {}, 'extra'); // error TS2554
restore(bytes, {}, { breakpointHit: 'x' }); // error TS2322
restore(bytes, {}, { breakpointHit: (address: string) => address }); // error TS2322
restore(bytes, {}, { onBreakpoint() {} }); // error TS2353
new VM(); // error TS2554
new VM(123); // error TS2345
VM(bytes); // error TS2348
const notAPromise: Promise<VM> = restore(bytes); // error TS2739

// VM members: argument and result types
vm.setBreakpoint('x'); // error TS2345
vm.removeBreakpoint(); // error TS2554
vm.runGC(1); // error TS2345
vm.runGC('squeeze'); // error TS2345
vm.stopAfterNInstructions('100'); // error TS2345
vm.stopAfterNInstructions(); // error TS2554
vm.getInstructionCountRemaining(5); // error TS2554
vm.setTimeLimit('50'); // error TS2345
vm.setTimeLimit(); // error TS2554
restore(bytes, {}, { maxHeapSize: '8k' }); // error TS2322
restore(bytes, {}, { interrupt: [0] }); // error TS2740
vm.createSnapshot(true); // error TS2554
vm.dispose(true); // error TS2554
const snapshotAsString: string = vm.createSnapshot(); // error TS2322
const countAsString: string = vm.getInstructionCountRemaining(); // error TS2322
const versionAsNumber: number = vm.engineVersion; // error TS2322
const requiredAsNumber: number = vm.requiredEngineVersion; // error TS2322
const addressAsString: string = vm.currentAddress; // error TS2322
vm.getMemoryStats().heapSize; // error TS2339
const totalAsString: string = vm.getMemoryStats().totalSize; // error TS2322
vm.nonexistent(); // error TS2339
vm.then; // error TS2339

// VM members are read-only
vm.engineVersion = '9.0.0'; // error TS2540
vm.requiredEngineVersion = '9.0.0'; // error TS2540
vm.exports = {}; // error TS2540
vm.currentAddress = 0; // error TS2540

// exports are keyed by number
vm.exports.foo; // error TS2339
vm.exports['foo']; // error TS7015

// MicroviumUint8Array
u8.set([1], '0'); // error TS2345
u8.set(['a']); // error TS2322
u8.slice('1'); // error TS2345
u8.length = 3; // error TS2540
u8[0]; // error TS7053
const sliceAsArray: number[] = u8.slice(); // error TS2740

// module constants, errors and types
engineVersion.toFixed(); // error TS2551
const errnoAsString: string = microviumError.errno; // error TS2322
const codeAsNumber: number = microviumError.code; // error TS2322
const imports: Imports = { foo: () => 1 }; // error TS2353
const opts: RestoreOptions = { breakpointHit: 1 }; // error TS2322
const stats: MemoryStats = { totalSize: 1 }; // error TS2740
const snapshot: Snapshot = 'bytes'; // error TS2322
Microvium.nope; // error TS2339

export { Nope, notAPromise, snapshotAsString, countAsString, versionAsNumber, requiredAsNumber, addressAsString, totalAsString, sliceAsArray, errnoAsString, codeAsNumber, imports, opts, stats, snapshot };
