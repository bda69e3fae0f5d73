/**
 * Watch request and option validation: a request is checked once, here, and turned into the
 * settings a watcher keeps. Unknown fields are refused by name, so a misspelt or foreign field
 * (etcd3's `range_end`, level's `prefix`) never silently watches something else.
 */
import { WatchError } from './errors.ts';
import { parseKeyRange, type KeyRange } from './key-range.ts';

/** A validated watch request. */
export interface WatchSettings {
  readonly range: KeyRange;
  /** 0: the next revision to be committed. */
  readonly startRevision: number;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  readonly signal: AbortSignal | undefined;
  /** The client-chosen stream watch id; 0 = pick one. */
  readonly watchId: number;
  readonly fragment: boolean;
}

const KNOWN_FIELDS = new Set([
  'key',
  'rangeEnd',
  'startRevision',
  'prevKv',
  'filters',
  'progressNotify',
  'signal',
  'watchId',
  'fragment',
]);

/** Throws ERR_UNKNOWN_FIELD naming the first field of `obj` outside `known` (undefined ones pass). */
export function refuseUnknownFields(obj: object, known: ReadonlySet<string>, what: string): void {
  for (const [field, v] of Object.entries(obj)) {
    if (v !== undefined && !known.has(field)) {
      throw new WatchError('ERR_UNKNOWN_FIELD', `unknown ${what} field "${field}"`, { field });
    }
  }
}

function invalid(message: string): WatchError {
  return new WatchError('ERR_INVALID_WATCH_REQUEST', message);
}

function optionalBoolean(v: unknown, name: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw invalid(`${name} must be a boolean`);
  return v;
}

export function parseWatchRequest(req: unknown): WatchSettings {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw invalid('watch request must be an object');
  const r = req as Record<string, unknown>;
  refuseUnknownFields(r, KNOWN_FIELDS, 'watch request');
  const range = parseKeyRange(r.key, r.rangeEnd);
  const start = r.startRevision ?? 0;
  if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0) {
    throw invalid('startRevision must be a non-negative integer');
  }
  let noPut = false;
  let noDelete = false;
  if (r.filters !== undefined && r.filters !== null) {
    if (!Array.isArray(r.filters)) throw invalid('filters must be an array');
    for (const f of r.filters as unknown[]) {
      if (f === 'NOPUT') noPut = true;
      else if (f === 'NODELETE') noDelete = true;
      else throw invalid(`unknown watch filter ${String(f)}`);
    }
  }
  const signal = r.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal');
  const watchId = r.watchId ?? 0;
  if (typeof watchId !== 'number' || !Number.isSafeInteger(watchId)) throw invalid('watchId must be an integer');
  return {
    range,
    startRevision: start,
    prevKv: optionalBoolean(r.prevKv, 'prevKv'),
    noPut,
    noDelete,
    progressNotify: optionalBoolean(r.progressNotify, 'progressNotify'),
    signal,
    watchId,
    fragment: optionalBoolean(r.fragment, 'fragment'),
  };
}

/** A positive integer hub option, or its default when absent. */
export function positiveIntOption(v: unknown, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalid(`${name} must be a positive integer`);
  return v;
}
