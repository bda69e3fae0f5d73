/** etcd's prefix end for users: the range end that selects every key starting with a prefix. */
import { prefixEndBytes } from '../keys.ts';
import { toBytes } from '../mvcc/validate.ts';

/** The smallest key greater than every key with this prefix ("\0", i.e. every key, if none). */
export function prefixEnd(prefix: Uint8Array | string): Uint8Array {
  return prefixEndBytes(toBytes(prefix, 'prefix'));
}
