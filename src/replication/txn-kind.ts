/**
 * How a replicated member serves a txn (etcd's isTxnReadonly / isTxnSerializable): one that only
 * ranges is a read, served after the ReadIndex barrier instead of through the log; one whose every
 * op is a serializable range is served locally at once. Anything else is proposed. A malformed
 * request counts as a write, so the log's apply rejects it with the usual error.
 */
import type { TxnRequest } from '../mvcc/requests.ts';

export type TxnKind = 'write' | 'linearizable' | 'serializable';

type Ops = unknown;

function opsOf(v: Ops): unknown[] | undefined {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : undefined;
}

function readOnly(t: unknown): boolean {
  if (t === null || typeof t !== 'object') return false;
  const { success, failure } = t as { success?: unknown; failure?: unknown };
  const ops = [opsOf(success), opsOf(failure)];
  if (ops[0] === undefined || ops[1] === undefined) return false;
  return [...ops[0], ...ops[1]].every((op) => {
    if (op === null || typeof op !== 'object') return false;
    const o = op as {
      requestRange?: unknown;
      requestTxn?: unknown;
      requestPut?: unknown;
      requestDeleteRange?: unknown;
    };
    if (o.requestPut !== undefined || o.requestDeleteRange !== undefined) return false;
    if (o.requestRange !== undefined) return o.requestTxn === undefined;
    return o.requestTxn !== undefined && readOnly(o.requestTxn);
  });
}

function serializable(t: TxnRequest): boolean {
  return [...(t.success ?? []), ...(t.failure ?? [])].every(
    (op) => 'requestRange' in op && op.requestRange !== undefined && op.requestRange.serializable === true,
  );
}

export function txnKind(req: TxnRequest): TxnKind {
  if (!readOnly(req)) return 'write';
  return serializable(req) ? 'serializable' : 'linearizable';
}
