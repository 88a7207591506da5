'use strict';
// Loads the compiled addon through the loader napi-rs generates
// (binding.js) and gives it the JS helpers it calls back into.

const native = require('../binding.js');
const { makeError } = require('./errors');
const { makeValue, classify } = require('./membrane');
const { awaitHost } = require('./async');

native.init(makeError, makeValue, classify, awaitHost);

module.exports = native;
