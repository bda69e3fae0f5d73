/**
 * A linearizability checker for key-value histories (Wing & Gong's search with Lowe's memoisation,
 * as porcupine does it). Each operation has a call and a return time; an operation whose outcome
 * is unknown (the client gave up, the member died) returns at +Infinity: it may have taken effect
 * at any point after its call, or never. Registers are independent, so the history is split by key
 * and each key is checked alone (linearizability is compositional).
 */

export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'delete'; key: string }
  /** Compare-and-set: succeeds when the key's value is `expect` (null: absent). */
  | { kind: 'cas'; key: string; expect: string | null; value: string };

export type KvOutput =
  | { kind: 'put' }
  | { kind: 'get'; value: string | null }
  | { kind: 'delete' }
  | { kind: 'cas'; ok: boolean }
  /** Unknown outcome (only with ret = Infinity). */
  | { kind: 'unknown' };

export interface Operation {
  client: number;
  input: KvInput;
  output: KvOutput;
  call: number;
  ret: number;
}

type State = string | null;

/** The sequential specification of one register: the next state, or undefined if impossible. */
function step(state: State, op: Operation): State | undefined {
  const i = op.input;
  const o = op.output;
  switch (i.kind) {
    case 'put':
      return i.value;
    case 'delete':
      return null;
    case 'get':
      if (o.kind === 'unknown') return state;
      return o.kind === 'get' && o.value === state ? state : undefined;
    case 'cas': {
      const match = state === i.expect;
      if (o.kind === 'unknown') return match ? i.value : state;
      if (o.kind !== 'cas' || o.ok !== match) return undefined;
      return match ? i.value : state;
    }
  }
}

interface Node {
  op: number;
  isCall: boolean;
  time: number;
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

export interface CheckResult {
  ok: boolean;
  /** Keys checked and operations per result, for reporting. */
  keys: number;
  operations: number;
  /** The first key that is not linearizable. */
  badKey?: string;
}

/** Checks one register's history (all operations on the same key). */
export function checkRegister(ops: readonly Operation[], initial: State = null): boolean {
  if (ops.length === 0) return true;
  // Calls before returns at equal times would let an op be ordered before one that returned at the
  // same instant; give returns priority so ties count as "not concurrent" only when strictly apart.
  const evs: { op: number; isCall: boolean; time: number }[] = [];
  ops.forEach((op, k) => {
    if (!(op.ret >= op.call)) throw new RangeError(`operation ${k}: returns before its call`);
    evs.push({ op: k, isCall: true, time: op.call }, { op: k, isCall: false, time: op.ret });
  });
  evs.sort((a, b) => {
    if (a.time !== b.time) return a.time - b.time;
    if (a.op === b.op) return a.isCall ? -1 : 1;
    return a.isCall === b.isCall ? a.op - b.op : a.isCall ? 1 : -1;
  });
  const head: Node = { op: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let tail = head;
  const calls = new Map<number, Node>();
  for (const e of evs) {
    const n: Node = { op: e.op, isCall: e.isCall, time: e.time, match: undefined, prev: tail, next: undefined };
    tail.next = n;
    tail = n;
    if (e.isCall) calls.set(e.op, n);
    else calls.get(e.op)!.match = n;
  }
  const words = Math.ceil(ops.length / 32);
  const bits = new Uint32Array(words);
  const cache = new Set<string>();
  const key = (s: State): string => `${Array.from(bits).join(',')}|${s === null ? '\u0000' : `=${s}`}`;
  const lift = (n: Node): void => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (n: Node): void => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  const stack: { node: Node; state: State }[] = [];
  let state: State = initial;
  let entry = head.next;
  while (head.next !== undefined) {
    if (entry === undefined) return false;
    if (entry.isCall) {
      const next = step(state, ops[entry.op]!);
      let advanced = false;
      if (next !== undefined) {
        bits[entry.op >> 5]! |= 1 << (entry.op & 31);
        const k = key(next);
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          bits[entry.op >> 5]! &= ~(1 << (entry.op & 31));
        }
      }
      if (!advanced) entry = entry.next;
    } else {
      // a return whose call is not linearized yet: backtrack
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      bits[top.node.op >> 5]! &= ~(1 << (top.node.op & 31));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return true;
}

/** Checks a whole key-value history, key by key. */
export function checkKv(history: readonly Operation[]): CheckResult {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    let l = byKey.get(op.input.key);
    if (l === undefined) byKey.set(op.input.key, (l = []));
    l.push(op);
  }
  for (const [k, ops] of byKey) {
    if (!checkRegister(ops)) return { ok: false, keys: byKey.size, operations: history.length, badKey: k };
  }
  return { ok: true, keys: byKey.size, operations: history.length };
}
