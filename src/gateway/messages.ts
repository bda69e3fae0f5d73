/**
 * The etcd 3.4 protobuf messages the gateway speaks, as field tables: proto name, kind, and for
 * enums and nested messages which one. Field order is the .proto declaration order, which is the
 * order Go's jsonpb writes fields and checks them on input (so the first bad field reported is
 * etcd's). boltkv's objects use each field's protobuf JSON name (lowerCamel: `create_revision` →
 * `createRevision`, `ID` stays `ID`), which is also what the input side accepts besides the proto name.
 */

export type FieldKind =
  | 'bytes'
  /** int64/uint64 read as a JS number (revisions, counts: exact far past any real store). */
  | 'int64'
  | 'uint64'
  /** int64/uint64 identifiers (lease, member, cluster ids) that exceed 2^53: bigint. */
  | 'id64'
  | 'uid64'
  | 'int32'
  | 'uint32'
  | 'bool'
  | 'string'
  | 'enum'
  | 'message';

export interface FieldDef {
  /** Name in the .proto file (what etcd writes). */
  proto: string;
  /** protobuf JSON name = property name on boltkv objects. */
  json: string;
  kind: FieldKind;
  repeated: boolean;
  /** kind 'enum': its EnumDef; kind 'message': its MessageDef name. */
  ref?: string;
}

export interface MessageDef {
  /** Go type name, for error messages. */
  goName: string;
  fields: FieldDef[];
}

export interface EnumDef {
  goName: string;
  /** Names by number; index = number. */
  names: readonly string[];
}

function jsonName(proto: string): string {
  return proto.replace(/_([a-z0-9])/gi, (_m, c: string) => c.toUpperCase());
}

/** `'key:bytes'`, `'kvs:*KeyValue'` (repeated message), `'sort_order:SortOrder'` (enum), `'filters:*FilterType'`. */
function msg(goName: string, spec: string): MessageDef {
  const fields: FieldDef[] = [];
  for (const part of spec.split(/\s+/).filter((s) => s.length > 0)) {
    const [proto, typeSpec] = part.split(':') as [string, string];
    const repeated = typeSpec.startsWith('*');
    const t = repeated ? typeSpec.slice(1) : typeSpec;
    const scalar = ['bytes', 'int64', 'uint64', 'id64', 'uid64', 'int32', 'uint32', 'bool', 'string'].includes(t);
    const kind: FieldKind = scalar ? (t as FieldKind) : t in ENUMS ? 'enum' : 'message';
    fields.push({ proto, json: jsonName(proto), kind, repeated, ...(scalar ? {} : { ref: t }) });
  }
  return { goName, fields };
}

export const ENUMS: Readonly<Record<string, EnumDef>> = {
  SortOrder: { goName: 'etcdserverpb.RangeRequest_SortOrder', names: ['NONE', 'ASCEND', 'DESCEND'] },
  SortTarget: { goName: 'etcdserverpb.RangeRequest_SortTarget', names: ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] },
  CompareResult: { goName: 'etcdserverpb.Compare_CompareResult', names: ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] },
  CompareTarget: {
    goName: 'etcdserverpb.Compare_CompareTarget',
    names: ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'],
  },
  FilterType: { goName: 'etcdserverpb.WatchCreateRequest_FilterType', names: ['NOPUT', 'NODELETE'] },
  EventType: { goName: 'mvccpb.Event_EventType', names: ['PUT', 'DELETE'] },
  AlarmAction: { goName: 'etcdserverpb.AlarmRequest_AlarmAction', names: ['GET', 'ACTIVATE', 'DEACTIVATE'] },
  AlarmType: { goName: 'etcdserverpb.AlarmType', names: ['NONE', 'NOSPACE', 'CORRUPT'] },
};

const E = 'etcdserverpb.';

