/**
 * How a replicated member serves a txn (etcd's isTxnReadonly / isTxnSerializable): one that only
 * ranges is a read, served after the ReadIndex barrier instead of through the log; one whose every
 * op is a serializable range is served locally at once. Anything else is proposed. A malformed
 * request counts as a write, so the log's apply rejects it with the usual error.
 */
import { txnIsReadOnly } from '../api/txn-readonly.ts';
import type { TxnRequest } from '../mvcc/requests.ts';

export type TxnKind = 'write' | 'linearizable' | 'serializable';

function serializable(t: TxnRequest): boolean {
  return [...(t.success ?? []), ...(t.failure ?? [])].every(
    (op) => 'requestRange' in op && op.requestRange !== undefined && op.requestRange.serializable === true,
  );
}

export function txnKind(req: TxnRequest): TxnKind {
  if (!txnIsReadOnly(req)) return 'write';
  return serializable(req) ? 'serializable' : 'linearizable';
}
