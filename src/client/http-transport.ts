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
import { type EtcdStatus, parseErrorBody } from '../gateway/index.ts';
import { errorFromEtcd, isUnavailable } from './etcd-errors.ts';

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

type Attempt<T> =
  | { kind: 'ok'; value: T }
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

  /**
   * POST `body` (already JSON) to `path` and decode a 200 answer with `decode`. A decode failure
   * (ERR_BAD_RESPONSE) counts as that endpoint's failure, so a read then tries another.
   */
  async post<T>(path: string, body: string, decode: (text: string) => T, opts: CallOptions): Promise<T> {
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
        const r = await this.#attempt(ep, path, body, decode, left, opts.signal);
        if (r.kind === 'ok') {
          this.#pool.succeeded(ep);
          return r.value;
        }
        if (r.kind === 'final') {
          this.#pool.succeeded(ep);
          throw r.error;
        }
        this.#pool.failed(ep);
        if (r.error.code === 'ERR_TIMEOUT' || r.error.code === 'ERR_ABORTED' || r.error.code === 'ERR_CLOSED')
          throw r.error;
        if (r.kind === 'sent' && opts.retry === 'once') throw r.error;
        last = r.error;
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
    if (Date.now() >= deadline) {
      throw new ClientError('ERR_TIMEOUT', `boltkv: ${path} did not complete within ${timeoutMs} ms`, { cause: last });
    }
    // Every endpoint failed: the last failure says best what is wrong (refused, garbage, …).
    throw last ?? new ClientError('ERR_UNAVAILABLE', `boltkv: no endpoint answered ${path}`);
  }

  #attempt<T>(
    ep: Endpoint,
    path: string,
    body: string,
    decode: (text: string) => T,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Attempt<T>> {
    return new Promise<Attempt<T>>((resolve) => {
      const https = ep.url.startsWith('https:');
      const payload = Buffer.from(body, 'utf8');
      let written = false;
      let done = false;
      let req: ClientRequest | undefined;
      const finish = (a: Attempt<T>): void => {
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
        finish({
          kind: 'sent',
          error: new ClientError('ERR_TIMEOUT', `boltkv: ${ep.url}${path} did not answer within ${timeoutMs} ms`, {
            endpoint: ep.url,
          }),
        });
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
        finish({
          kind: 'unsent',
          error: new ClientError('ERR_UNAVAILABLE', `boltkv: ${ep.url}: ${errMessage(e)}`, {
            endpoint: ep.url,
            cause: e,
          }),
        });
        return;
      }
      this.#inflight.add(req);
      req.on('error', (e) => {
        const lost = written && !isRefusal(e);
        finish({
          kind: lost ? 'sent' : 'unsent',
          error: new ClientError(
            lost ? 'ERR_CONNECTION_LOST' : 'ERR_UNAVAILABLE',
            `boltkv: ${ep.url}${path}: ${errMessage(e)}`,
            { endpoint: ep.url, cause: e },
          ),
        });
      });
      req.on('response', (res) => this.#read(ep, path, res, decode, finish));
      req.end(payload, () => {
        written = true;
      });
    });
  }

  #read<T>(
    ep: Endpoint,
    path: string,
    res: IncomingMessage,
    decode: (text: string) => T,
    finish: (a: Attempt<T>) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const status = res.statusCode ?? 0;
    const bad = (why: string): Attempt<T> => ({
      kind: 'sent',
      error: new ClientError('ERR_BAD_RESPONSE', `boltkv: ${ep.url}${path} answered ${why}`, {
        endpoint: ep.url,
        httpStatus: status,
      }),
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
      if (status !== 200) {
        const s = parseErrorBody(text);
        finish(
          s === undefined
            ? bad(`HTTP ${status} without an etcd error body: ${JSON.stringify(text.slice(0, 80))}`)
            : etcdAttempt(s, status, ep),
        );
        return;
      }
      try {
        finish({ kind: 'ok', value: decode(text) });
      } catch (e) {
        if (e instanceof ClientError && (e.code === 'ERR_BAD_RESPONSE' || e.code === 'ERR_UNAVAILABLE')) {
          finish({
            kind: 'sent',
            error: new ClientError(e.code, `boltkv: ${ep.url}${path}: ${e.message}`, {
              endpoint: ep.url,
              httpStatus: status,
              cause: e,
            }),
          });
        } else {
          finish({ kind: 'final', error: e as BoltkvError });
        }
      }
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

/** "Unavailable" is the member's problem (no leader, learner, stopping): another member may serve the call. */
function etcdAttempt<T>(e: EtcdStatus, status: number, ep: Endpoint): Attempt<T> {
  const err = errorFromEtcd(e, status, ep.url);
  if (isUnavailable(e) && err instanceof ClientError) return { kind: 'sent', error: err };
  return { kind: 'final', error: err };
}

function aborted(signal: AbortSignal | undefined): ClientError {
  return new ClientError('ERR_ABORTED', 'boltkv: the call was aborted', { cause: signal?.reason });
}

function isRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN'
  );
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
