/**
 * etcd's JSON (grpc-gateway's jsonpb, as etcd 3.4 configures it) ↔ boltkv's request/response
 * objects, both directions, for the server (decode requests, encode responses) and the client
 * (encode requests, decode responses).
 *
 * Output follows jsonpb with OrigName: proto field names, int64/uint64 as decimal strings, 32-bit
 * ints as numbers, bytes as standard base64, enums by name, and zero values (0, false, "", empty
 * bytes/lists, the enum's first value) omitted. Input accepts proto or lowerCamel names (proto name
 * wins when both are given), enums by name or number, int64 as string or number, unknown fields
 * ignored; a wrong type is refused with the message Go's decoder gives, which etcd passes through.
 */
import { BoltkvError } from '../errors.ts';
import { decodeBase64Go, encodeBase64 } from './go-base64.ts';
import { type JsonNode, JsonSyntaxError, readFirstValue, readWhole } from './go-json.ts';
import { ENUMS, type FieldDef, MESSAGES, type MessageDef } from './messages.ts';

/** A request body etcd's gateway would refuse before it reaches the server: InvalidArgument. */
export class JsonDecodeError extends BoltkvError {
  declare readonly code: 'ERR_BAD_JSON';
  constructor(message: string) {
    super('ERR_BAD_JSON', message);
    this.name = 'JsonDecodeError';
  }
}

/** A value `encode` cannot express in etcd's JSON: a bug in the caller, never a client's doing. */
export class JsonEncodeError extends BoltkvError {
  declare readonly code: 'ERR_ENCODE';
  constructor(message: string) {
    super('ERR_ENCODE', message);
    this.name = 'JsonEncodeError';
  }
}

/** A decoded message: boltkv's lowerCamel property names. */
export type Decoded = Record<string, unknown>;

const INT_RANGES: Record<string, readonly [bigint, bigint, string]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n, 'int64'],
  id64: [-(2n ** 63n), 2n ** 63n - 1n, 'int64'],
  uint64: [0n, 2n ** 64n - 1n, 'uint64'],
  uid64: [0n, 2n ** 64n - 1n, 'uint64'],
  int32: [-(2n ** 31n), 2n ** 31n - 1n, 'int32'],
  uint32: [0n, 2n ** 32n - 1n, 'uint32'],
  uint8: [0n, 255n, 'uint8'],
};

function kindWord(n: JsonNode): string {
  switch (n.t) {
    case 'obj':
      return 'object';
    case 'arr':
      return 'array';
    case 'str':
      return 'string';
    case 'num':
      return 'number';
    case 'bool':
      return 'bool';
    case 'null':
      return 'null';
  }
}

