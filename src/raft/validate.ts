import { RaftError, type RaftErrorCode } from './errors.ts';
import type { ConfChange, ConfState, Entry, Message, Snapshot } from './types.ts';
import { MESSAGE_TYPES } from './types.ts';

/**
 * Shape checks for data that crosses a trust boundary (the network, a decoder, a caller). They turn
 * garbage into a typed error instead of a TypeError deep inside the state machine.
 */

type Obj = Record<string, unknown>;

function fail(code: RaftErrorCode, what: string): never {
  throw new RaftError(code, what);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function uint(v: unknown, name: string, code: RaftErrorCode): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    fail(code, `${name} must be a non-negative safe integer`);
  return v;
}

function bytes(v: unknown, name: string, code: RaftErrorCode): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(code, `${name} must be a Uint8Array`);
  return v;
}

function ids(v: unknown, name: string, code: RaftErrorCode): number[] {
  if (!Array.isArray(v)) fail(code, `${name} must be an array of node ids`);
  return v.map((x, i) => {
    const id = uint(x, `${name}[${i}]`, code);
    if (id === 0) fail(code, `${name}[${i}] must be a positive node id`);
    return id;
  });
}

export function validateConfState(v: unknown, code: RaftErrorCode = 'ERR_RAFT_INVALID_MESSAGE'): ConfState {
  if (!isObj(v)) fail(code, 'confState must be an object');
  const voters = ids(v['voters'], 'confState.voters', code);
  const learners = ids(v['learners'], 'confState.learners', code);
  const vs = new Set(voters);
  if (vs.size !== voters.length || new Set(learners).size !== learners.length)
    fail(code, 'confState has duplicate ids');
  if (learners.some((id) => vs.has(id))) fail(code, 'confState lists a node as both voter and learner');
  return { voters, learners };
}

export function validateEntry(v: unknown, name: string, code: RaftErrorCode): Entry {
  if (!isObj(v)) fail(code, `${name} must be an object`);
  const type = v['type'];
  if (type !== 'normal' && type !== 'confChange') fail(code, `${name}.type must be 'normal' or 'confChange'`);
  return {
    term: uint(v['term'], `${name}.term`, code),
    index: uint(v['index'], `${name}.index`, code),
    type,
    data: bytes(v['data'], `${name}.data`, code),
  };
}

function validateSnapshot(v: unknown, code: RaftErrorCode): Snapshot {
  if (!isObj(v) || !isObj(v['metadata'])) fail(code, 'snapshot must be an object with metadata');
  const md = v['metadata'];
  return {
    data: bytes(v['data'], 'snapshot.data', code),
    metadata: {
      index: uint(md['index'], 'snapshot.metadata.index', code),
      term: uint(md['term'], 'snapshot.metadata.term', code),
      confState: validateConfState(md['confState'], code),
    },
  };
}

const TYPES = new Set<string>(MESSAGE_TYPES);

/** Checks and normalises a message; throws ERR_RAFT_INVALID_MESSAGE (or `code`) on a bad shape. */
export function validateMessage(v: unknown, code: RaftErrorCode = 'ERR_RAFT_INVALID_MESSAGE'): Message {
  if (!isObj(v)) fail(code, 'message must be an object');
  const type = v['type'];
  if (typeof type !== 'string' || !TYPES.has(type)) fail(code, `unknown message type ${String(type)}`);
  const entriesRaw = v['entries'] ?? [];
  if (!Array.isArray(entriesRaw)) fail(code, 'entries must be an array');
  const entries = entriesRaw.map((e, i) => validateEntry(e, `entries[${i}]`, code));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index !== entries[i - 1]!.index + 1) fail(code, 'entries must have consecutive indexes');
  }
  const reject = v['reject'] ?? false;
  if (typeof reject !== 'boolean') fail(code, 'reject must be a boolean');
  const m: Message = {
    type: type as Message['type'],
    to: uint(v['to'], 'to', code),
    from: uint(v['from'], 'from', code),
    term: uint(v['term'], 'term', code),
    logTerm: uint(v['logTerm'] ?? 0, 'logTerm', code),
    index: uint(v['index'] ?? 0, 'index', code),
    entries,
    commit: uint(v['commit'] ?? 0, 'commit', code),
    reject,
    rejectHint: uint(v['rejectHint'] ?? 0, 'rejectHint', code),
  };
  if (v['snapshot'] !== undefined && v['snapshot'] !== null) m.snapshot = validateSnapshot(v['snapshot'], code);
  if (v['context'] !== undefined && v['context'] !== null) m.context = bytes(v['context'], 'context', code);
  const lt = v['leaderTransfer'];
  if (lt !== undefined && lt !== null) {
    if (typeof lt !== 'boolean') fail(code, 'leaderTransfer must be a boolean');
    m.leaderTransfer = lt;
  }
  if (m.type === 'snap' && !m.snapshot) fail(code, 'snap message without a snapshot');
  return m;
}

export function validateConfChange(v: unknown, code: RaftErrorCode = 'ERR_RAFT_INVALID_CONF_CHANGE'): ConfChange {
  if (!isObj(v)) fail(code, 'conf change must be an object');
  const type = v['type'];
  if (type !== 'addNode' && type !== 'removeNode' && type !== 'addLearnerNode') {
    fail(code, `conf change type must be addNode, removeNode or addLearnerNode, got ${String(type)}`);
  }
  const nodeId = uint(v['nodeId'], 'nodeId', code);
  if (nodeId === 0) fail(code, 'nodeId must be positive');
  const cc: ConfChange = { type, nodeId };
  if (v['context'] !== undefined && v['context'] !== null) cc.context = bytes(v['context'], 'context', code);
  return cc;
}
