// Type test: ES import syntax in a .ts file, compiled under several module
// settings (see tsconfig.commonjs.json, tsconfig.commonjs-no-interop.json
// and tsconfig.bundler.json): the default import and the named imports must
// both work, with and without esModuleInterop.

import Microvium, { VM, restore, MicroviumError, engineVersion, type Imports, type MemoryStats } from '@microvium/runtime';
import * as Namespace from '@microvium/runtime';

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function check<T extends true>(): void {}

check<Equals<typeof Microvium.default, typeof Microvium>>();
check<Equals<typeof Microvium.restore, typeof restore>>();
check<Equals<typeof Namespace.VM, typeof VM>>();
check<Equals<typeof Namespace.default.MicroviumError, typeof MicroviumError>>();
check<Equals<typeof engineVersion, string>>();

const imports: Imports = { 1: (a: number, b: number) => a + b };
const vm: VM = Microvium.restore([1, 2, 3], imports, { breakpointHit: (address: number) => void address });
const vm2 = new Microvium.VM(vm.createSnapshot(), imports);
const vm3 = restore(new ArrayBuffer(8));
const vm4 = new VM(new Uint8Array(8));
const result: number = vm.exports[1](2, 3);
const stats: MemoryStats = vm2.getMemoryStats();
vm3.stopAfterNInstructions(100);
const remaining: number = vm3.getInstructionCountRemaining();
vm4.setBreakpoint(vm4.currentAddress);
// The sandbox limits.
const capped = restore(new Uint8Array(8), {}, { maxHeapSize: 8192, interrupt: new Int32Array(new SharedArrayBuffer(4)) });
capped.setTimeLimit(50);
const limit: number = capped.getTimeLimit();
const cap: number = capped.getMemoryStats().maxHeapSize;
void limit, void cap;
vm4.removeBreakpoint(0);
vm.runGC(true);
vm.dispose();
vm2[Symbol.dispose]();
try {
  vm3.exports[2]();
} catch (e) {
  if (e instanceof Microvium.MicroviumError) {
    const code: string = e.code;
    const errno: number = e.errno;
    void code, void errno;
  }
}

export { result, stats, remaining };
