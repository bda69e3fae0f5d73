/**
 * Where one remote watch stands in the revision history, so that a stream moved to another
 * endpoint re-creates it from the revision after the last event delivered and nothing is lost or
 * repeated. Decides only: no I/O; remote-watch.ts sends the creates and delivers what this keeps.
 */
import type { WatchRequest, WatchResponse } from '../watch/types.ts';

export interface WatchState {
  readonly id: number;
  /** The request as sent to the server (no signal, no client-chosen id). */
  readonly req: WatchRequest;
  /** Where the watch (re)starts on the next connection; 0 = the server's next revision. */
  nextRev: number;
  /** mod revision of the last event delivered (0: none yet). */
  lastRev: number;
  /** Events of `lastRev` delivered in fragments whose revision is not complete yet. */
  openFragment: number;
  /** After a resume inside a fragmented revision: events of `nextRev` the server sends again, to drop. */
  skip: number;
  /** The stream's `created` answer went to the caller. */
  announced: boolean;
  /** The server's id on the current connection, once its `created` answer came. */
  serverId: number | undefined;
  detachSignal: (() => void) | undefined;
}

export function newWatchState(id: number, req: WatchRequest, start: number, announced: boolean): WatchState {
  return {
    id,
    req,
    nextRev: start,
    lastRev: 0,
    openFragment: 0,
    skip: 0,
    announced,
    serverId: undefined,
    detachSignal: undefined,
  };
}

/** Before a (re)create goes out: resuming inside a fragmented revision, it comes again whole; drop what was delivered. */
export function resumePoint(st: WatchState): void {
  if (st.openFragment > 0) {
    st.nextRev = st.lastRev;
    st.skip = st.openFragment;
    st.openFragment = 0;
  }
}

/**
 * The events of a server answer this watch has not delivered yet, and its position moved past
 * them; undefined when an answer with events brings nothing new (it is dropped whole).
 */
export function undelivered(st: WatchState, response: WatchResponse): WatchResponse['events'] | undefined {
  let events = response.events.filter((e) => e.kv.modRevision >= st.nextRev);
  if (st.skip > 0) {
    const again = events.filter((e) => e.kv.modRevision === st.nextRev).length;
    const drop = Math.min(again, st.skip);
    st.skip -= drop;
    events = events.slice(drop);
    if (events.length > 0 && events[0]!.kv.modRevision > st.nextRev) st.skip = 0;
  }
  if (response.events.length > 0) {
    if (events.length === 0) return undefined;
    const last = events[events.length - 1]!.kv.modRevision;
    if (response.fragment === true) {
      st.openFragment =
        (last === st.lastRev ? st.openFragment : 0) + events.filter((e) => e.kv.modRevision === last).length;
    } else {
      st.openFragment = 0;
    }
    st.lastRev = last;
    if (st.openFragment === 0 && last + 1 > st.nextRev) st.nextRev = last + 1;
  }
  return events;
}
