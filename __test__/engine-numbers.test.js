'use strict';
// Number semantics: guest programs compute what JavaScript computes, where
// microvium 8.0.0 gets numbers wrong. Each test fails on the pristine engine
// and passes with the patch of c/patches/ its group names. The reference is
// plain Node.js running the same source (helpers.runBoth); values are passed
// in as arguments, so the compiler cannot fold them at compile time.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const { runBoth } = require('./helpers.js');

/** A value as a person would write it in a failure message. */
function show(v) {
  if (typeof v === 'string') return v.length > 40 ? `${JSON.stringify(v.slice(0, 40))}...(${v.length})` : JSON.stringify(v);
  if (Object.is(v, -0)) return '-0';
  return String(v);
}

/** Runs `source` in Node and in the guest; fails naming the first values that differ. */
function agrees(source, { args = [], label = (k) => `report #${k}` } = {}) {
  const { node, guest } = runBoth(source, { args });
  assert.equal(node.threw, undefined, 'the reference itself threw');
  assert.deepEqual(guest.threw, node.threw);
  assert.equal(guest.reported.length, node.reported.length);
  const diffs = [];
  for (let k = 0; k < node.reported.length; k++) {
    const n = node.reported[k];
    const g = guest.reported[k];
    if (!Object.is(n, g)) diffs.push(`${label(k)}: JavaScript ${show(n)}, guest ${show(g)}`);
  }
  if (diffs.length) assert.fail(`${diffs.length} of ${node.reported.length} differ:\n  ${diffs.slice(0, 25).join('\n  ')}`);
  return node.reported;
}

/**
 * Reports each expression of `exprs` for every `a` of `xs` (and, when `ys`
 * is given, every `b` of `ys`). `helpers` is guest source placed before the
 * export (functions the expressions may call).
 */
function agreesOnEach(exprs, xs, ys, helpers = '') {
  const body = exprs.map((e) => `report(${e});`).join('\n          ');
  const source = `
    const report = vmImport(1);
    ${helpers}
    vmExport(1, (xs, ys) => {
      for (let i = 0; i < xs.length; i++) {
        const a = xs[i];
        ${ys ? 'for (let j = 0; j < ys.length; j++) {\n          const b = ys[j];' : '{'}
          ${body}
        }
      }
    });`;
  const label = (k) => {
    const e = exprs[k % exprs.length];
    const row = Math.floor(k / exprs.length);
    if (!ys) return `a = ${show(xs[row])}: ${e}`;
    return `a = ${show(xs[Math.floor(row / ys.length)])}, b = ${show(ys[row % ys.length])}: ${e}`;
  };
  return agrees(source, { args: ys ? [xs, ys] : [xs], label });
}

// Boundaries: int14 (-8192..8191), int32, 2^31, 2^32, 2^53, 1e21, fractions,
// -0, NaN and the infinities.
const NUMBERS = [
  0, -0, 1, -1, 2, 7, -7, 8191, 8192, -8192, -8193, 16384,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 32 + 5,
  2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, -1e21, 1e300,
  0.5, -0.5, 1.5, -1.5, 2.5, 2 ** 32 - 0.5, -(2 ** 31) - 1.5, 5e-324,
  NaN, Infinity, -Infinity,
];

describe('ToInt32 (toint32-wrap.patch)', () => {
  test('ToInt32 wraps modulo 2^32', () => {
    agreesOnEach([
      'a | 0', '0 | a', 'a & -1', 'a & 0x7FFFFFFF', 'a ^ 0', 'a ^ 0xFFFFFFFF', '~a', '~~a',
      'a << 0', 'a >> 0', 'a >>> 0', 'a << 1', 'a >> 1', 'a >>> 1', 'orAssign(a)', 'shiftAssign(a)',
    ], NUMBERS, undefined, `
      function orAssign(x) { let y = x; y |= 0; return y; }
      function shiftAssign(x) { let y = x; y >>>= 0; return y; }
    `);
  });

  test('shift counts are ToUint32 of the count, modulo 32', () => {
    const counts = [0, 1, 5, 31, 32, 33, -1, -31, -32, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 32 + 31, 1e21, 1.5, 31.9, NaN, Infinity, -Infinity];
    agreesOnEach(['a << b', 'a >> b', 'a >>> b'], [1, -1, 8191, -8193, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32 + 3, -(2 ** 31), 1.5, 1e21], counts);
  });

  test('a hash and a PRNG built on 32-bit arithmetic', () => {
    agrees(`
      const report = vmImport(1);
      vmExport(1, (bytes, seed) => {
        let fnv = 2166136261;
        let djb = 5381;
        for (let i = 0; i < bytes.length; i++) {
          fnv = (fnv ^ bytes[i]) * 16777619 >>> 0;
          djb = ((djb << 5) + djb + bytes[i]) | 0;
          report(fnv); report(djb);
        }
        let lcg = seed;
        let xs = seed | 0;
        for (let i = 0; i < 40; i++) {
          lcg = (lcg * 1664525 + 1013904223) >>> 0;
          xs ^= xs << 13; xs ^= xs >>> 17; xs ^= xs << 5;
          report(lcg); report(xs >>> 0); report(xs);
        }
      });
    `, { args: [[104, 101, 108, 108, 111, 32, 255, 0, 128, 77, 200, 13], 4000000000] });
  });

  test('integer division (x / y) | 0 wraps its quotient', () => {
    agreesOnEach(['(a / b) | 0', 'a / b | 0'], NUMBERS, [1, -1, 2, 3, -7, 0.5, 1e-300, 8192, 0, -0, NaN, Infinity]);
  });
});

