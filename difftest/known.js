'use strict';
// Reads difftest/known.json: discrepancy signatures that are expected
// (engine defects not fixed yet, engine limitations, compiler defects),
// each with a reason. An entry with "fixed": true no longer excuses its
// signatures: seeing one again is a regression.

const fs = require('fs');
const path = require('path');

const KNOWN_FILE = path.join(__dirname, 'known.json');

function loadKnown(file = KNOWN_FILE) {
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  const entries = data.entries.map((e) => ({
    ...e,
    res: (e.match || []).map((m) => new RegExp(m)),
    srcRe: e.sourceMatch ? new RegExp(e.sourceMatch) : null,
  }));
  return {
    entries,
    // The entry that excuses a signature seen in `source`, or null. An
    // entry with "sourceMatch" only excuses programs whose text matches it
    // (for failures that cannot be told apart by the signature alone, such
    // as MVM_E_INVALID_BYTECODE, whose cause is elsewhere in the program).
    match(signature, source) {
      for (const e of entries) {
        if (e.fixed === true) continue;
        if (!e.res.some((re) => re.test(signature))) continue;
        if (e.srcRe && (source === undefined || !e.srcRe.test(source))) continue;
        return e;
      }
      return null;
    },
    // The entry (fixed or not) that lists a regression file.
    forRegression(file) {
      return entries.find((e) => (e.regressions || []).includes(file)) || null;
    },
  };
}

module.exports = { loadKnown, KNOWN_FILE };