function typeError(what: string, goType: string): JsonDecodeError {
  return new JsonDecodeError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

function parseInteger(raw: string, kind: string, goType: string): bigint {
  const [lo, hi] = INT_RANGES[kind] as readonly [bigint, bigint, string];
  if (!/^-?(0|[1-9][0-9]*)$/.test(raw)) throw typeError(`number ${raw}`, goType);
  const v = BigInt(raw);
  if (v < lo || v > hi) throw typeError(`number ${raw}`, goType);
  return v;
}

/** jsonpb: a quoted number loses its quotes (escapes untouched) and is read as JSON again. */
function numericNode(n: JsonNode): JsonNode {
  if (n.t !== 'str') return n;
  try {
    return readWhole(n.raw);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new JsonDecodeError(e.message);
    throw e;
  }
}

/** Go's encoding/json also fills a []byte from an array of numbers. */
function bytesFromArray(items: JsonNode[]): Uint8Array {
  const out = Buffer.alloc(items.length);
  items.forEach((item, i) => {
    if (item.t === 'null') return;
    if (item.t !== 'num') throw typeError(kindWord(item), 'uint8');
    out[i] = Number(parseInteger(item.raw, 'uint8', 'uint8'));
  });
  return out;
}

function decodeScalar(f: FieldDef, n: JsonNode): unknown {
  switch (f.kind) {
    case 'bytes':
      if (n.t === 'arr') return bytesFromArray(n.items);
      if (n.t !== 'str') throw typeError(kindWord(n), '[]uint8');
      try {
        return Buffer.from(decodeBase64Go(n.value));
      } catch (e) {
        throw new JsonDecodeError((e as Error).message);
      }
    case 'bool':
      if (n.t !== 'bool') throw typeError(kindWord(n), 'bool');
      return n.value;
    case 'string':
      if (n.t !== 'str') throw typeError(kindWord(n), 'string');
      return n.value;
    case 'enum': {
      const e = ENUMS[f.ref as string];
      if (e === undefined) throw new Error(`gateway: no enum ${f.ref}`);
      if (n.t === 'str') {
        const i = e.names.indexOf(n.raw);
        if (i < 0) throw new JsonDecodeError(`unknown value ${JSON.stringify(n.raw)} for enum ${e.goName}`);
        return e.names[i];
      }
      if (n.t !== 'num') throw typeError(kindWord(n), e.goName);
      const v = Number(parseInteger(n.raw, 'int32', e.goName));
      // An unknown number is kept as a number, as Go keeps it; the layer below decides.
      return e.names[v] ?? v;
    }
    default: {
      const [, , goType] = INT_RANGES[f.kind] as readonly [bigint, bigint, string];
      const m = numericNode(n);
      if (m.t === 'null') return undefined;
      if (m.t !== 'num') throw typeError(kindWord(m), goType);
      const v = parseInteger(m.raw, f.kind, goType);
      if (f.kind === 'id64' || f.kind === 'uid64') return v;
      // Revisions and counts: numbers; beyond 2^53 a bigint keeps the value exact.
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
}

function decodeValue(f: FieldDef, n: JsonNode): unknown {
  if (f.kind === 'message') return decodeNode(MESSAGES[f.ref as string] as MessageDef, n);
  return decodeScalar(f, n);
}

function decodeNode(def: MessageDef, n: JsonNode): Decoded {
  if (n.t === 'null') return {};
  if (n.t !== 'obj') throw typeError(kindWord(n), 'map[string]json.RawMessage');
  const out: Decoded = {};
  for (const f of def.fields) {
    let v = n.fields.get(f.proto);
    if (v === undefined && f.json !== f.proto) v = n.fields.get(f.json);
    if (v === undefined || v.t === 'null') continue;
    if (f.repeated) {
      if (v.t !== 'arr') throw typeError(kindWord(v), '[]json.RawMessage');
      const items: unknown[] = [];
      for (const item of v.items) {
        const d = item.t === 'null' ? zeroOf(f) : decodeValue(f, item);
        items.push(d === undefined ? zeroOf(f) : d);
      }
      out[f.json] = items;
    } else {
      const d = decodeValue(f, v);
      if (d !== undefined) out[f.json] = d;
    }
  }
  return out;
}

function zeroOf(f: FieldDef): unknown {
  switch (f.kind) {
    case 'bytes':
      return Buffer.alloc(0);
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'enum':
      return ENUMS[f.ref as string]?.names[0];
    case 'message':
      return {};
    case 'id64':
    case 'uid64':
      return 0n;
    default:
      return 0;
  }
}

/** Decodes a parsed JSON value as message `name` (e.g. 'RangeRequest'). Throws JsonDecodeError. */
export function decodeNodeAs(name: string, node: JsonNode): Decoded {
  const def = MESSAGES[name];
  if (def === undefined) throw new Error(`gateway: no message ${name}`);
  try {
    return decodeNode(def, node);
  } catch (e) {
    if (e instanceof RangeError) throw new JsonDecodeError('exceeded max depth');
    throw e;
  }
}

/** The first JSON value of a body or frame (undefined when empty), with Go's syntax error texts. */
export function firstJsonValue(body: Uint8Array | string): JsonNode | undefined {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  try {
    return readFirstValue(bytes);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new JsonDecodeError(e.message);
    throw e;
  }
}

/**
 * Decodes a request or response body as etcd's gateway would: the first JSON value of `body` (bytes
 * after it ignored, an empty body is an empty message). Throws JsonDecodeError with Go's message.
 */
export function decodeMessage(name: string, body: Uint8Array | string): Decoded {
  const node = firstJsonValue(body);
  return node === undefined ? {} : decodeNodeAs(name, node);
}

// ---- encoding

function int64Text(f: FieldDef, v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) return BigInt(v).toString();
  throw new JsonEncodeError(`gateway: field ${f.proto} needs an integer, got ${typeof v}`);
}

function encodeScalar(f: FieldDef, v: unknown): unknown {
  switch (f.kind) {
    case 'bytes': {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      if (!(b instanceof Uint8Array)) throw new JsonEncodeError(`gateway: field ${f.proto} needs bytes`);
      return b.length === 0 ? undefined : encodeBase64(b);
    }
    case 'bool':
      return v === true ? true : undefined;
    case 'string':
      if (typeof v !== 'string') throw new JsonEncodeError(`gateway: field ${f.proto} needs a string`);
      return v.length === 0 ? undefined : v;
    case 'enum': {
      const e = ENUMS[f.ref as string];
      if (e === undefined) throw new Error(`gateway: no enum ${f.ref}`);
      const i = typeof v === 'number' ? v : e.names.indexOf(v as string);
      if (!Number.isInteger(i) || i < 0)
        throw new JsonEncodeError(`gateway: field ${f.proto}: unknown ${e.goName} ${String(v)}`);
      if (i === 0) return undefined;
      return e.names[i] ?? i;
    }
    case 'int32':
    case 'uint32': {
      const n = typeof v === 'bigint' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n))
        throw new JsonEncodeError(`gateway: field ${f.proto} needs an integer`);
      return n === 0 ? undefined : n;
    }
    default: {
      const s = int64Text(f, v);
      return s === '0' ? undefined : s;
    }
  }
}

