/** The network client: a `KV` over etcd's JSON gateway (real etcd clusters, `boltkv serve`). */
export { connect, Client, type ConnectOptions } from './connect.ts';
export { ClientError, type ClientErrorCode } from './errors.ts';
export { KeptLease } from './lease-keeper.ts';
export type { Member, MemberListResponse, MemberAddResponse } from './wire.ts';
