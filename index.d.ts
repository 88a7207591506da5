// Type definitions for @microvium/runtime (native Node.js addon).
//
// Works for every way of loading the package:
//
//   const Microvium = require('@microvium/runtime');              // CommonJS
//   import Microvium = require('@microvium/runtime');             // TypeScript, CommonJS output
//   import Microvium, { VM, restore } from '@microvium/runtime';  // ESM / TypeScript
//
// The module object also has `default` pointing at itself
// (`Microvium.default === Microvium`), so default imports work with and
// without `esModuleInterop`, in CommonJS and in ES modules.
//
// `[Symbol.dispose]` needs the `esnext.disposable` lib (TypeScript 5.2 or
// later); it is referenced below (with `es2015.symbol.wellknown`, which it
// relies on) so consumers need not add it to their "lib" themselves.

/// <reference lib="es2015.symbol.wellknown" />
/// <reference lib="esnext.disposable" />

// ---------------------------------------------------------------------------
// Values crossing the boundary
// ---------------------------------------------------------------------------

/**
 * A host function that the guest can call (an entry of {@link Imports}).
 *
 * It receives guest values (see {@link GuestValue}) as arguments and may
 * return any {@link HostValue}. It may be `async` (or return a `Promise`):
 * a guest `async` function that calls it gets a guest promise it can
 * `await`, which settles when the host promise settles (a rejection becomes
 * a catchable guest exception). If it throws, the guest can catch the
 * error; uncaught, it reaches the host caller again.
 *
 * The parameters are typed `any` (as in the WebAssembly runtime's typings)
 * so that functions with specific parameter types, e.g.
 * `(a: number, b: number) => a + b`, can be used as imports without casts.
 */
export type HostFunction = (...args: any[]) => any;

/**
 * An alias of {@link HostFunction}, under the name the WebAssembly runtime's
 * typings use.
 */
export type AnyFunction = HostFunction;

/**
 * The host functions a snapshot can import, keyed by numeric import id
 * (`0` to `0xFFFF`). Every import the snapshot needs must be present, or
 * {@link restore} throws an error naming the missing id.
 *
 * @example
 * const imports: Imports = { [1]: (s: string) => console.log(s) };
 */
export type Imports = { readonly [id: number]: HostFunction };

/**
 * The values a snapshot exports, keyed by numeric export id:
 * `vm.exports[id]` is the exported value converted to a host value
 * (see {@link GuestValue}); `Object.keys(vm.exports)` lists the ids.
 *
 * Entries are typed `any` (as in the WebAssembly runtime's typings) so that
 * an exported function can be called directly, e.g. `vm.exports[1](2, 3)`,
 * and an exported object used without casts. To describe the exports of a
 * particular snapshot precisely, pass a type to {@link restore} or
 * {@link VM}: `restore<{ 1: (a: number, b: number) => number }>(snapshot)`.
 */
export type Exports = { readonly [id: number]: any };

/**
 * The bytes of a snapshot: a `Uint8Array` (including a Node.js `Buffer`), an
 * `ArrayBuffer`, or a plain array of byte values. The bytes are copied; the
 * caller may reuse its buffer afterwards.
 */
export type Snapshot = Uint8Array | ArrayBuffer | ArrayLike<number> | { readonly data: Uint8Array };

/**
 * A guest `Uint8Array` as seen by the host. It refers to the live guest
 * array; reads and writes go to the guest memory.
 */
export interface MicroviumUint8Array extends Iterable<number> {
  /** The number of bytes in the array. */
  readonly length: number;
  /**
   * A copy of the bytes from `begin` (default 0) up to but not including
   * `end` (default `length`), as a host `Uint8Array`. Negative indices count
   * from the end, as with `Uint8Array.prototype.slice`.
   */
  slice(begin?: number, end?: number): Uint8Array;
  /**
   * Copies `array` into the guest array starting at `offset` (default 0).
   * Throws a `RangeError` when it does not fit.
   */
  set(array: ArrayLike<number>, offset?: number): void;
  /** Iterates over the bytes. */
  [Symbol.iterator](): IterableIterator<number>;
}

/**
 * The class of guest `Uint8Array`s seen from the host (for `instanceof`).
 * Instances come only out of a VM; they cannot be constructed by the host.
 */
export declare const MicroviumUint8Array: {
  readonly prototype: MicroviumUint8Array;
};

/**
 * `Symbol.for('microvium.asyncImport')`. Setting `fn[ASYNC_IMPORT] = true`
 * on an import that returns a promise without being an `async function`
 * makes the guest's call to it awaitable (async functions are detected on
 * their own).
 */
