/**
 * etcd's Maintenance.Snapshot over the JSON gateway: one POST whose answer is a stream of lines,
 * `{"result":{"blob":…,"remaining_bytes":…}}`, the image in pieces and then one more piece holding
 * the image's SHA-256. The bytes are passed on as they arrive (memory stays at one line), the digest
 * is checked at the end, and a stream that stops early, stalls, or carries an etcd error fails with a
 * typed error rather than ending as if complete.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { BoltkvError } from '../errors.ts';
import { parseErrorBody } from '../gateway/index.ts';
import type { Endpoint, EndpointPool } from './endpoints.ts';
import { ClientError } from './errors.ts';
import { errorFromEtcd } from './etcd-errors.ts';
import { decodeSnapshotFrame } from './wire.ts';

export interface SnapshotStreamOptions {
  /** No byte for this long (connecting included) fails the stream (ms). */
  idleTimeoutMs: number;
  /** Longest line accepted (bytes). */
  maxLineBytes: number;
  signal?: AbortSignal;
}

const DIGEST_BYTES = 32;

/** A byte stream of the snapshot from the first endpoint that answers. */
export function snapshotStream(pool: EndpointPool, opts: SnapshotStreamOptions): Readable {
  return Readable.from(frames(pool, opts), { objectMode: false });
}

async function* frames(pool: EndpointPool, opts: SnapshotStreamOptions): AsyncGenerator<Buffer, void, undefined> {
  let last: BoltkvError | undefined;
  for (const ep of pool.order()) {
    const opened = await open(ep, opts);
    if ('error' in opened) {
      if (opened.final) throw opened.error;
      pool.failed(ep);
      last = opened.error;
      continue;
    }
    pool.succeeded(ep);
    yield* read(ep, opened.req, opened.res, opts);
    return;
  }
  throw last ?? new ClientError('ERR_UNAVAILABLE', 'boltkv: no endpoint answered /v3/maintenance/snapshot');
}

type Opened = { req: ClientRequest; res: IncomingMessage } | { error: BoltkvError; final: boolean };

/** POST the request; a refused connection is not final (the next endpoint is tried), an etcd error is. */
function open(ep: Endpoint, opts: SnapshotStreamOptions): Promise<Opened> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: Opened): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(o);
    };
    const onAbort = (): void => {
      req.destroy();
      settle({
        error: new ClientError('ERR_ABORTED', 'boltkv: the snapshot was aborted', { cause: opts.signal?.reason }),
        final: true,
      });
    };
    const path = '/v3/maintenance/snapshot';
    const req = (ep.url.startsWith('https:') ? httpsRequest : httpRequest)(`${ep.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': 2 },
    });
    req.setTimeout(opts.idleTimeoutMs, () => {
      req.destroy();
      settle({
        error: new ClientError(
          'ERR_TIMEOUT',
          `boltkv: ${ep.url}${path} did not answer within ${opts.idleTimeoutMs} ms`,
          { endpoint: ep.url },
        ),
        final: true,
      });
    });
    req.on('error', (e) =>
      settle({
        error: new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url}${path}: ${e.message}`, {
          endpoint: ep.url,
          cause: e,
        }),
        final: false,
      }),
    );
    if (opts.signal?.aborted === true) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      if (res.statusCode === 200) return settle({ req, res });
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= opts.maxLineBytes) chunks.push(c);
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const s = parseErrorBody(text);
        settle({
          error:
            s !== undefined
              ? errorFromEtcd(s, res.statusCode ?? 0, ep.url)
              : new ClientError(
                  'ERR_BAD_RESPONSE',
                  `boltkv: ${ep.url}${path} answered HTTP ${res.statusCode} without an etcd error body`,
                  { endpoint: ep.url, httpStatus: res.statusCode },
                ),
          final: true,
        });
      });
    });
    req.end('{}');
  });
}

async function* read(
  ep: Endpoint,
  req: ClientRequest,
  res: IncomingMessage,
  opts: SnapshotStreamOptions,
): AsyncGenerator<Buffer, void, undefined> {
  let failure: BoltkvError | undefined;
  const fail = (e: BoltkvError): void => {
    failure ??= e;
    req.destroy();
  };
  const bad = (why: string): ClientError =>
    new ClientError('ERR_BAD_RESPONSE', `boltkv: ${ep.url} snapshot stream ${why}`, { endpoint: ep.url });
  req.setTimeout(opts.idleTimeoutMs, () =>
    fail(
      new ClientError('ERR_TIMEOUT', `boltkv: ${ep.url} snapshot stream stalled for ${opts.idleTimeoutMs} ms`, {
        endpoint: ep.url,
      }),
    ),
  );
  const onAbort = (): void =>
    fail(new ClientError('ERR_ABORTED', 'boltkv: the snapshot was aborted', { cause: opts.signal?.reason }));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const sha = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let imageLeft: number | undefined; // image bytes still to come, once the first frame said
  let digest: Buffer | undefined;
  const frame = (line: Buffer): Buffer | undefined => {
    if (line.length === 0) return undefined;
    const f = decodeSnapshotFrame(line.toString('utf8'));
    const blob = Buffer.from(f.blob.buffer, f.blob.byteOffset, f.blob.length);
    if (digest !== undefined) throw bad('went on after the digest');
    if (imageLeft === 0) {
      if (blob.length !== DIGEST_BYTES) throw bad(`ended with a ${blob.length}-byte digest`);
      digest = blob;
      if (!sha.digest().equals(blob)) throw bad('does not match its SHA-256');
      return blob;
    }
    if (imageLeft !== undefined && f.remainingBytes !== imageLeft - blob.length)
      throw bad('counts its remaining bytes wrong');
    imageLeft = f.remainingBytes;
    sha.update(blob);
    return blob;
  };
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        const line =
          pendingBytes === 0 ? chunk.subarray(start, nl) : Buffer.concat([...pending, chunk.subarray(start, nl)]);
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        const out = frame(line);
        if (out !== undefined) yield out;
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > opts.maxLineBytes) throw bad(`has a line longer than ${opts.maxLineBytes} bytes`);
      }
    }
    if (failure !== undefined) throw failure;
    if (pendingBytes > 0) {
      const out = frame(Buffer.concat(pending));
      if (out !== undefined) yield out;
    }
    if (digest === undefined) throw bad('ended before the digest');
  } catch (e) {
    throw failure ?? (e instanceof BoltkvError ? e : bad(`broke off: ${e instanceof Error ? e.message : String(e)}`));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    req.destroy();
  }
}