function encodeValue(f: FieldDef, v: unknown): unknown {
  if (f.kind === 'message') return encodeObject(MESSAGES[f.ref as string] as MessageDef, v);
  return encodeScalar(f, v);
}

function encodeObject(def: MessageDef, obj: unknown): Record<string, unknown> {
  if (obj === null || typeof obj !== 'object') throw new JsonEncodeError(`gateway: ${def.goName} needs an object`);
  const src = obj as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of def.fields) {
    const v = src[f.json];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v)) throw new JsonEncodeError(`gateway: field ${f.proto} needs an array`);
      if (v.length === 0) continue;
      // Inside a list nothing is omitted: a zero element still takes its place.
      out[f.proto] = v.map((item: unknown) => encodeValue(f, item) ?? zeroJson(f));
      continue;
    }
    const e = encodeValue(f, v);
    if (e !== undefined) out[f.proto] = e;
  }
  return out;
}

function zeroJson(f: FieldDef): unknown {
  switch (f.kind) {
    case 'bytes':
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'enum':
      return ENUMS[f.ref as string]?.names[0];
    case 'int32':
    case 'uint32':
      return 0;
    case 'message':
      return {};
    default:
      return '0';
  }
}

/** boltkv object → etcd's JSON object (not yet a string) for message `name`. */
export function toEtcdJson(name: string, obj: unknown): Record<string, unknown> {
  const def = MESSAGES[name];
  if (def === undefined) throw new Error(`gateway: no message ${name}`);
  return encodeObject(def, obj);
}

/** boltkv object → the JSON text etcd's gateway would send (or expect) for message `name`. */
export function encodeMessage(name: string, obj: unknown): string {
  return JSON.stringify(toEtcdJson(name, obj));
}
