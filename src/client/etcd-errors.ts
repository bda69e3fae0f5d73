/**
 * etcd's error answers turned back into boltkv's errors (the gateway module owns the tables): a
 * message the in-process store also gives becomes the same `MvccError` code, so callers branch the
 * same way whichever `KV` they hold. "Unavailable" (no leader, learner, stopping) and "deadline
 * exceeded" are the member's state, not the request's: ClientError ERR_UNAVAILABLE / ERR_TIMEOUT,
 * and the former is worth another member. Anything else is a GatewayError ERR_REMOTE with etcd's
 * message and gRPC code.
 */
import type { BoltkvError } from '../errors.ts';
import { type EtcdStatus, GatewayError, GrpcCode, boltkvCodeOf, httpStatusFromGrpc } from '../gateway/index.ts';
import { MvccError, type MvccErrorCode } from '../mvcc/errors.ts';
import { ClientError } from './errors.ts';

export function isUnavailable(s: EtcdStatus): boolean {
  return s.grpcCode === GrpcCode.Unavailable;
}

/** The error to throw for an etcd error answer. */
export function errorFromEtcd(s: EtcdStatus, httpStatus: number, endpoint: string | undefined): BoltkvError {
  const extra = { endpoint, grpcCode: s.grpcCode, httpStatus };
  const where = endpoint === undefined ? '' : `${endpoint}: `;
  if (s.grpcCode === GrpcCode.Unavailable) return new ClientError('ERR_UNAVAILABLE', `${where}${s.message}`, extra);
  const code = boltkvCodeOf(s);
  if (code !== undefined) return new MvccError(code as MvccErrorCode, s.message);
  if (s.grpcCode === GrpcCode.DeadlineExceeded) return new ClientError('ERR_TIMEOUT', `${where}${s.message}`, extra);
  return new GatewayError(
    'ERR_REMOTE',
    s.message,
    s.grpcCode,
    httpStatus === 200 ? httpStatusFromGrpc(s.grpcCode) : httpStatus,
  );
}
