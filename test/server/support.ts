/**
 * Test support for the gateway server: raw HTTP calls (no client library in between, so bytes on
 * the wire are what is compared), streaming watch bodies, WebSocket watch sessions, and the
 * normalisation that sets aside what legitimately differs between two servers (cluster and member
 * ids, raft term).
 */
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { openStore } from '../../src/api/index.ts';
import { serve, type EtcdGatewayServer, type ServeOptions } from '../../src/server/serve.ts';
import { createLogger } from '../../src/server/logger.ts';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One POST (or other method) with a raw body; resolves with status and body text. */
export function raw(
  base: string,
  path: string,
  body: string | Buffer,
  method = 'POST',
  timeoutMs = 10_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * POSTs a streaming request body (watch, keepalive) and collects the response lines for `forMs`,
 * or until `until` says enough; then closes the connection (how an HTTP client cancels).
 */
export function stream(
  base: string,
  path: string,
  body: string,
  opts: { forMs?: number; until?: (lines: string[]) => boolean } = {},
): Promise<{ status: number; lines: string[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false });
    let status = 0;
    let buf = '';
    const lines: string[] = [];
    let ended = false;
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (buf.length > 0) lines.push(buf);
      req.destroy();
      resolve({ status, lines, ended });
    };
    const timer = setTimeout(done, opts.forMs ?? 1500);
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i = buf.indexOf('\n');
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim().length > 0) lines.push(line);
          i = buf.indexOf('\n');
        }
        if (opts.until?.(lines)) done();
      });
      res.on('end', () => {
        ended = true;
        done();
      });
    });
    req.on('error', (e) => (settled ? undefined : reject(e)));
    req.end(body);
  });
}

/** A WebSocket watch session: send requests any time, read results as they come. */
export class WsSession {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  closed = false;
  #waiters: (() => void)[] = [];
  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d) => {
      this.messages.push(d.toString());
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  static open(base: string, path = '/v3/watch'): Promise<WsSession> {
    const ws = new WebSocket(base.replace(/^http/, 'ws') + path);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsSession(ws)));
      ws.once('error', reject);
    });
  }
  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }
  /** Waits until at least `n` messages arrived (or the socket closed, or the timeout). */
  async waitFor(n: number, timeoutMs = 3000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.messages.slice();
  }
  close(): void {
    this.ws.close();
  }
}

/** Removes what two servers may differ in: the top header's ids and term (recursively in results). */
export function normalize(body: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return body;
  }
  const strip = (o: unknown): unknown => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return o;
    const r = { ...(o as Record<string, unknown>) };
    if (r.header !== null && typeof r.header === 'object') {
      const h = { ...(r.header as Record<string, unknown>) };
      delete h.cluster_id;
      delete h.member_id;
      delete h.raft_term;
      r.header = h;
    }
    if (r.result !== undefined) r.result = strip(r.result);
    return r;
  };
  return strip(v);
}

/** An in-memory store behind a server on a free loopback port; logs kept for assertions. */
export async function startBoltkv(
  opts: Partial<ServeOptions> = {},
): Promise<{ url: string; server: EtcdGatewayServer; logs: string[]; close(): Promise<void> }> {
  const kv = opts.kv ?? (await openStore({ inMemory: true, leaseCheckIntervalMs: 0 }));
  const logs: string[] = [];
  const server = await serve({
    listen: 'http://127.0.0.1:0',
    logger: createLogger('debug', (l) => logs.push(l)),
    closeKv: true,
    ...opts,
    kv,
  });
  const url = server.urls[0] as string;
  return { url, server, logs, close: () => server.close() };
}

export const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
