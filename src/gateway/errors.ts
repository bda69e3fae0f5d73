/**
 * Errors on etcd's gateway: gRPC status codes, the HTTP status grpc-gateway (v1, as etcd 3.4 ships
 * it) maps each to, the JSON error bodies, and the translation between boltkv's typed errors and
 * etcd's (code, message) pairs in both directions.
 */
import { BoltkvError } from '../errors.ts';

export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** grpc-gateway v1's HTTPStatusFromCode. */
export function httpStatusFromGrpc(code: number): number {
  switch (code) {
    case GrpcCode.OK:
      return 200;
    case GrpcCode.Canceled:
      return 408;
    case GrpcCode.Unknown:
      return 500;
    case GrpcCode.InvalidArgument:
      return 400;
    case GrpcCode.DeadlineExceeded:
      return 504;
    case GrpcCode.NotFound:
      return 404;
    case GrpcCode.AlreadyExists:
      return 409;
    case GrpcCode.PermissionDenied:
      return 403;
    case GrpcCode.Unauthenticated:
      return 401;
    case GrpcCode.ResourceExhausted:
      return 429;
    case GrpcCode.FailedPrecondition:
      return 412;
    case GrpcCode.Aborted:
      return 409;
    case GrpcCode.OutOfRange:
      return 400;
    case GrpcCode.Unimplemented:
      return 501;
    case GrpcCode.Internal:
      return 500;
    case GrpcCode.Unavailable:
      return 503;
    case GrpcCode.DataLoss:
      return 500;
    default:
      return 500;
  }
}

const HTTP_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** An etcd error as it travels: gRPC code and etcd's message. */
export interface EtcdStatus {
  grpcCode: number;
  message: string;
}

/** Body of a failed unary call: `{"error","message","code"}`. */
export function errorBody(s: EtcdStatus): string {
  return JSON.stringify({ error: s.message, message: s.message, code: s.grpcCode });
}

/** Body of a stream (watch, keepalive) that failed before it started. */
export function streamErrorBody(s: EtcdStatus): string {
  const http = httpStatusFromGrpc(s.grpcCode);
  return JSON.stringify({
    error: { grpc_code: s.grpcCode, http_code: http, message: s.message, http_status: HTTP_TEXT[http] ?? '' },
  });
}

/** etcd's message and gRPC code for each boltkv error code that has an etcd counterpart. */
const BY_BOLTKV_CODE: Readonly<Record<string, EtcdStatus>> = {
  ERR_COMPACTED: { grpcCode: 11, message: 'etcdserver: mvcc: required revision has been compacted' },
  ERR_FUTURE_REV: { grpcCode: 11, message: 'etcdserver: mvcc: required revision is a future revision' },
  ERR_EMPTY_KEY: { grpcCode: 3, message: 'etcdserver: key is not provided' },
  ERR_LEASE_NOT_FOUND: { grpcCode: 5, message: 'etcdserver: requested lease not found' },
  ERR_LEASE_EXISTS: { grpcCode: 9, message: 'etcdserver: lease already exists' },
  ERR_LEASE_TTL_TOO_LARGE: { grpcCode: 11, message: 'etcdserver: too large lease TTL' },
  ERR_DUPLICATE_KEY: { grpcCode: 3, message: 'etcdserver: duplicate key given in txn request' },
  ERR_TOO_MANY_OPS: { grpcCode: 3, message: 'etcdserver: too many operations in txn request' },
  ERR_KEY_NOT_FOUND: { grpcCode: 3, message: 'etcdserver: key not found' },
  ERR_VALUE_PROVIDED: { grpcCode: 3, message: 'etcdserver: value is provided' },
  ERR_LEASE_PROVIDED: { grpcCode: 3, message: 'etcdserver: lease is provided' },
  ERR_REQUEST_TOO_LARGE: { grpcCode: 3, message: 'etcdserver: request is too large' },
  ERR_NO_SPACE: { grpcCode: 8, message: 'etcdserver: mvcc: database space exceeded' },
  ERR_CORRUPT_CLUSTER: { grpcCode: 15, message: 'etcdserver: corrupt cluster' },
  ERR_CLOSED: { grpcCode: 14, message: 'etcdserver: server stopped' },
  ERR_STORE_FAILED: { grpcCode: 14, message: 'etcdserver: server stopped' },
};

/**
 * A replicated member's refusals (src/replication) with etcd's codes: unavailable (14) means "try
 * another member or later"; promotion and membership conflicts are failed preconditions. Served
 * only: a client keeps seeing them as ERR_UNAVAILABLE or ERR_REMOTE, not as store errors.
 */