export declare const ASYNC_IMPORT: unique symbol;

/**
 * A guest object as seen by the host: a `Proxy` backed by a GC-safe handle.
 * Reads and writes go to the live guest object; `Object.keys`, spread,
 * `JSON.stringify` and `util.inspect` show its properties. The same guest
 * object always comes out as the same host value (so `===`, `Map` and
 * `WeakMap` keys work).
 */
export interface GuestObject {
  [key: string]: any;
}

/**
 * A guest array as seen by the host: a `Proxy` with
 * `Array.isArray(p) === true`, `length`, indexing and iteration.
 */
export interface GuestArray extends Array<any> {}

/**
 * A guest function or closure as seen by the host: a callable host function.
 * Calling it with `this` set to a guest object passes that object as the
 * guest `this`. A guest async function returns a host `Promise`.
 */
export type GuestFunction = (...args: any[]) => any;

/**
 * A guest class as seen by the host: usable with `new` and carrying its
 * static members; `instance instanceof SomeClass` works.
 */
export interface GuestClass {
  new (...args: any[]): any;
  (...args: any[]): any;
  readonly [key: string]: any;
}

/**
 * What a guest value looks like when it comes out of the VM (as a result, an
 * export, a host-function argument or a property read):
 *
 * | guest value         | host value                                      |
 * |---------------------|-------------------------------------------------|
 * | primitives          | the same primitive (`undefined`, `null`, boolean, number, string) |
 * | object              | {@link GuestObject} (a live `Proxy`)             |
 * | array               | {@link GuestArray} (a live `Proxy`)              |
 * | function or closure | {@link GuestFunction}                            |
 * | class               | {@link GuestClass}                               |
 * | `Uint8Array`        | {@link MicroviumUint8Array}                      |
 * | an import function  | the original {@link HostFunction}                |
 * | a promise           | a host `Promise`                                 |
 */
export type GuestValue =
  | undefined
  | null
  | boolean
  | number
  | string
  | GuestObject
  | GuestArray
  | GuestFunction
  | GuestClass
  | MicroviumUint8Array
  | HostFunction
  | Promise<any>;

/** An alias of {@link GuestValue}. */
export type Value = GuestValue;

/**
 * What the host can pass into the VM (as a call argument, a host-function
 * result or a property write):
 *
 * - `undefined`, `null`, booleans, numbers (including `-0`, `NaN`,
 *   `±Infinity`) and strings, by copy;
 * - any value that came out of this VM ({@link GuestValue}), by reference;
 * - a host function that is one of this VM's imports: that import;
 * - plain objects and arrays: a deep copy (own enumerable string keys);
 * - `Uint8Array` / `Buffer`: a copy, as a guest `Uint8Array`;
 * - `Error`: a copy that carries at least `message`.
 *
 * Anything else (other functions, symbols, bigints, `Map`, `Set`, `Promise`,
 * other typed arrays, a value from another VM) throws a `TypeError` naming
 * the type, and nothing in the guest changes.
 */
export type HostValue =
  | undefined
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Error
  | GuestValue
  | readonly HostValue[]
  | { readonly [key: string]: HostValue };

// ---------------------------------------------------------------------------
// Restoring and controlling a VM
// ---------------------------------------------------------------------------

/** Options for {@link restore} and the {@link VM} constructor. */
export interface RestoreOptions {
  /**
   * Called when the guest reaches a bytecode address set with
   * {@link VM.setBreakpoint}, before the instruction at that address runs.
   * `vm.currentAddress` is valid during the call. If it throws, the error
   * reaches the host caller.
   */
  breakpointHit?: ((address: number) => void) | undefined;
  /**
   * How the VM gets a JavaScript collection when guest values that the host
   * dropped, but V8 has not collected yet, fill its 64 kB guest heap:
   *
   * - omitted: a minor collection that the runtime obtains by filling V8's
   *   young generation. The runtime never sets a V8 flag, defines no
   *   global, and does not call a program's `gc` unless given it here.
   * - a function: called as `gc({ type: 'minor' })`, then `gc()` if that
   *   freed too little; a program started with `--expose-gc` may pass
   *   `globalThis.gc` (the fastest).
   * - `false` or `null`: never; only V8's own collections and
   *   {@link VM.release} / {@link VM.scope} free such values (a program
   *   that drops many values in a synchronous loop may then exhaust the
   *   guest heap, `MVM_E_OUT_OF_MEMORY`).
   */
  gc?: ((options?: { type?: 'minor' | 'major' }) => void) | false | null | undefined;
  /**
   * This VM's guest heap cap, in bytes: an integer from what the snapshot's
   * own heap takes up to 65536 (64 kB, the engine's heap of 65534 bytes);
   * odd sizes are rounded down. Past it the guest fails as at 64 kB, with
   * the fatal `MVM_E_OUT_OF_MEMORY`, for this VM only. Out of range is a
   * `RangeError`, not a number a `TypeError`. Default: the engine's heap.
   */
  maxHeapSize?: number | undefined;
  /**
   * A flag other threads raise to stop this VM's running guest call: an
   * `Int32Array` over a `SharedArrayBuffer`, whose element 0 any thread sets
   * non-zero with `Atomics.store(flag, 0, 1)`. The running call (or, if none
   * runs, the next one) then fails with a {@link MicroviumError} whose code
   * is `'MVM_E_INTERRUPTED'`, which the guest cannot catch; the runtime then
   * sets the flag back to 0, and the VM goes on. Anything else is a
   * `TypeError`.
   */
  interrupt?: Int32Array | undefined;
}

