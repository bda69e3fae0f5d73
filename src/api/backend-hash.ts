/**
 * etcd 3.4's Maintenance.Hash (backend.Hash with mvcc's DefaultIgnores): a CRC-32C over every
 * top-level bucket of the bolt file, in name order — the bucket name, then each key and value in
 * key order — leaving out meta/consistent_index, which moves without any client write. A nested
 * bucket counts as its key only (its value is nil to bbolt's ForEach). Pure over one read
 * transaction; the caller picks the transaction.
 */
import type { Tx } from '../bolt/index.ts';
import { Crc32c } from '../mvcc/hash.ts';
import { CONSISTENT_INDEX_KEY, META_BUCKET } from '../mvcc/buckets.ts';

const META = Buffer.from(META_BUCKET);

export function backendHash(tx: Tx): number {
  const crc = new Crc32c();
  tx.forEach((name, bucket) => {
    crc.update(name);
    const isMeta = name.equals(META);
    bucket.forEach((k, v) => {
      if (isMeta && k.equals(CONSISTENT_INDEX_KEY)) return;
      crc.update(k);
      if (v !== null) crc.update(v);
    });
  });
  return crc.digest();
}
