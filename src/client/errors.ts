import { BoltkvError } from '../errors.ts';

/**
 * Typed errors of the network client. Errors etcd itself answered for a request (compacted, lease
 * not found, …) come back as the same `MvccError` the in-process store throws, and ones boltkv has
 * no code for as the gateway's `GatewayError` ERR_REMOTE; a `ClientError` means the answer did not
 * come, came in a shape no etcd gives, or the member said it cannot serve now.
 */
export type ClientErrorCode =
  /** The call did not finish within its timeout (`timeoutMs` or the call's own). */
  | 'ERR_TIMEOUT'
  /** No endpoint could be reached, or every one refused the call as unavailable. */
  | 'ERR_UNAVAILABLE'
  /**
   * The request was sent but the connection broke before the answer: the server may or may not
   * have applied it. Only calls that are not safe to repeat fail this way; the others fail over.
   */
  | 'ERR_CONNECTION_LOST'
  /** The answer was not etcd's: not JSON, cut short, too large, or of the wrong shape. */
  | 'ERR_BAD_RESPONSE'
  /** The lease expired or was revoked while a lease helper was keeping it alive. */
  | 'ERR_LEASE_LOST'
  /** The call's AbortSignal fired. */
  | 'ERR_ABORTED'
  /** connect() or a call got an option it cannot use. */
  | 'ERR_INVALID_OPTION'
  /** The server has no such call (etcd 3.4's gateway offers no HashKV). */
  | 'ERR_UNSUPPORTED'
  /** The client (or the lease helper) was closed. */
  | 'ERR_CLOSED';

export class ClientError extends BoltkvError {
  declare readonly code: ClientErrorCode;
  /** The endpoint that gave (or failed to give) the answer, when one was involved. */
  readonly endpoint: string | undefined;
  /** When etcd's answer led to this error (unavailable, deadline): its gRPC code and HTTP status. */
  readonly grpcCode: number | undefined;
  readonly httpStatus: number | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    extra: { endpoint?: string; grpcCode?: number; httpStatus?: number; cause?: unknown } = {},
  ) {
    super(code, message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ClientError';
    this.endpoint = extra.endpoint;
    this.grpcCode = extra.grpcCode;
    this.httpStatus = extra.httpStatus;
  }
}