/**
 * Memory use of a VM: every field of the engine's `mvm_TsMemoryStats`,
 * under the same names, in bytes unless noted.
 */
export interface MemoryStats {
  /** Total RAM currently allocated by the VM from the host. */
  totalSize: number;
  /** Number of distinct, currently-allocated memory allocations (mallocs) from the host. */
  fragmentCount: number;
  /** RAM size of VM core state. */
  coreSize: number;
  /** RAM allocated to the VM import table (table of functions resolved from the host). */
  importTableSize: number;
  /** RAM allocated to global variables in RAM. */
  globalVariablesSize: number;
  /**
   * If the machine registers are allocated (if a call is active), how much
   * RAM these consume; otherwise zero.
   */
  registersSize: number;
  /**
   * Virtual stack size currently allocated (if a call is active), or zero if
   * there is no active stack.
   */
  stackHeight: number;
  /** Virtual stack space capacity if a call is active, otherwise zero. */
  stackAllocatedCapacity: number;
  /** Maximum stack size over the lifetime of the VM. */
  stackHighWaterMark: number;
  /** Amount of virtual heap that the VM is currently using. */
  virtualHeapUsed: number;
  /** Maximum amount of virtual heap space ever used by this VM. */
  virtualHeapHighWaterMark: number;
  /** Current total size of the virtual heap (grows as needed up to the engine's maximum heap size). */
  virtualHeapAllocatedCapacity: number;
  /**
   * Not in `mvm_TsMemoryStats`: this VM's guest heap cap in bytes
   * ({@link RestoreOptions.maxHeapSize}, else the engine's 65534).
   */
  maxHeapSize: number;
}

/**
 * A restored Microvium virtual machine. `new VM(snapshot, imports, opts)` is
 * the same as `restore(snapshot, imports, opts)`.
 *
 * A VM has no `then` member, so `await restore(...)` (the asynchronous style
 * of the WebAssembly runtime) also works.
 *
 * @typeParam TExports The shape of {@link VM.exports}; defaults to
 * {@link Exports}, where every entry is `any`.
 */
export declare class VM<TExports extends object = Exports> implements Disposable {
  /**
   * Restores a snapshot (synchronously).
   *
   * @param snapshot The snapshot bytes (copied).
   * @param imports Host functions the snapshot imports, by numeric id.
   * @param opts Debugging hooks.
   * @throws {MicroviumError} if the snapshot is malformed or was compiled for
   * an incompatible engine version.
   * @throws {Error} if the snapshot needs an import that `imports` lacks
   * (the message names the id).
   */
  constructor(snapshot: Snapshot, imports?: Imports, opts?: RestoreOptions);

  /**
   * The exported values, by numeric export id. Exported functions come back
   * as callable host functions.
   */
  readonly exports: TExports;

  /** The version of the engine running this VM, e.g. `'8.0.0'`. */
  readonly engineVersion: string;

  /** The engine version the snapshot was compiled for, e.g. `'8.0.0'`. */
  readonly requiredEngineVersion: string;

  /**
   * The bytecode address currently executing. Meaningful inside a host
   * function called by the guest or inside `breakpointHit`.
   */
  readonly currentAddress: number;

  /**
   * A snapshot of the VM's current state, which {@link restore} accepts; the
   * restored VM continues from this state.
   */
  createSnapshot(): Uint8Array;

  /**
   * Runs the guest garbage collector.
   *
   * @param squeeze Also shrink the heap to fit what is live (default `false`).
   */
  runGC(squeeze?: boolean): void;

  /** The VM's current memory use. */
  getMemoryStats(): MemoryStats;

