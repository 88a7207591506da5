'use strict';
// MicroviumError: what engine failures become on the host. The native side
// builds them through makeError (registered in native.js).

class MicroviumError extends Error {
  constructor(message, code, errno) {
    super(message);
    this.code = code;
    this.errno = errno;
  }
}

Object.defineProperty(MicroviumError.prototype, 'name', {
  value: 'MicroviumError', writable: true, enumerable: false, configurable: true,
});

// `detail`, when the host knows more than the engine's message says (which
// snapshot check failed, which ids are missing...), is an own property, so
// Node shows it with the error; the message stays the engine's words.
function makeError(code, errno, message, detail) {
  const e = new MicroviumError(message, code, errno);
  if (detail !== undefined) e.detail = detail;
  // The stack should point at the user's call, not at this factory.
  if (Error.captureStackTrace) Error.captureStackTrace(e, makeError);
  return e;
}

module.exports = { MicroviumError, makeError };
