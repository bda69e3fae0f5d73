/** etcd's backend layout: bucket names and the fixed keys of the `meta` bucket. */
const enc = new TextEncoder();

/** Revision key → KeyValue record (or tombstone). */
export const KEY_BUCKET = 'key';
/** consistent_index and the compaction progress. */
export const META_BUCKET = 'meta';
/** Lease ID (8-byte big-endian) → lease record. */
export const LEASE_BUCKET = 'lease';

export const CONSISTENT_INDEX_KEY = enc.encode('consistent_index');
export const SCHEDULED_COMPACT_KEY = enc.encode('scheduledCompactRev');
export const FINISHED_COMPACT_KEY = enc.encode('finishedCompactRev');