  /**
   * Sets the gas counter: the guest stops with a {@link MicroviumError} whose
   * code is `'MVM_E_INSTRUCTION_COUNT_REACHED'` after `n` more instructions.
   * `-1` disables the counter. The VM stays usable after the counter runs out.
   */
  stopAfterNInstructions(n: number): void;

  /** The remaining gas, or `-1` when the counter is disabled. */
  getInstructionCountRemaining(): number;

  /**
   * Sets a wall-clock limit, in milliseconds, for each later outermost call
   * into the guest (an export or other guest function, a proxy operation, a
   * constructor, an async continuation). Time spent in host functions the
   * guest calls counts, and a host function that calls back into the VM
   * shares its caller's deadline. Past the limit the call fails like
   * exhausted gas: a {@link MicroviumError} whose code is
   * `'MVM_E_TIME_LIMIT_REACHED'`, which the guest cannot catch; the VM stays
   * usable. `-1` turns the limit off (the default); `0` stops every call
   * before its first instruction.
   *
   * @param ms A finite number >= 0, or `-1`; else a `TypeError` (not a
   * number) or `RangeError`.
   */
  setTimeLimit(ms: number): void;

  /** The time limit set by {@link VM.setTimeLimit}, or `-1` when off. */
  getTimeLimit(): number;

  /**
   * Sets a breakpoint at a bytecode address; `opts.breakpointHit(address)`
   * is called when the guest reaches it.
   */
  setBreakpoint(address: number): void;

  /** Removes a breakpoint set with {@link VM.setBreakpoint}. */
  removeBreakpoint(address: number): void;

  /**
   * Releases the guest values behind these host values (objects, arrays,
   * functions, classes, Uint8Arrays that came out of this VM) now, so that
   * the guest can collect them without waiting for V8 to collect the host
   * values. Every later use of a released value throws an error; the same
   * guest value coming out again is a new host value. Releasing a value
   * twice, or a primitive, does nothing; a value of another VM or a host
   * object is a `TypeError`. Export values and promises are not released.
   */
  release(...values: unknown[]): void;

  /**
   * Runs `fn()` synchronously, then releases (as {@link VM.release} does)
   * every host value this VM made while it ran, except the value `fn`
   * returns or throws, which passes to the enclosing scope if there is one.
   * Returns what `fn` returns.
   */
  scope<T>(fn: () => T): T;

  /**
   * Frees the VM now. Every later use of the VM, its exports or any value
   * that came out of it throws an error. Calling it again does nothing.
   * A VM that is never disposed is freed when it and everything that came
   * out of it are garbage collected.
   */
  dispose(): void;

  /** The same as {@link VM.dispose}, for `using vm = restore(...)`. */
  [Symbol.dispose](): void;
}

/**
 * Restores a snapshot (synchronously) and returns the running VM. The same
 * as `new VM(snapshot, imports, opts)`.
 *
 * @param snapshot The snapshot bytes: `Uint8Array`, `Buffer`, `ArrayBuffer`
 * or a plain array of bytes (copied).
 * @param imports Host functions the snapshot imports, by numeric id
 * (0 to 0xFFFF).
 * @param opts Debugging hooks.
 *
 * @example
 * const vm = restore(snapshot, { [1]: (s: string) => console.log(s) });
 * vm.exports[2]('Hello');
 */
export declare function restore<TExports extends object = Exports>(
  snapshot: Snapshot,
  imports?: Imports,
  opts?: RestoreOptions,
): VM<TExports>;

/** The version of the engine in this package, e.g. `'8.0.0'`. */
export declare const engineVersion: string;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * The names of the engine's error codes (`mvm_TeError`), for
 * {@link MicroviumError.code}.
 */
