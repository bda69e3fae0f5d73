/**
 * Framing of etcd's streaming calls on the gateway (watch, lease keepalive): each response travels
 * as `{"result": Message}` (one per line over chunked HTTP, one per WebSocket message), and a
 * request body may hold several request objects back to back.
 */
import { type Decoded, decodeNodeAs, firstJsonValue, JsonDecodeError, toEtcdJson } from './codec.ts';
import { readValues } from './go-json.ts';

/** `{"result":…}` for one streamed response. */
export function encodeStreamResult(name: string, obj: unknown): string {
  return JSON.stringify({ result: toEtcdJson(name, obj) });
}

/**
 * Decodes one streamed frame: `{"result":…}` → the message, or `{"error":…}` → undefined with the
 * error left to parseErrorBody. Throws JsonDecodeError on anything else.
 */
export function decodeStreamResult(name: string, frame: Uint8Array | string): Decoded | undefined {
  const node = firstJsonValue(frame);
  if (node === undefined || node.t !== 'obj')
    throw new JsonDecodeError('gateway: a stream frame must be a JSON object');
  const result = node.fields.get('result');
  if (result !== undefined) return decodeNodeAs(name, result);
  if (node.fields.has('error')) return undefined;
  throw new JsonDecodeError('gateway: a stream frame holds neither result nor error');
}

/**
 * The request objects of a streamed request body (watch, keepalive), decoded as message `name`, up
 * to the first bad one; `error` says what was wrong with it. etcd's gateway answers the good ones.
 */
export function decodeRequestStream(
  name: string,
  body: Uint8Array | string,
): { requests: Decoded[]; error?: JsonDecodeError } {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const { values, error } = readValues(bytes);
  const requests: Decoded[] = [];
  for (const n of values) {
    try {
      requests.push(decodeNodeAs(name, n));
    } catch (e) {
      if (e instanceof JsonDecodeError) return { requests, error: e };
      throw e;
    }
  }
  return error === undefined ? { requests } : { requests, error: new JsonDecodeError(error.message) };
}