describe('strict equality of numbers (strict-equality-numbers.patch)', () => {
  test('-0 === 0, NaN !== NaN, and numbers compare by value', () => {
    agreesOnEach(['a === b', 'a !== b'], NUMBERS, NUMBERS);
  });

  test('one number made in different ways (int14, int32, float64, -0) is one number', () => {
    agrees(`
      const report = vmImport(1);
      function pairs(xs) {
        for (let i = 0; i < xs.length; i++) {
          for (let j = 0; j < xs.length; j++) { report(xs[i] === xs[j]); report(xs[i] !== xs[j]); }
        }
      }
      function kind(x) {
        switch (x) {
          case 0: return 'zero';
          case 8192: return '8192';
          case 2147483648: return '2^31';
          case 0.5: return 'half';
          default: return 'other';
        }
      }
      vmExport(1, (zero, one, two, half, big, host) => {
        const groups = [
          [0, -0, zero, -zero, zero * -1, -1 * zero, one - one, 1 / Infinity, -1 / Infinity, +'-0', '0' * -1, host[0]],
          [1, one, 0.5 + half, two / two, 1.5 - half, +'1', '1.0' * 1, half * two, host[1]],
          [8192, 8191 + one, 16384 / two, 4096 * two, 8192.5 - half, +'8192', 0x2000, 8193 - one, host[2]],
          [2147483648, 2147483647 + one, 65536 * 32768, big / two, +'2147483648', big - 2147483648, host[3]],
          [0.5, half, one / two, 1.5 - one, +'0.5', host[4]],
          [NaN, zero / zero, +'x', Infinity - Infinity, host[5]],
        ];
        for (let g = 0; g < groups.length; g++) {
          pairs(groups[g]);
          for (let i = 0; i < groups[g].length; i++) report(kind(groups[g][i]));
        }
      });
    `, { args: [0, 1, 2, 0.5, 2 ** 32, [-0, 1, 8192, 2 ** 31, 0.5, NaN]] });
  });
});

describe('truthiness of numbers (tobool-numbers.patch)', () => {
  test('numbers outside -8192..8191 and fractions are truthy; 0, -0 and NaN are falsy', () => {
    agreesOnEach([
      '!a', '!!a', 'a ? 1 : 2', 'a && "and"', 'a || "or"', 'branch(a)', 'loop(a)', '!(a * 1)', '!(a + 0.25)',
    ], NUMBERS, undefined, `
      function branch(x) { if (x) { return 'then'; } else { return 'else'; } }
      function loop(x) { let n = 0; while (x) { n++; x = 0; } return n; }
    `);
  });

  test('2147483646 && 1 and if (10001) take the branch JavaScript takes', () => {
    agrees(`
      const report = vmImport(1);
      vmExport(1, (n) => {
        report(2147483646 + n && 1);
        if (10001 + n) report('then'); else report('else');
        report(!(8192 + n));
        report((0.1 + n) ? 'yes' : 'no');
        report((n - 0.5 + 0.5) ? 'yes' : 'no');
      });
    `, { args: [0] });
  });
});

describe('relational comparison of strings (string-relational-compare.patch)', () => {
  const STRINGS = [
    '', 'a', 'b', 'ab', 'abc', 'abd', 'B', 'Z', ' ', '10', '9', '2', '-1', 'length', 'lengthy', '__proto__',
    '\u00e9', '\u00ff', '\u0100', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\ufffd', '\uffff',
    '\u{10000}', '\u{1F600}', '\u{1F601}', '\u{10FFFF}', 'a\u{1F600}', 'a\uffff', 'a\ue000', 'a\u{1F600}b',
  ];

  test('strings compare by UTF-16 code units', () => {
    agreesOnEach(['a < b', 'a > b', 'a <= b', 'a >= b', '(a + "!") < (b + "!")', '(b + "") >= a'], STRINGS, STRINGS);
  });

  test('string literals of the program compare as strings', () => {
    agrees(`
      const report = vmImport(1);
      vmExport(1, (x) => {
        const s = ['a', 'b', '', 'ab', 'length', '__proto__', '\u{1F600}', '\uffff', '10', '9', x];
        for (let i = 0; i < s.length; i++) {
          for (let j = 0; j < s.length; j++) { report(s[i] < s[j]); report(s[i] >= s[j]); }
        }
        report('a' < 'b'); report('b' > 'a'); report('10' < '9'); report('' < 'a');
      });
    `, { args: ['b'] });
  });
});

