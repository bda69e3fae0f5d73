/**
 * POSTs JSON to etcd's gateway with failover. A call is tried on the endpoints in the pool's order;
 * it moves on to the next endpoint when that cannot change the outcome: always when the request
 * never left (connection refused, reset before the body was written), and also after it left when
 * the call is safe to repeat (reads, keepalives). A write whose connection breaks after it was sent
 * fails with ERR_CONNECTION_LOST, since only the server knows whether it was applied. Every call
 * ends by its deadline: ERR_TIMEOUT, never a hang.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { BoltkvError } from '../errors.ts';
import type { Endpoint, EndpointPool } from './endpoints.ts';
import { ClientError } from './errors.ts';
import { errorFromEtcd, isUnavailable, parseEtcdErrorBody } from './etcd-errors.ts';

export interface CallOptions {
  /** 'idempotent': safe to send again (reads, keepalive); 'once': retried only when it never left. */
  retry: 'idempotent' | 'once';
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface TransportOptions {
  timeoutMs: number;
  maxResponseBytes: number;
}

type Attempt =
  | { kind: 'ok'; body: Record<string, unknown> }
  /** etcd answered an error that another member would answer the same way. */
  | { kind: 'final'; error: BoltkvError }
  /** Failed without the request reaching the server. */
  | { kind: 'unsent'; error: ClientError }
  /** Failed after the request may have reached the server. */
  | { kind: 'sent'; error: ClientError };

export class HttpTransport {
  readonly #pool: EndpointPool;
  readonly #opts: TransportOptions;
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  readonly #https = new HttpsAgent({ keepAlive: true, maxSockets: 64 });
  readonly #inflight = new Set<ClientRequest>();
  #closed = false;

  constructor(pool: EndpointPool, opts: TransportOptions) {
    this.#pool = pool;
    this.#opts = opts;
  }

