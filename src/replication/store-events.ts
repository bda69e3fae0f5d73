/**
 * The revision feed of a member for its watch hub. A snapshot install swaps the member's store for
 * one opened on the received file; this keeps one EventSource for the hub across the swap. The new
 * store's first commit then jumps ahead, and the hub re-reads the gap from the new file's history.
 */
import type { MvccStore } from '../mvcc/store.ts';
import type { EventSource, RevisionBatch } from '../mvcc/types.ts';

export class StoreEvents implements EventSource {
  private store: MvccStore;
  private readonly listeners = new Set<(b: RevisionBatch) => void>();
  private unsubscribe: () => void;

  constructor(store: MvccStore) {
    this.store = store;
    this.unsubscribe = store.onCommit((b) => this.dispatch(b));
  }

  attach(store: MvccStore): void {
    this.unsubscribe();
    const before = this.store.currentRevision();
    this.store = store;
    this.unsubscribe = store.onCommit((b) => this.dispatch(b));
    const now = store.currentRevision();
    if (now <= before) return;
    // Tell the hub the file moved ahead. One revision is handed over whole; a longer jump is sent
    // as a gap, which makes every watcher catch up from the new file's history in bounded chunks.
    if (now === before + 1) {
      try {
        const all = new Uint8Array([0]);
        const batches = store.readEvents({ fromRev: now, toRev: now, key: all, rangeEnd: all, prevKv: true });
        for (const b of batches) this.dispatch(b);
        return;
      } catch {
        // compacted in the received file: the gap path below lets the hub report it per watcher
      }
    }
    this.dispatch({ revision: now, events: [] });
  }

  private dispatch(b: RevisionBatch): void {
    for (const l of [...this.listeners]) l(b);
  }

  currentRevision(): number {
    return this.store.currentRevision();
  }

  compactRevision(): number {
    return this.store.compactRevision();
  }

  onCommit(listener: (batch: RevisionBatch) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readEvents(req: Parameters<EventSource['readEvents']>[0]): RevisionBatch[] {
    return this.store.readEvents(req);
  }
}
