import assert from 'node:assert/strict';
import { BoltError } from '../../src/bolt/index.ts';

/** An `assert.throws` / `assert.rejects` validator: the error is a BoltError with this code. */
export function boltCode(c: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof BoltError, `expected BoltError ${c}, got ${String(err)}`);
    assert.equal(err.code, c, err.message);
    return true;
  };
}
