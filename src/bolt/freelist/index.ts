/**
 * `boltkv/freelist`: the page allocators behind the engine, exported so they can be benchmarked
 * and studied on their own. Both keep the {@link Freelist} contract; 'hashmap' is the default.
 */
export type { Freelist } from './freelist.ts';
export { ArrayFreelist } from './array.ts';
export { HashmapFreelist } from './hashmap.ts';
export { createFreelist } from './create.ts';
export type { FreelistKind } from './create.ts';
export { decodeFreelistPage, encodeFreelistPage, freelistPageCount, FREELIST_PAGE_FLAG } from './codec.ts';