export const MESSAGES: Readonly<Record<string, MessageDef>> = {
  ResponseHeader: msg(`${E}ResponseHeader`, 'cluster_id:uid64 member_id:uid64 revision:int64 raft_term:uint64'),
  KeyValue: msg(
    'mvccpb.KeyValue',
    'key:bytes create_revision:int64 mod_revision:int64 version:int64 value:bytes lease:id64',
  ),
  Event: msg('mvccpb.Event', 'type:EventType kv:KeyValue prev_kv:KeyValue'),

  RangeRequest: msg(
    `${E}RangeRequest`,
    `key:bytes range_end:bytes limit:int64 revision:int64 sort_order:SortOrder
    sort_target:SortTarget serializable:bool keys_only:bool count_only:bool min_mod_revision:int64
    max_mod_revision:int64 min_create_revision:int64 max_create_revision:int64`,
  ),
  RangeResponse: msg(`${E}RangeResponse`, 'header:ResponseHeader kvs:*KeyValue more:bool count:int64'),
  PutRequest: msg(
    `${E}PutRequest`,
    'key:bytes value:bytes lease:id64 prev_kv:bool ignore_value:bool ignore_lease:bool',
  ),
  PutResponse: msg(`${E}PutResponse`, 'header:ResponseHeader prev_kv:KeyValue'),
  DeleteRangeRequest: msg(`${E}DeleteRangeRequest`, 'key:bytes range_end:bytes prev_kv:bool'),
  DeleteRangeResponse: msg(`${E}DeleteRangeResponse`, 'header:ResponseHeader deleted:int64 prev_kvs:*KeyValue'),
  RequestOp: msg(
    `${E}RequestOp`,
    'request_range:RangeRequest request_put:PutRequest request_delete_range:DeleteRangeRequest request_txn:TxnRequest',
  ),
  ResponseOp: msg(
    `${E}ResponseOp`,
    'response_range:RangeResponse response_put:PutResponse response_delete_range:DeleteRangeResponse response_txn:TxnResponse',
  ),
  Compare: msg(
    `${E}Compare`,
    `result:CompareResult target:CompareTarget key:bytes version:int64 create_revision:int64
    mod_revision:int64 value:bytes lease:id64 range_end:bytes`,
  ),
  TxnRequest: msg(`${E}TxnRequest`, 'compare:*Compare success:*RequestOp failure:*RequestOp'),
  TxnResponse: msg(`${E}TxnResponse`, 'header:ResponseHeader succeeded:bool responses:*ResponseOp'),
  CompactionRequest: msg(`${E}CompactionRequest`, 'revision:int64 physical:bool'),
  CompactionResponse: msg(`${E}CompactionResponse`, 'header:ResponseHeader'),

  LeaseGrantRequest: msg(`${E}LeaseGrantRequest`, 'TTL:int64 ID:id64'),
  LeaseGrantResponse: msg(`${E}LeaseGrantResponse`, 'header:ResponseHeader ID:id64 TTL:int64 error:string'),
  LeaseRevokeRequest: msg(`${E}LeaseRevokeRequest`, 'ID:id64'),
  LeaseRevokeResponse: msg(`${E}LeaseRevokeResponse`, 'header:ResponseHeader'),
  LeaseKeepAliveRequest: msg(`${E}LeaseKeepAliveRequest`, 'ID:id64'),
  LeaseKeepAliveResponse: msg(`${E}LeaseKeepAliveResponse`, 'header:ResponseHeader ID:id64 TTL:int64'),
  LeaseTimeToLiveRequest: msg(`${E}LeaseTimeToLiveRequest`, 'ID:id64 keys:bool'),
  LeaseTimeToLiveResponse: msg(
    `${E}LeaseTimeToLiveResponse`,
    'header:ResponseHeader ID:id64 TTL:int64 grantedTTL:int64 keys:*bytes',
  ),
  LeaseLeasesRequest: msg(`${E}LeaseLeasesRequest`, ''),
  LeaseStatus: msg(`${E}LeaseStatus`, 'ID:id64'),
  LeaseLeasesResponse: msg(`${E}LeaseLeasesResponse`, 'header:ResponseHeader leases:*LeaseStatus'),

  WatchRequest: msg(
    `${E}WatchRequest`,
    'create_request:WatchCreateRequest cancel_request:WatchCancelRequest progress_request:WatchProgressRequest',
  ),
  WatchCreateRequest: msg(
    `${E}WatchCreateRequest`,
    `key:bytes range_end:bytes start_revision:int64 progress_notify:bool
    filters:*FilterType prev_kv:bool watch_id:int64 fragment:bool`,
  ),
  WatchCancelRequest: msg(`${E}WatchCancelRequest`, 'watch_id:int64'),
  WatchProgressRequest: msg(`${E}WatchProgressRequest`, ''),
  WatchResponse: msg(
    `${E}WatchResponse`,
    `header:ResponseHeader watch_id:int64 created:bool canceled:bool
    compact_revision:int64 cancel_reason:string fragment:bool events:*Event`,
  ),

  StatusRequest: msg(`${E}StatusRequest`, ''),
  StatusResponse: msg(
    `${E}StatusResponse`,
    `header:ResponseHeader version:string dbSize:int64 leader:uid64 errors:*string
    raftIndex:uint64 raftTerm:uint64 raftAppliedIndex:uint64 dbSizeInUse:int64 isLearner:bool`,
  ),
  HashRequest: msg(`${E}HashRequest`, ''),
  HashResponse: msg(`${E}HashResponse`, 'header:ResponseHeader hash:uint32'),
  HashKVRequest: msg(`${E}HashKVRequest`, 'revision:int64'),
  HashKVResponse: msg(`${E}HashKVResponse`, 'header:ResponseHeader hash:uint32 compact_revision:int64'),
  AlarmRequest: msg(`${E}AlarmRequest`, 'action:AlarmAction memberID:uid64 alarm:AlarmType'),
  AlarmMember: msg(`${E}AlarmMember`, 'memberID:uid64 alarm:AlarmType'),
  AlarmResponse: msg(`${E}AlarmResponse`, 'header:ResponseHeader alarms:*AlarmMember'),
  DefragmentRequest: msg(`${E}DefragmentRequest`, ''),
  DefragmentResponse: msg(`${E}DefragmentResponse`, 'header:ResponseHeader'),
  SnapshotRequest: msg(`${E}SnapshotRequest`, ''),
  SnapshotResponse: msg(`${E}SnapshotResponse`, 'header:ResponseHeader remaining_bytes:uint64 blob:bytes'),
  MemberListRequest: msg(`${E}MemberListRequest`, ''),
  Member: msg(`${E}Member`, 'ID:uid64 name:string peerURLs:*string clientURLs:*string isLearner:bool'),
  MemberListResponse: msg(`${E}MemberListResponse`, 'header:ResponseHeader members:*Member'),
  MemberAddRequest: msg(`${E}MemberAddRequest`, 'peerURLs:*string isLearner:bool'),
  MemberAddResponse: msg(`${E}MemberAddResponse`, 'header:ResponseHeader member:Member members:*Member'),
  MemberRemoveRequest: msg(`${E}MemberRemoveRequest`, 'ID:uid64'),
  MemberRemoveResponse: msg(`${E}MemberRemoveResponse`, 'header:ResponseHeader members:*Member'),
  MemberUpdateRequest: msg(`${E}MemberUpdateRequest`, 'ID:uid64 peerURLs:*string'),
  MemberUpdateResponse: msg(`${E}MemberUpdateResponse`, 'header:ResponseHeader members:*Member'),
  MemberPromoteRequest: msg(`${E}MemberPromoteRequest`, 'ID:uid64'),
  MemberPromoteResponse: msg(`${E}MemberPromoteResponse`, 'header:ResponseHeader members:*Member'),
  MoveLeaderRequest: msg(`${E}MoveLeaderRequest`, 'targetID:uid64'),
  MoveLeaderResponse: msg(`${E}MoveLeaderResponse`, 'header:ResponseHeader'),
};

export type MessageName = keyof typeof MESSAGES & string;

export function messageDef(name: string): MessageDef {
  const m = MESSAGES[name];
  if (m === undefined) throw new Error(`gateway: no message ${name}`);
  return m;
}
