/**
 * What the server serves: boltkv's `KV` interface (what `openStore` returns, or any other
 * implementation). Calls outside it (`revision`, `defragment`, `hash`) are used when the store has
 * them, and answered as etcd's unimplemented methods when it does not.
 */
import type { KV } from '../api/kv.ts';

export type ServedKV = KV;
