/**
 * Whether a txn request only reads (etcd's isTxnReadonly). A read-only txn is served beside the
 * write path: no alarm refuses it (the single store) and a replicated member serves it after the
 * ReadIndex barrier instead of through the log (replication/txn-kind.ts).
 */

/** A branch's ops: none when absent; undefined (malformed) when not an array. */
function opsOf(v: unknown): unknown[] | undefined {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : undefined;
}

/**
 * etcd's isTxnReadonly: every op of both branches only ranges (nested txns included). A malformed
 * request counts as a write, so the write path rejects it with the usual error.
 */
export function txnIsReadOnly(t: unknown): boolean {
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
    return o.requestTxn !== undefined && txnIsReadOnly(o.requestTxn);
  });
}
