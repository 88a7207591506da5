// Type test: a CommonJS-format TypeScript module ("module": "nodenext",
// .cts) loading the package in each CommonJS way.

import Microvium = require('@microvium/runtime');
import DefaultImport from '@microvium/runtime';
import { VM, restore, MicroviumError, engineVersion, type MemoryStats } from '@microvium/runtime';

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function check<T extends true>(): void {}

check<Equals<typeof DefaultImport, typeof Microvium>>();
check<Equals<typeof Microvium.default, typeof Microvium>>();
check<Equals<typeof Microvium.VM, typeof VM>>();
check<Equals<typeof engineVersion, string>>();

const vm: VM = Microvium.restore([1, 2, 3], { 1: (x: number) => x + 1 }, { breakpointHit: (a: number) => void a });
const vm2: Microvium.VM = new DefaultImport.VM(new Uint8Array(4));
const vm3 = restore(vm.createSnapshot());
const sum: number = vm.exports[1](2, 3);
const stats: MemoryStats = vm2.getMemoryStats();
const err: Error = new Error('x');
const isMicroviumError: boolean = err instanceof MicroviumError;
const code: string | undefined = err instanceof Microvium.MicroviumError ? err.code : undefined;
vm.dispose();
vm2[Symbol.dispose]();
vm3.runGC(true);

export = { sum, stats, isMicroviumError, code };
