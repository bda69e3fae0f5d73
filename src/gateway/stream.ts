/**
 * Framing of etcd's streaming calls on the gateway (watch, lease keepalive): each response travels
 * as `{"result": Message}` (one per line over chunked HTTP, one per WebSocket message), and a
 * request body may hold several request objects back to back.
 */
import { type Decoded, decodeNodeAs, JsonDecodeError, toEtcdJson } from './codec.ts';
import { type JsonNode, JsonSyntaxError, readAllValues, readFirstValue } from './go-json.ts';

/** `{"result":…}` for one streamed response. */
export function encodeStreamResult(name: string, obj: unknown): string {
  return JSON.stringify({ result: toEtcdJson(name, obj) });
}

/**
 * Decodes one streamed frame: `{"result":…}` → the message, or `{"error":…}` → undefined with the
 * error left to parseErrorBody. Throws JsonDecodeError on anything else.
 */
export function decodeStreamResult(name: string, frame: Uint8Array | string): Decoded | undefined {
  const bytes = typeof frame === 'string' ? Buffer.from(frame, 'utf8') : frame;
  let node: JsonNode | undefined;
  try {
    node = readFirstValue(bytes);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new JsonDecodeError(e.message);
    throw e;
  }
  if (node === undefined || node.t !== 'obj') throw new JsonDecodeError('gateway: a stream frame must be a JSON object');
  const result = node.fields.get('result');
  if (result !== undefined) return decodeNodeAs(name, result);
  if (node.fields.has('error')) return undefined;
  throw new JsonDecodeError('gateway: a stream frame holds neither result nor error');
}

/**
 * Every request object in a streamed request body, decoded as message `name`. Throws
 * JsonDecodeError at the first bad one.
 */
export function decodeRequestStream(name: string, body: Uint8Array | string): Decoded[] {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let nodes: JsonNode[];
  try {
    nodes = readAllValues(bytes);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new JsonDecodeError(e.message);
    throw e;
  }
  return nodes.map((n) => decodeNodeAs(name, n));
}
