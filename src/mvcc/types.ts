/**
 * Shapes shared by the revision layer and the layers above it (watch, api). Revisions are JS
 * numbers: exact up to 2^53, far beyond any store's lifetime of writes. Lease IDs are bigint: etcd
 * hands out IDs far above 2^53.
 */

/** etcd's mvccpb.KeyValue with camelCase fields. */
export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  /** The lease ID (int64, lossless), 0n for none. */
  lease: bigint;
}

/** etcd's mvccpb.Event. `prevKv` is filled only where the caller asked for it. */
export interface Event {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** Every event of one main revision, in sub-revision order. */
export interface RevisionBatch {
  revision: number;
  events: Event[];
}

/**
 * What the watch layer needs from the revision layer: the live feed of committed revisions and a
 * way to read history back from storage.
 */
export interface EventSource {
  /** The store's current revision. */
  currentRevision(): number;
  /** Revisions below this are gone; 0 when never compacted. */
  compactRevision(): number;
  /**
   * Called once per main revision, in order, after that revision is durable and visible to
   * range. Each event carries prevKv (the key's previous live value, if any). Returns unsubscribe.
   */
  onCommit(listener: (batch: RevisionBatch) => void): () => void;
  /**
   * Events of revisions [fromRev, toRev] for keys in [key, rangeEnd) (etcd's rangeEnd rules), read
   * from storage, at most `limit` revisions' worth (whole revisions only). Throws the revision
   * layer's compacted error when fromRev < compactRevision(), as etcd's watch does.
   */
  readEvents(req: {
    fromRev: number;
    toRev: number;
    key: Uint8Array;
    rangeEnd?: Uint8Array;
    prevKv: boolean;
    limit?: number;
  }): RevisionBatch[];
}
