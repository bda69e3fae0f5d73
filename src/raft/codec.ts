import { Packr } from 'msgpackr';
import { RaftError, isRaftError } from './errors.ts';
import type { ConfChange, Message } from './types.ts';
import { validateConfChange, validateMessage } from './validate.ts';

/**
 * msgpack encodings for a future network transport, and for conf changes stored inside entries.
 * Records/structures are disabled so each buffer is self-describing (no shared schema state between
 * the two ends of a connection).
 */
const packr = new Packr({ useRecords: false, moreTypes: false });

function strip(m: Message): Record<string, unknown> {
  // Omit absent optional fields: msgpack has no "undefined", and smaller is better on the wire.
  const o: Record<string, unknown> = {
    type: m.type,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries,
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
  };
  if (m.snapshot) o['snapshot'] = m.snapshot;
  if (m.context) o['context'] = m.context;
  if (m.leaderTransfer !== undefined) o['leaderTransfer'] = m.leaderTransfer;
  return o;
}

function unpack(buf: Uint8Array, what: string): unknown {
  if (!(buf instanceof Uint8Array)) throw new RaftError('ERR_RAFT_DECODE', `${what}: input must be a Uint8Array`);
  try {
    return packr.unpack(buf);
  } catch (err) {
    throw new RaftError('ERR_RAFT_DECODE', `${what}: not valid msgpack`, { cause: err });
  }
}

function relabel<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isRaftError(err)) throw new RaftError('ERR_RAFT_DECODE', err.message, { cause: err });
    throw err;
  }
}

export function encodeMessage(m: Message): Uint8Array {
  return packr.pack(strip(validateMessage(m)));
}

export function decodeMessage(buf: Uint8Array): Message {
  const raw = unpack(buf, 'decodeMessage');
  return relabel(() => validateMessage(raw, 'ERR_RAFT_DECODE'));
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const v = validateConfChange(cc);
  const o: Record<string, unknown> = { type: v.type, nodeId: v.nodeId };
  if (v.context) o['context'] = v.context;
  return packr.pack(o);
}

export function decodeConfChange(buf: Uint8Array): ConfChange {
  const raw = unpack(buf, 'decodeConfChange');
  return relabel(() => validateConfChange(raw, 'ERR_RAFT_DECODE'));
}
