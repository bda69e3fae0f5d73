/**
 * etcd's error answers turned back into boltkv's errors: a message the in-process store also
 * gives becomes the same `MvccError` code, so callers branch the same way whichever `KV` they hold.
 * Anything else keeps etcd's message and gRPC code in a `ClientError`.
 */
import { BoltkvError } from '../errors.ts';
import { ETCD_MESSAGES, MvccError, type MvccErrorCode } from '../mvcc/errors.ts';
import { ClientError } from './errors.ts';

/** gRPC status codes that matter here. */
export const GRPC_UNAVAILABLE = 14;
export const GRPC_DEADLINE_EXCEEDED = 4;

/** The parsed body etcd's gateway sends with an error status. */
export interface EtcdErrorBody {
  message: string;
  grpcCode: number;
}

/** Read `{"error","message","code"}` (plain calls) or `{"error":{"grpc_code","message",…}}` (streams). */
export function parseEtcdErrorBody(body: unknown): EtcdErrorBody | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.error === 'object' && b.error !== null) {
    const e = b.error as Record<string, unknown>;
    if (typeof e.message === 'string' && typeof e.grpc_code === 'number') return { message: e.message, grpcCode: e.grpc_code };
    return undefined;
  }
  const message = typeof b.message === 'string' ? b.message : typeof b.error === 'string' ? b.error : undefined;
  const code = typeof b.code === 'number' ? b.code : undefined;
  if (message === undefined || code === undefined) return undefined;
  return { message, grpcCode: code };
}

const BY_MESSAGE = new Map<string, MvccErrorCode>(
  Object.entries(ETCD_MESSAGES).map(([code, msg]) => [msg, code as MvccErrorCode]),
);

/** True when etcd says the member cannot serve right now (no leader, learner, stopping): another may. */
export function isUnavailable(e: EtcdErrorBody): boolean {
  return e.grpcCode === GRPC_UNAVAILABLE;
}

/** The error to throw for an etcd error answer. */
export function errorFromEtcd(e: EtcdErrorBody, httpStatus: number, endpoint: string): BoltkvError {
  const code = BY_MESSAGE.get(e.message) ?? byPrefix(e.message);
  if (code !== undefined) return new MvccError(code, e.message);
  if (e.grpcCode === GRPC_UNAVAILABLE) {
    return new ClientError('ERR_UNAVAILABLE', `${endpoint}: ${e.message}`, { endpoint, grpcCode: e.grpcCode, httpStatus });
  }
  if (e.grpcCode === GRPC_DEADLINE_EXCEEDED) {
    return new ClientError('ERR_TIMEOUT', `${endpoint}: ${e.message}`, { endpoint, grpcCode: e.grpcCode, httpStatus });
  }
  return new ClientError('ERR_ETCD', e.message, { endpoint, grpcCode: e.grpcCode, httpStatus });
}

/** etcd sometimes appends detail to a known message (e.g. "(more than 128)"). */
function byPrefix(message: string): MvccErrorCode | undefined {
  for (const [msg, code] of BY_MESSAGE) if (message.startsWith(`${msg} `) || message.startsWith(`${msg}:`)) return code;
  return undefined;
}
