/**
 * The one place the engine picks a freelist implementation, so a database option (`freelistType`)
 * maps to a class without the engine importing either.
 */
import { BoltError } from '../errors.ts';
import { ArrayFreelist } from './array.ts';
import type { Freelist } from './freelist.ts';
import { HashmapFreelist } from './hashmap.ts';

export type FreelistKind = Freelist['kind'];

/** A new, empty freelist of the given kind ('hashmap' is the default everywhere). */
export function createFreelist(kind: FreelistKind = 'hashmap'): Freelist {
  if (kind === 'hashmap') return new HashmapFreelist();
  if (kind === 'array') return new ArrayFreelist();
  throw new BoltError('ERR_INVALID_OPTION', `unknown freelist type ${String(kind)}: use 'hashmap' or 'array'`);
}
