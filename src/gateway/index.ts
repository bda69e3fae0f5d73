/**
 * etcd 3.4's HTTP/JSON gateway conventions, shared by the server (`boltkv serve`) and the client
 * (`connect()`): the JSON codec for etcd's messages, stream framing, and gRPC/HTTP error mapping.
 */
export {
  decodeMessage,
  decodeNodeAs,
  encodeMessage,
  toEtcdJson,
  JsonDecodeError,
  JsonEncodeError,
  type Decoded,
} from './codec.ts';
export { decodeRequestStream, decodeStreamResult, encodeStreamResult } from './stream.ts';
export {
  boltkvCodeOf,
  errorBody,
  etcdStatusOf,
  GatewayError,
  GrpcCode,
  httpStatusFromGrpc,
  parseErrorBody,
  streamErrorBody,
  type EtcdStatus,
  type GatewayErrorCode,
} from './errors.ts';
export { MESSAGES, ENUMS, type MessageDef, type FieldDef, type EnumDef } from './messages.ts';
export { readFirstValue, readValues, type JsonNode } from './go-json.ts';
