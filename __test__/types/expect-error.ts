// Type test: the lines of misuse.ts, each preceded by `// @ts-expect-error`.
// Must compile (it is part of tsconfig.json): TypeScript reports an unused
// `@ts-expect-error` (TS2578) if a line below stops being an error.
// __test__/types.test.js checks that this file and misuse.ts list the same
// lines; misuse.ts also checks the exact error codes.

import Microvium, { VM, restore, MicroviumError, engineVersion } from '@microvium/runtime';
import type { Imports, RestoreOptions, MemoryStats, MicroviumUint8Array, Snapshot } from '@microvium/runtime';
// @ts-expect-error TS2614
import { Nope } from '@microvium/runtime';

declare const bytes: Uint8Array;
declare const u8: MicroviumUint8Array;
declare const microviumError: MicroviumError;
const vm = restore(bytes);

// restore / new VM: arguments
// @ts-expect-error TS2345
restore(123);
// @ts-expect-error TS2345
restore('snapshot');
// @ts-expect-error TS2345
restore(null);
// @ts-expect-error TS2345
Microvium.default.restore(undefined);
// @ts-expect-error TS2554
restore();
// @ts-expect-error TS2322
restore(bytes, { 1: 'not a function' });
// @ts-expect-error TS2554
restore(bytes, [(x: number) => x], {}, 'extra');
// @ts-expect-error TS2322
restore(bytes, {}, { breakpointHit: 'x' });
// @ts-expect-error TS2322
restore(bytes, {}, { breakpointHit: (address: string) => address });
// @ts-expect-error TS2353
restore(bytes, {}, { onBreakpoint() {} });
// @ts-expect-error TS2554
new VM();
// @ts-expect-error TS2345
new VM(123);
// @ts-expect-error TS2348
VM(bytes);
// @ts-expect-error TS2739
const notAPromise: Promise<VM> = restore(bytes);

// VM members: argument and result types
// @ts-expect-error TS2345
vm.setBreakpoint('x');
// @ts-expect-error TS2554
vm.removeBreakpoint();
// @ts-expect-error TS2345
vm.runGC(1);
// @ts-expect-error TS2345
vm.runGC('squeeze');
// @ts-expect-error TS2345
vm.stopAfterNInstructions('100');
// @ts-expect-error TS2554
vm.stopAfterNInstructions();
// @ts-expect-error TS2554
vm.getInstructionCountRemaining(5);
// @ts-expect-error TS2345
vm.setTimeLimit('50');
// @ts-expect-error TS2554
vm.setTimeLimit();
// @ts-expect-error TS2322
restore(bytes, {}, { maxHeapSize: '8k' });
// @ts-expect-error TS2740
restore(bytes, {}, { interrupt: [0] });
// @ts-expect-error TS2554
vm.createSnapshot(true);
// @ts-expect-error TS2554
vm.dispose(true);
// @ts-expect-error TS2322
const snapshotAsString: string = vm.createSnapshot();
// @ts-expect-error TS2322
const countAsString: string = vm.getInstructionCountRemaining();
// @ts-expect-error TS2322
const versionAsNumber: number = vm.engineVersion;
// @ts-expect-error TS2322
const requiredAsNumber: number = vm.requiredEngineVersion;
// @ts-expect-error TS2322
const addressAsString: string = vm.currentAddress;
// @ts-expect-error TS2339
vm.getMemoryStats().heapSize;
// @ts-expect-error TS2322
const totalAsString: string = vm.getMemoryStats().totalSize;
// @ts-expect-error TS2339
vm.nonexistent();
// @ts-expect-error TS2339
vm.then;

// VM members are read-only
// @ts-expect-error TS2540
vm.engineVersion = '9.0.0';
// @ts-expect-error TS2540
vm.requiredEngineVersion = '9.0.0';
// @ts-expect-error TS2540
vm.exports = {};
// @ts-expect-error TS2540
vm.currentAddress = 0;

// exports are keyed by number
// @ts-expect-error TS2339
vm.exports.foo;
// @ts-expect-error TS7015
vm.exports['foo'];

// MicroviumUint8Array
// @ts-expect-error TS2345
u8.set([1], '0');
// @ts-expect-error TS2322
u8.set(['a']);
// @ts-expect-error TS2345
u8.slice('1');
// @ts-expect-error TS2540
u8.length = 3;
// @ts-expect-error TS7053
u8[0];
// @ts-expect-error TS2740
const sliceAsArray: number[] = u8.slice();

// module constants, errors and types
// @ts-expect-error TS2551
engineVersion.toFixed();
// @ts-expect-error TS2322
const errnoAsString: string = microviumError.errno;
// @ts-expect-error TS2322
const codeAsNumber: number = microviumError.code;
// @ts-expect-error TS2353
const imports: Imports = { foo: () => 1 };
// @ts-expect-error TS2322
const opts: RestoreOptions = { breakpointHit: 1 };
// @ts-expect-error TS2740
const stats: MemoryStats = { totalSize: 1 };
// @ts-expect-error TS2322
const snapshot: Snapshot = 'bytes';
// @ts-expect-error TS2339
Microvium.nope;

export { Nope, notAPromise, snapshotAsString, countAsString, versionAsNumber, requiredAsNumber, addressAsString, totalAsString, sliceAsArray, errnoAsString, codeAsNumber, imports, opts, stats, snapshot };
