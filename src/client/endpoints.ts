/**
 * Which member to talk to. Calls stick to one endpoint (so keep-alive connections are reused and
 * reads see a single member's order of events) until it fails; a failed endpoint is avoided for a
 * short while and the next one in the list takes over. Pure bookkeeping: no I/O here.
 */
import { ClientError } from './errors.ts';

export interface Endpoint {
  /** Normalized base URL without a trailing slash, e.g. "http://127.0.0.1:2379". */
  readonly url: string;
  /** The same host and port as a WebSocket base URL. */
  readonly wsUrl: string;
}

/** Parse and check endpoint URLs: http or https, no path beyond "/", no duplicates. */
export function parseEndpoints(list: unknown): Endpoint[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new ClientError('ERR_INVALID_OPTION', 'boltkv: connect() needs endpoints: a non-empty array of URLs');
  }
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const raw of list) {
    if (typeof raw !== 'string')
      throw new ClientError('ERR_INVALID_OPTION', `boltkv: endpoint ${String(raw)} is not a string`);
    let u: URL;
    try {
      u = new URL(raw.includes('://') ? raw : `http://${raw}`);
    } catch {
      throw new ClientError('ERR_INVALID_OPTION', `boltkv: endpoint "${raw}" is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ClientError('ERR_INVALID_OPTION', `boltkv: endpoint "${raw}" must be http:// or https://`);
    }
    if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '') {
      throw new ClientError('ERR_INVALID_OPTION', `boltkv: endpoint "${raw}" must not have a path, query or fragment`);
    }
    const url = `${u.protocol}//${u.host}`;
    if (seen.has(url)) continue;
    seen.add(url);
    out.push({ url, wsUrl: `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}` });
  }
  return out;
}

export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  readonly #downUntil: number[];
  readonly #cooldownMs: number;
  readonly #now: () => number;
  #current = 0;

  constructor(endpoints: readonly Endpoint[], opts: { cooldownMs?: number; now?: () => number } = {}) {
    this.endpoints = endpoints;
    this.#downUntil = endpoints.map(() => 0);
    this.#cooldownMs = opts.cooldownMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Every endpoint once, in the order to try them: the current one first unless it failed
   * recently, then the rest in list order, recently failed ones last.
   */
  order(): Endpoint[] {
    const now = this.#now();
    const n = this.endpoints.length;
    const up: Endpoint[] = [];
    const down: Endpoint[] = [];
    for (let i = 0; i < n; i++) {
      const j = (this.#current + i) % n;
      (this.#downUntil[j]! > now ? down : up).push(this.endpoints[j]!);
    }
    return [...up, ...down];
  }

  /** The endpoint answered: prefer it from now on. */
  succeeded(ep: Endpoint): void {
    const i = this.endpoints.indexOf(ep);
    if (i < 0) return;
    this.#downUntil[i] = 0;
    this.#current = i;
  }

  /** The endpoint failed: avoid it for a while and move on to the next one. */
  failed(ep: Endpoint): void {
    const i = this.endpoints.indexOf(ep);
    if (i < 0) return;
    this.#downUntil[i] = this.#now() + this.#cooldownMs;
    if (this.#current === i) this.#current = (i + 1) % this.endpoints.length;
  }
}
