export { BoltkvError, isBoltkvError } from './errors.ts';
export * from './bolt/index.ts';
export {
  createFreelist,
  HashmapFreelist,
  ArrayFreelist,
  type Freelist,
  type FreelistKind,
} from './bolt/freelist/index.ts';
export * from './api/index.ts';
export {
  WatchHub,
  WatchError,
  type WatchErrorCode,
  type WatchFilter,
  type WatchHubOptions,
  type WatchKey,
  type WatchRequest,
  type WatchResponse,
  type WatchResponseHeader,
  type WatchStream,
  type Watcher,
} from './watch/index.ts';
export * as raft from './raft/index.ts';
export type { KV, StatusResponse, Int64Like } from './api/kv.ts';
export { serve, runServe, type ServeOptions, type EtcdGatewayServer } from './server/index.ts';
export {
  connect,
  Client,
  ClientError,
  KeptLease,
  type ConnectOptions,
  type ClientErrorCode,
  type Member,
  type MemberListResponse,
} from './client/index.ts';