  /** POST `body` (already JSON) to `path`; the parsed JSON object of a 200 answer. */
  async post(path: string, body: string, opts: CallOptions): Promise<Record<string, unknown>> {
    if (this.#closed) throw new ClientError('ERR_CLOSED', 'boltkv: the client is closed');
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    let last: ClientError | undefined;
    // Two rounds: an endpoint that was down a moment ago (a restart) gets a second chance.
    for (let round = 0; round < 2; round++) {
      for (const ep of this.#pool.order()) {
        if (opts.signal?.aborted === true) throw aborted(opts.signal);
        const left = deadline - Date.now();
        if (left <= 0) break;
        const r = await this.#attempt(ep, path, body, left, opts.signal);
        if (r.kind === 'ok') {
          this.#pool.succeeded(ep);
          return r.body;
        }
        if (r.kind === 'final') {
          this.#pool.succeeded(ep);
          throw r.error;
        }
        this.#pool.failed(ep);
        if (r.error.code === 'ERR_TIMEOUT' || r.error.code === 'ERR_ABORTED' || r.error.code === 'ERR_CLOSED') throw r.error;
        if (r.kind === 'sent' && opts.retry === 'once') throw r.error;
        last = r.error;
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
    if (Date.now() >= deadline) {
      throw new ClientError('ERR_TIMEOUT', `boltkv: ${path} did not complete within ${timeoutMs} ms`, { cause: last });
    }
    throw new ClientError('ERR_UNAVAILABLE', `boltkv: no endpoint answered ${path}: ${last?.message ?? 'no endpoints'}`, { cause: last });
  }

  #attempt(ep: Endpoint, path: string, body: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      const https = ep.url.startsWith('https:');
      const payload = Buffer.from(body, 'utf8');
      let written = false;
      let done = false;
      let req: ClientRequest | undefined;
      const finish = (a: Attempt): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (req !== undefined) {
          this.#inflight.delete(req);
          if (a.kind !== 'ok' && a.kind !== 'final') req.destroy();
        }
        resolve(a);
      };
      const timer = setTimeout(() => {
        finish({ kind: 'sent', error: new ClientError('ERR_TIMEOUT', `boltkv: ${ep.url}${path} did not answer within ${timeoutMs} ms`, { endpoint: ep.url }) });
      }, timeoutMs);
      const onAbort = (): void => finish({ kind: 'sent', error: aborted(signal) });
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        req = (https ? httpsRequest : httpRequest)(`${ep.url}${path}`, {
          method: 'POST',
          agent: https ? this.#https : this.#http,
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
        });
      } catch (e) {
        finish({ kind: 'unsent', error: new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url}: ${errMessage(e)}`, { endpoint: ep.url, cause: e }) });
        return;
      }
      this.#inflight.add(req);
      req.on('error', (e) => {
        const lost = written && !isRefusal(e);
        finish({
          kind: lost ? 'sent' : 'unsent',
          error: new ClientError(lost ? 'ERR_CONNECTION_LOST' : 'ERR_UNAVAILABLE', `boltkv: ${ep.url}${path}: ${errMessage(e)}`, { endpoint: ep.url, cause: e }),
        });
      });
      req.on('response', (res) => this.#read(ep, path, res, finish));
      req.end(payload, () => {
        written = true;
      });
    });
  }

  #read(ep: Endpoint, path: string, res: IncomingMessage, finish: (a: Attempt) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const status = res.statusCode ?? 0;
    const bad = (why: string): Attempt => ({
      kind: 'sent',
      error: new ClientError('ERR_BAD_RESPONSE', `boltkv: ${ep.url}${path} answered ${why}`, { endpoint: ep.url, httpStatus: status }),
    });
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.#opts.maxResponseBytes) {
        finish(bad(`more than maxResponseBytes (${this.#opts.maxResponseBytes})`));
        return;
      }
      chunks.push(c);
    });
    res.on('aborted', () => finish(bad('a truncated body')));
    res.on('error', () => finish(bad('a truncated body')));
    res.on('end', () => {
      if (!res.complete) {
        finish(bad('a truncated body'));
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        finish(bad(`HTTP ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 80))}`));
        return;
      }
      if (status === 200) {
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          finish(bad('a JSON value that is not an object'));
          return;
        }
        const obj = parsed as Record<string, unknown>;
        const streamed = obj.result ?? (obj.error !== undefined ? undefined : obj);
        if (obj.error !== undefined) {
          const e = parseEtcdErrorBody(obj);
          if (e === undefined) finish(bad('an error of unknown shape'));
          else finish(isUnavailable(e) ? { kind: 'sent', error: errorFromEtcd(e, status, ep.url) as ClientError } : { kind: 'final', error: errorFromEtcd(e, status, ep.url) });
          return;
        }
        if (streamed === null || typeof streamed !== 'object') {
          finish(bad('a result that is not an object'));
          return;
        }
        finish({ kind: 'ok', body: streamed as Record<string, unknown> });
        return;
      }
      const e = parseEtcdErrorBody(parsed);
      if (e === undefined) {
        finish(bad(`HTTP ${status} without an etcd error body`));
        return;
      }
      const err = errorFromEtcd(e, status, ep.url);
      // "unavailable" is the member's problem (no leader, learner, shutting down): another may serve it.
      if (isUnavailable(e) && err instanceof ClientError) finish({ kind: 'sent', error: err });
      else finish({ kind: 'final', error: err });
    });
  }

  /** Abort in-flight calls and drop pooled connections. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#inflight) r.destroy(new ClientError('ERR_CLOSED', 'boltkv: the client is closed'));
    this.#inflight.clear();
    this.#http.destroy();
    this.#https.destroy();
  }
}

function aborted(signal: AbortSignal | undefined): ClientError {
  return new ClientError('ERR_ABORTED', 'boltkv: the call was aborted', { cause: signal?.reason });
}

function isRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
