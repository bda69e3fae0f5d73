/**
 * The synced watchers, indexed by what they cover (etcd's watcher_group.go): a map for single-key
 * watchers and an interval index for ranges, so a revision's events find their watchers without
 * scanning them all.
 */
import { bytesToByteString } from '../keys.ts';
import type { Event, RevisionBatch } from '../mvcc/types.ts';
import { IntervalIndex } from './interval-index.ts';
import { eventFor, type WatcherState } from './watcher.ts';

export class WatcherGroup {
  readonly #singles = new Map<string, Set<WatcherState>>();
  readonly #ranges = new IntervalIndex<WatcherState>();

  add(w: WatcherState): void {
    if (w.range.end === undefined) {
      let set = this.#singles.get(w.range.start);
      if (set === undefined) {
        set = new Set();
        this.#singles.set(w.range.start, set);
      }
      set.add(w);
    } else {
      w.handle = this.#ranges.insert({
        start: w.range.start,
        end: w.range.end,
        value: w,
      });
    }
  }

  remove(w: WatcherState): void {
    if (w.range.end === undefined) {
      const set = this.#singles.get(w.range.start);
      if (set !== undefined) {
        set.delete(w);
        if (set.size === 0) this.#singles.delete(w.range.start);
      }
    } else if (w.handle !== undefined) {
      this.#ranges.remove(w.handle);
      w.handle = undefined;
    }
  }

  /**
   * Each watcher that wants some of this revision, with its events in order (filtered, prevKv as
   * asked). Watchers whose start lies above the revision are skipped.
   */
  match(batch: RevisionBatch): Map<WatcherState, Event[]> {
    const rev = batch.revision;
    const matched = new Map<WatcherState, Event[]>();
    const add = (w: WatcherState, ev: Event): void => {
      if (w.nextRev > rev) return;
      const out = eventFor(w, ev);
      if (out === undefined) return;
      const list = matched.get(w);
      if (list === undefined) matched.set(w, [out]);
      else list.push(out);
    };
    for (const ev of batch.events) {
      const k = bytesToByteString(ev.kv.key);
      const set = this.#singles.get(k);
      if (set !== undefined) for (const w of set) add(w, ev);
      if (this.#ranges.size > 0) this.#ranges.stab(k, (w) => add(w, ev));
    }
    return matched;
  }
}
