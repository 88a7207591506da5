// Type test: an ES module that uses every part of the public API.
// Must compile with `tsc -p __test__/types --strict --noEmit`; nothing here is
// executed. `Equals` checks make sure no type silently degrades to `any`.

import Microvium, {
  VM,
  restore,
  MicroviumError,
  engineVersion,
  type AnyFunction,
  type Exports,
  type GuestArray,
  type GuestClass,
  type GuestFunction,
  type GuestObject,
  type GuestValue,
  type HostFunction,
  type HostValue,
  type Imports,
  type MemoryStats,
  type MicroviumErrorCode,
  type MicroviumUint8Array,
  type RestoreOptions,
  type Snapshot,
  type Value,
} from '@microvium/runtime';
import * as Namespace from '@microvium/runtime';

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function check<T extends true>(): void {}
declare function use(...values: unknown[]): void;

// --- the module object -----------------------------------------------------

const defaultIsNamespace: typeof Namespace = Microvium;
const namespaceIsDefault: typeof Microvium = Namespace;
check<Equals<typeof Microvium.default, typeof Microvium>>();
check<Equals<typeof Microvium.restore, typeof restore>>();
check<Equals<typeof Microvium.VM, typeof VM>>();
check<Equals<typeof Microvium.MicroviumError, typeof MicroviumError>>();
check<Equals<typeof Namespace.default.default.engineVersion, string>>();
const sameModule: boolean = Microvium.default === Microvium;
check<Equals<typeof engineVersion, string>>();
check<Equals<typeof Microvium.engineVersion, string>>();

// --- snapshots: every accepted input type ----------------------------------

declare const bytes: Uint8Array;
const fromUint8Array: Snapshot = bytes;
const fromArrayBuffer: Snapshot = new ArrayBuffer(16);
const fromArray: Snapshot = [0x08, 0x00, 0x1c, 0x00];
const fromReadonlyArray: Snapshot = [1, 2, 3] as const;
const fromArrayLike: Snapshot = { length: 2, 0: 1, 1: 2 };
class MyBuffer extends Uint8Array { hostOnly(): void {} } // stands in for Node's Buffer
const fromSubclass: Snapshot = new MyBuffer(4);

// --- imports and options ---------------------------------------------------

const log: string[] = [];
const imports: Imports = {
  1: (message: string) => { log.push(message); },
  [2]: (a: number, b: number): number => a + b,
  0xFFFF: async (x: number): Promise<number> => x * 2,
  3: () => undefined,
  4: (obj: GuestObject) => obj.x,
  5: function (this: void, ...args: any[]) { return args.length; },
};
const hostFunction: HostFunction = imports[1]!;
const anyFunction: AnyFunction = hostFunction;

const breakpoints: number[] = [];
const opts: RestoreOptions = {
  breakpointHit(address) {
    check<Equals<typeof address, number>>();
    breakpoints.push(address);
  },
};
const arrowOpts: RestoreOptions = { breakpointHit: (address: number) => { breakpoints.push(address); } };
const noOpts: RestoreOptions = {};
const explicitlyUndefined: RestoreOptions = { breakpointHit: undefined };
declare const exposedGc: ((options?: { type?: 'minor' | 'major' }) => void) | undefined;
const gcOpts: RestoreOptions = { gc: exposedGc ?? false };
const noGc: RestoreOptions = { gc: null };
void gcOpts; void noGc;

// --- restore and the VM constructor -----------------------------------------

const vm = restore(bytes, imports, opts);
check<Equals<typeof vm, VM>>();
check<Equals<typeof vm, VM<Exports>>>();
const vm2: VM = restore([1, 2, 3]);
const vm3 = restore(new ArrayBuffer(8), {});
const vm4 = restore(fromUint8Array, undefined, arrowOpts);
const vm5 = Microvium.restore(fromArray, imports);
const vm6 = new VM(bytes);
const vm7 = new VM(fromArrayBuffer, imports);
const vm8 = new Microvium.VM(fromSubclass, imports, noOpts);
const vm9 = new Namespace.default.VM(fromArrayLike, {}, explicitlyUndefined);
const vm10 = restore(fromReadonlyArray);
check<Equals<typeof vm6, VM>>();
check<Equals<typeof vm8, VM>>();
const isVM: boolean = vm instanceof VM;

async function oldAsyncStyle(): Promise<VM> {
  // The WebAssembly runtime's restore was asynchronous; awaiting still works.
  const awaited = await Microvium.restore(bytes, imports);
  check<Equals<typeof awaited, VM>>();
  return awaited;
}

// --- exports ----------------------------------------------------------------

const sum = vm.exports[1](2, 3); // exported functions: callable without casts
const sayHello = vm.exports[1234];
sayHello('Hello');
const obj = vm.exports[2];
obj.counter = obj.counter + 1;
const instance = new vm.exports[3]();
const exportIds: string[] = Object.keys(vm.exports);
const exportsRecord: Exports = vm.exports;
const numericString = vm.exports['42'];
use(sum, instance, exportIds, exportsRecord, numericString);

// Typed exports, for users who want to describe their snapshot precisely.
interface CounterExports {
  1: (a: number, b: number) => number;
  2: { readonly name: string; count: number };
}
const typed = restore<CounterExports>(bytes, imports);
const typedSum: number = typed.exports[1](2, 3);
const typedName: string = typed.exports[2].name;
const typedVm: VM<CounterExports> = new VM<CounterExports>(bytes);
use(typedSum, typedName, typedVm);

// --- VM members -------------------------------------------------------------