export type MicroviumErrorCode =
  | 'MVM_E_UNEXPECTED'
  | 'MVM_E_MALLOC_FAIL'
  | 'MVM_E_ALLOCATION_TOO_LARGE'
  | 'MVM_E_INVALID_ADDRESS'
  | 'MVM_E_COPY_ACROSS_BUCKET_BOUNDARY'
  | 'MVM_E_FUNCTION_NOT_FOUND'
  | 'MVM_E_INVALID_HANDLE'
  | 'MVM_E_STACK_OVERFLOW'
  | 'MVM_E_UNRESOLVED_IMPORT'
  | 'MVM_E_ATTEMPT_TO_WRITE_TO_ROM'
  | 'MVM_E_INVALID_ARGUMENTS'
  | 'MVM_E_TYPE_ERROR'
  | 'MVM_E_TARGET_NOT_CALLABLE'
  | 'MVM_E_HOST_ERROR'
  | 'MVM_E_NOT_IMPLEMENTED'
  | 'MVM_E_HOST_RETURNED_INVALID_VALUE'
  | 'MVM_E_ASSERTION_FAILED'
  | 'MVM_E_INVALID_BYTECODE'
  | 'MVM_E_UNRESOLVED_EXPORT'
  | 'MVM_E_RANGE_ERROR'
  | 'MVM_E_DETACHED_EPHEMERAL'
  | 'MVM_E_TARGET_IS_NOT_A_VM_FUNCTION'
  | 'MVM_E_FLOAT64'
  | 'MVM_E_NAN'
  | 'MVM_E_NEG_ZERO'
  | 'MVM_E_OPERATION_REQUIRES_FLOAT_SUPPORT'
  | 'MVM_E_BYTECODE_CRC_FAIL'
  | 'MVM_E_BYTECODE_REQUIRES_FLOAT_SUPPORT'
  | 'MVM_E_PROTO_IS_READONLY'
  | 'MVM_E_SNAPSHOT_TOO_LARGE'
  | 'MVM_E_MALLOC_MUST_RETURN_POINTER_TO_EVEN_BOUNDARY'
  | 'MVM_E_ARRAY_TOO_LONG'
  | 'MVM_E_OUT_OF_MEMORY'
  | 'MVM_E_TOO_MANY_ARGUMENTS'
  | 'MVM_E_REQUIRES_LATER_ENGINE'
  | 'MVM_E_PORT_FILE_VERSION_MISMATCH'
  | 'MVM_E_PORT_FILE_MACRO_TEST_FAILURE'
  | 'MVM_E_EXPECTED_POINTER_SIZE_TO_BE_16_BIT'
  | 'MVM_E_EXPECTED_POINTER_SIZE_NOT_TO_BE_16_BIT'
  | 'MVM_E_TYPE_ERROR_TARGET_IS_NOT_CALLABLE'
  | 'MVM_E_TDZ_ERROR'
  | 'MVM_E_MALLOC_NOT_WITHIN_RAM_PAGE'
  | 'MVM_E_INVALID_ARRAY_INDEX'
  | 'MVM_E_UNCAUGHT_EXCEPTION'
  | 'MVM_E_FATAL_ERROR_MUST_KILL_VM'
  | 'MVM_E_OBJECT_KEYS_ON_NON_OBJECT'
  | 'MVM_E_INVALID_UINT8_ARRAY_LENGTH'
  | 'MVM_E_CAN_ONLY_ASSIGN_BYTES_TO_UINT8_ARRAY'
  | 'MVM_E_WRONG_BYTECODE_VERSION'
  | 'MVM_E_USING_NEW_ON_NON_CLASS'
  | 'MVM_E_INSTRUCTION_COUNT_REACHED'
  | 'MVM_E_REQUIRES_ACTIVE_VM'
  | 'MVM_E_ASYNC_START_ERROR'
  | 'MVM_E_ASYNC_WITHOUT_AWAIT'
  | 'MVM_E_TYPE_ERROR_AWAIT_NON_PROMISE'
  | 'MVM_E_HEAP_CORRUPT'
  | 'MVM_E_CLASS_PROTOTYPE_MUST_BE_NULL_OR_OBJECT'
  // This package's own, past the engine's numbers (errno 100, 101):
  | 'MVM_E_TIME_LIMIT_REACHED'
  | 'MVM_E_INTERRUPTED';

/**
 * An error reported by the engine (type errors, out of memory, gas
 * exhausted, bad snapshot, wrong engine version, ...). The message has the
 * form `Microvium Error: MVM_E_TYPE_ERROR (12): description`.
 *
 * Exceptions thrown by guest code are not wrapped: the host receives the
 * thrown value itself.
 */
export declare class MicroviumError extends Error {
  constructor(message?: string, code?: MicroviumErrorCode | (string & {}), errno?: number);
  /** The engine's error code name, e.g. `'MVM_E_TYPE_ERROR'`. */
  readonly code: MicroviumErrorCode | (string & {});
  /** The engine's numeric error code, e.g. `12`. */
  readonly errno: number;
  /**
   * What the host knows beyond the engine's message, when it knows more
   * (which snapshot check failed, which import ids are missing, which limit
   * was hit). The message itself is exactly the WebAssembly runtime's:
   * `Microvium Error: NAME (N)`, then `: description` where microvium.h has
   * one.
   */
  readonly detail?: string;
}

// ---------------------------------------------------------------------------
// The module object itself
// ---------------------------------------------------------------------------

/**
 * The module object itself (`Microvium.default === Microvium`), so that
 * `import Microvium from '@microvium/runtime'` gives the whole API whatever
 * the module settings.
 */
declare const _default: typeof import('./index');
export default _default;
