'use strict';
// Engine errors read exactly as the WebAssembly runtime words them:
// `Microvium Error: NAME (N)`, then `: description` only where microvium.h
// documents one. The expected texts come from microvium.h (helpers.js reads
// it), not from the code under test; what the addon knows beyond them is in
// `detail`, and only fatal errors say more in the message.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { compile, engineMessage, ENGINE_ERRORS } = require('./helpers.js');
const Microvium = require('..');
const { MicroviumError } = Microvium;

test('writing to a fixed-length array: exactly "Microvium Error: MVM_E_TYPE_ERROR (12)"', () => {
  const vm = Microvium.restore(compile(`
    vmExport(1, () => Reflect.ownKeys({ a: 1, b: 2 }));
  `), {});
  const keys = vm.exports[1]();
  assert.throws(() => { keys[0] = 'x'; }, (e) => e instanceof MicroviumError &&
    e.message === 'Microvium Error: MVM_E_TYPE_ERROR (12)' && e.code === 'MVM_E_TYPE_ERROR' && e.errno === 12);
  assert.equal(engineMessage('MVM_E_TYPE_ERROR'), 'Microvium Error: MVM_E_TYPE_ERROR (12)');
});

test('exhausted gas: the engine\'s description after the name, exactly', () => {
  const vm = Microvium.restore(compile(`vmExport(1, () => { while (true) {} });`), {});
  vm.stopAfterNInstructions(1000);
  assert.throws(() => vm.exports[1](), (e) => e instanceof MicroviumError &&
    e.message === 'Microvium Error: MVM_E_INSTRUCTION_COUNT_REACHED (51): The instruction count set by `mvm_stopAfterNInstructions` has been reached');
});

test('a bad snapshot: the engine\'s words in the message, the reason in detail', () => {
  for (const [bytes, reason] of [[new Uint8Array(0), /empty/], [new Uint8Array(5), /shorter/]]) {
    assert.throws(() => Microvium.restore(bytes, {}), (e) => e instanceof MicroviumError &&
      e.message === engineMessage('MVM_E_INVALID_BYTECODE') && reason.test(e.detail));
  }
  const good = compile('vmExport(1, () => 1);');
  const corrupt = good.slice();
  corrupt[corrupt.length - 2] ^= 0xFF;
  assert.throws(() => Microvium.restore(corrupt, {}), (e) => e instanceof MicroviumError &&
    e.message === engineMessage('MVM_E_BYTECODE_CRC_FAIL') && typeof e.detail === 'string');
});

test('a fatal error: the engine\'s words, then that the VM is unusable; later uses name the cause', () => {
  const vm = Microvium.restore(compile(`
    let keep = [];
    vmExport(1, () => { while (true) keep = [keep, keep, keep, keep]; });
    vmExport(2, () => 1);
  `), {});
  let first;
  assert.throws(() => vm.exports[1](), (e) => { first = e; return true; });
  assert.ok(first instanceof MicroviumError);
  assert.equal(first.code, 'MVM_E_OUT_OF_MEMORY');
  assert.ok(first.message.startsWith(engineMessage('MVM_E_OUT_OF_MEMORY') + '. '), first.message);
  assert.match(first.message.slice(engineMessage('MVM_E_OUT_OF_MEMORY').length), /unusable/);
  assert.throws(() => vm.exports[2](), (e) => e instanceof MicroviumError &&
    e.code === 'MVM_E_FATAL_ERROR_MUST_KILL_VM' &&
    e.message.startsWith(engineMessage('MVM_E_FATAL_ERROR_MUST_KILL_VM')) &&
    e.message.includes('MVM_E_OUT_OF_MEMORY (33)'));
});

test('every engine error has its microvium.h name and errno; descriptions are the header\'s text', () => {
  // The table is read at build time from the same header (build.rs); a
  // guest type error and a host-side argument-count error both use it.
  assert.ok(Object.keys(ENGINE_ERRORS).length >= 58);
  const vm = Microvium.restore(compile(`vmExport(1, (f) => f());`), {});
  assert.throws(() => vm.exports[1](5), (e) => e instanceof MicroviumError &&
    e.message === engineMessage('MVM_E_TYPE_ERROR_TARGET_IS_NOT_CALLABLE'));
  assert.throws(() => vm.exports[1](...Array(127).fill(0)), (e) => e instanceof MicroviumError &&
    e.message === engineMessage('MVM_E_TOO_MANY_ARGUMENTS') && /127/.test(e.detail));
});