const BY_REPLICATION_CODE: Readonly<Record<string, EtcdStatus>> = {
  ERR_TIMEOUT: { grpcCode: 14, message: 'etcdserver: request timed out' },
  ERR_NO_LEADER: { grpcCode: 14, message: 'etcdserver: no leader' },
  ERR_NOT_LEADER: { grpcCode: 14, message: 'etcdserver: not leader' },
  ERR_LEARNER_NOT_SUPPORTED: { grpcCode: 14, message: 'etcdserver: rpc not supported for learner' },
  ERR_LEARNER_NOT_READY: {
    grpcCode: 9,
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  ERR_MEMBER_NOT_LEARNER: { grpcCode: 9, message: 'etcdserver: can only promote a learner member' },
  ERR_MEMBER_NOT_FOUND: { grpcCode: 5, message: 'etcdserver: member not found' },
  ERR_MEMBER_EXISTS: { grpcCode: 9, message: 'etcdserver: ID exists' },
};

/** Messages whose code differs between the etcd and boltkv tables (etcd's own spelling). */
const BY_MESSAGE: ReadonlyMap<string, string> = new Map(
  Object.entries(BY_BOLTKV_CODE)
    .filter(([code]) => code !== 'ERR_STORE_FAILED')
    .map(([code, s]) => [s.message, code]),
);

/**
 * What a server answers for an error thrown while serving: etcd's (code, message) for boltkv's
 * etcd errors, InvalidArgument with the text for malformed input, Unknown for anything else (a bug,
 * never a silent success).
 */
export function etcdStatusOf(err: unknown): EtcdStatus {
  if (err instanceof BoltkvError) {
    if (err.code === 'ERR_MEMBER_EXISTS' && err.message.startsWith('etcdserver: Peer URLs'))
      return { grpcCode: GrpcCode.FailedPrecondition, message: 'etcdserver: Peer URLs already exists' };
    const known = BY_BOLTKV_CODE[err.code] ?? BY_REPLICATION_CODE[err.code];
    if (known !== undefined) return known;
    if (
      err.code === 'ERR_BAD_JSON' ||
      err.code === 'ERR_INVALID_ARGUMENT' ||
      err.code === 'ERR_INVALID_WATCH_REQUEST'
    ) {
      return { grpcCode: GrpcCode.InvalidArgument, message: err.message };
    }
    if (err.code === 'ERR_UNSUPPORTED') return { grpcCode: GrpcCode.Unimplemented, message: err.message };
    if (err instanceof GatewayError) return { grpcCode: err.grpcCode, message: err.message };
  }
  return { grpcCode: GrpcCode.Unknown, message: err instanceof Error ? err.message : String(err) };
}

export type GatewayErrorCode =
  /** etcd answered an error boltkv has no code for; `grpcCode` and `message` say what it was. */
  | 'ERR_REMOTE'
  /** The answer was not etcd's: not JSON, not the expected shape, cut short. */
  | 'ERR_BAD_RESPONSE';

/** An error carried over the gateway that is not one of boltkv's etcd errors. */
export class GatewayError extends BoltkvError {
  declare readonly code: GatewayErrorCode;
  readonly grpcCode: number;
  readonly httpStatus: number;
  constructor(
    code: GatewayErrorCode,
    message: string,
    grpcCode: number,
    httpStatus: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'GatewayError';
    this.grpcCode = grpcCode;
    this.httpStatus = httpStatus;
  }
}

/**
 * For a client: the boltkv error code an etcd (code, message) stands for, or undefined when boltkv
 * has none (wrap it in a GatewayError 'ERR_REMOTE'). Build the error with the owning layer's class
 * (e.g. `new MvccError(code)` gives etcd's message back).
 */
export function boltkvCodeOf(s: EtcdStatus): string | undefined {
  return BY_MESSAGE.get(s.message);
}

/**
 * Parses a failed call's body (`{"error","message","code"}`, or a stream's `{"error":{…}}`) into an
 * EtcdStatus. Returns undefined when the body is not an etcd error.
 */
export function parseErrorBody(body: string): EtcdStatus | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.code === 'number' && (typeof o.message === 'string' || typeof o.error === 'string')) {
    return { grpcCode: o.code, message: (typeof o.message === 'string' ? o.message : o.error) as string };
  }
  const inner = o.error;
  if (inner !== null && typeof inner === 'object') {
    const e = inner as Record<string, unknown>;
    if (typeof e.grpc_code === 'number' && typeof e.message === 'string')
      return { grpcCode: e.grpc_code, message: e.message };
  }
  return undefined;
}
