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

function makeError(code, errno, message) {
  const e = new MicroviumError(message, code, errno);
  // The stack should point at the user's call, not at this factory.
  if (Error.captureStackTrace) Error.captureStackTrace(e, makeError);
  return e;
}

module.exports = { MicroviumError, makeError };
