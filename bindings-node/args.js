'use strict';
// Argument checks shared by the public JavaScript modules of @vibetrees/native: a programmer
// error throws synchronously, as a TypeError with code 'INVALID_ARGUMENT'.

/** A TypeError carrying the core's INVALID_ARGUMENT code. */
function argError(message) {
  const err = new TypeError(message);
  err.code = 'INVALID_ARGUMENT';
  return err;
}

/** How a value is named in an argument error. */
function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

module.exports = { argError, describe };