describe('StringToNumber (string-to-number.patch)', () => {
  const STRINGS = [
    '', ' ', '\t\n\r\v\f', '\u00a0\ufeff\u2028\u2029\u3000 42 \u1680\u2000\u200a\u202f\u205f', '\u180e1', '\u200b1', '\u00851',
    '0', '-0', '+0', '-0.0', '00', '007', '1', '-1', '+1', '3.14159', '.5', '5.', '-.5', '+.5', '.', '-', '+', '+-1',
    '1e3', '1E3', '1e+3', '1e-3', '-1e-3', '1e', '1e+', 'e3', '1.5e3', '1.e3', '.e3', '1e3.5',
    '0x10', '0X1f', '0xFFFFFFFF', '0x1fffffffffffff', '0x20000000000001', '0x20000000000003', '0xffffffffffffffffffff',
    '0x8000000000000400', '0x8000000000000401', '0x80000000000004001', '0x' + 'f'.repeat(300), '0b' + '1'.repeat(60),
    '-0x10', '+0x10', '0x', '0x1g', '0x1.8', '0o17', '0O17', '0o8', '0b101', '0B11', '0b2', '0b', '0o', ' 0x10 ', '0x 10', '00x10',
    'Infinity', '+Infinity', '-Infinity', ' Infinity ', 'infinity', 'INFINITY', 'Infinity1', 'inf', 'nan', 'NaN',
    '1_000', '1,5', '12abc', 'abc', '1 2', '1\u0000', '\u0000', '\u0661', '\uff11',
    '8191', '8192', '-8192', '-8193', '2147483647', '2147483648', '-2147483648', '-2147483649', '4294967295', '4294967296',
    '9007199254740993', '1e21', '1e308', '1e309', '-1e309', '4.9e-324', '1e-400', '0.1', '0.30000000000000004',
    '123456789012345678901234567890', '1e99999999999', '1e-99999999999', '0e99999999999',
  ];

  test('strings convert to numbers as JavaScript\'s StringToNumber does', () => {
    agreesOnEach(['+a', 'a * 1', 'a - 0', '-a', 'a / 1', 'a % 1000', 'a ** 1', '1 - a'], STRINGS);
  });

  test('bitwise operators convert strings with ToNumber, then ToInt32', () => {
    agreesOnEach(['a | 0', '0 | a', '~a', 'a >>> 0', 'a << 1', 'a & 0xFFFF', '1 << a'], STRINGS);
  });

  test('long decimal strings round once, to the nearest double', () => {
    const zeros = (n) => '0'.repeat(n);
    agreesOnEach(['+a', '-a', 'a * 1'], [
      // 2^53 + 1 is halfway between two doubles: the digits far past it decide
      '9007199254740993', '9007199254740993.' + zeros(900) + '1', '9007199254740993.' + zeros(900),
      '9007199254740993' + zeros(900) + 'e-900', '9007199254740993' + zeros(900) + '1e-901',
      '9007199254740995', '9007199254740995.' + zeros(1000) + '1', '9007199254740994.' + '9'.repeat(1200),
      // The smallest subnormal's halfway point, and the largest double's
      '2.4703282292062328e-324', '2.4703282292062327e-324', '2.4703282292062327208828439643411068618252990130716238221279284125033775364e-324',
      '1.7976931348623157e308', '1.7976931348623158e308', '1.7976931348623158079372897140530341507993413271003782693617377898044496e308',
      zeros(1000) + '1', '0.' + zeros(1000) + '1e1001', '1' + zeros(308), '1' + zeros(309), '0.' + zeros(330) + '1',
      '123456789012345678901234567890123456789012345678901234567890e-40',
    ]);
  });

  test('a string and a number compare as numbers', () => {
    const values = [0, -0, 1, 9, 10, 1.5, 8192, 2 ** 31, NaN, Infinity, -Infinity, true, false, null, undefined,
      '10', '9', '', ' ', 'abc', '1e1', '0x10', ' 12 ', '1.5', '-0', 'Infinity', '8192'];
    agreesOnEach(['a < b', 'a > b', 'a <= b', 'a >= b'], values, values);
  });
});