check<Equals<typeof vm.engineVersion, string>>();
check<Equals<typeof vm.requiredEngineVersion, string>>();
check<Equals<typeof vm.currentAddress, number>>();
check<Equals<ReturnType<VM['createSnapshot']>, Uint8Array>>();
check<Equals<ReturnType<VM['runGC']>, void>>();
check<Equals<ReturnType<VM['getInstructionCountRemaining']>, number>>();

const version: string = vm.engineVersion;
const required: string = vm.requiredEngineVersion;
const compatible = version.split('.')[0] === required.split('.')[0];

const snapshot: Uint8Array = vm.createSnapshot();
const restoredFromSnapshot = restore(snapshot, imports);
use(restoredFromSnapshot);

vm.runGC();
vm.runGC(true);
vm.runGC(false);
vm.release(vm.exports[1], 'a primitive', 3);
const scoped: number = vm.scope(() => 42);
check<Equals<ReturnType<typeof vm.scope<string>>, string>>();
void scoped;

const stats: MemoryStats = vm.getMemoryStats();
const statsValues: number[] = [
  stats.totalSize,
  stats.fragmentCount,
  stats.coreSize,
  stats.importTableSize,
  stats.globalVariablesSize,
  stats.registersSize,
  stats.stackHeight,
  stats.stackAllocatedCapacity,
  stats.stackHighWaterMark,
  stats.virtualHeapUsed,
  stats.virtualHeapHighWaterMark,
  stats.virtualHeapAllocatedCapacity,
];
// MemoryStats has exactly the fields of mvm_TsMemoryStats, all numbers, and
// the heap cap this package adds.
check<Equals<keyof MemoryStats,
  | 'totalSize' | 'fragmentCount' | 'coreSize' | 'importTableSize'
  | 'globalVariablesSize' | 'registersSize' | 'stackHeight'
  | 'stackAllocatedCapacity' | 'stackHighWaterMark' | 'virtualHeapUsed'
  | 'virtualHeapHighWaterMark' | 'virtualHeapAllocatedCapacity' | 'maxHeapSize'>>();
check<Equals<MemoryStats[keyof MemoryStats], number>>();

vm.stopAfterNInstructions(1000);
const remaining: number = vm.getInstructionCountRemaining();
vm.stopAfterNInstructions(-1);

vm.setBreakpoint(0x1234);
vm.removeBreakpoint(0x1234);
const address: number = vm.currentAddress;

vm.dispose();
vm2[Symbol.dispose]();
function disposeAll(d: Disposable[]): void { for (const x of d) x[Symbol.dispose](); }
disposeAll([vm3, vm4, vm5]);
{
  using scoped = restore(bytes, imports);
  scoped.exports[1]();
}
use(vm6, vm7, vm9, vm10, compatible, statsValues, remaining, address);

// --- values coming out of the VM --------------------------------------------

const u8: MicroviumUint8Array = vm.exports[5];
const u8Length: number = u8.length;
const copyAll: Uint8Array = u8.slice();
const copyFrom: Uint8Array = u8.slice(1);
const copyRange: Uint8Array = u8.slice(1, 3);
u8.set([1, 2, 3]);
u8.set(new Uint8Array([4, 5]), 1);
u8.set(u8.slice(), 0);
const spread: number[] = [...u8];
for (const byte of u8) { check<Equals<typeof byte, number>>(); }
const iterator: IterableIterator<number> = u8[Symbol.iterator]();
const fromU8 = Uint8Array.from(u8);
use(u8Length, copyAll, copyFrom, copyRange, spread, iterator, fromU8);

const value: GuestValue = vm.exports[6];
const value2: Value = value;
if (typeof value === 'string') { const s: string = value; use(s); }
if (typeof value === 'number') { const n: number = value; use(n); }
if (typeof value === 'function') { value(1, 2); }
const guestValues: GuestValue[] = [
  undefined, null, true, 1, 'x', {} as GuestObject, [] as GuestArray,
  (() => 1) as GuestFunction, vm.exports[7] as GuestClass, u8, Promise.resolve(1),
];
const guestObject: GuestObject = vm.exports[8];
guestObject.newProperty = 'written into the guest';
const guestArray: GuestArray = vm.exports[9];
const arrayLength: number = guestArray.length;
const guestClass: GuestClass = vm.exports[10];
const classInstance = new guestClass(1);
const isInstance: boolean = classInstance instanceof guestClass;
const staticMember = guestClass.staticMember;
const guestFunction: GuestFunction = vm.exports[11];
const promiseResult: Promise<any> = guestFunction.call(guestObject, 1);

// --- values going into the VM ---------------------------------------------

const hostValues: HostValue[] = [
  undefined, null, false, -0, NaN, Infinity, 'text', bytes, new Error('boom'),
  [1, 'two', [3]], { a: 1, nested: { b: [true] } }, guestObject, u8, hostFunction,
];
vm.exports[12](...hostValues);
use(value2, guestValues, arrayLength, isInstance, staticMember, promiseResult);

// --- errors -----------------------------------------------------------------

try {
  vm.exports[13]();
} catch (e) {
  if (e instanceof MicroviumError) {
    const code: string = e.code;
    const errno: number = e.errno;
    const message: string = e.message;
    const asError: Error = e;
    const stack: string | undefined = e.stack;
    if (e.code === 'MVM_E_INSTRUCTION_COUNT_REACHED') vm.stopAfterNInstructions(-1);
    const knownCode: MicroviumErrorCode = 'MVM_E_TYPE_ERROR';
    use(code, errno, message, asError, stack, knownCode);
  }
}
const viaModule: boolean = new Error() instanceof Microvium.MicroviumError;

use(defaultIsNamespace, namespaceIsDefault, sameModule, fromArray, oldAsyncStyle, anyFunction, isVM, log, viaModule);
