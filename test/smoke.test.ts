import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoltError } from 'boltkv';
test('errors carry a code', () => {
  assert.equal(new BoltError('ERR_IO', 'x').code, 'ERR_IO');
});
