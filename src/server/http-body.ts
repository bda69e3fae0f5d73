/**
 * Reading a request body with limits: at most `limit` bytes (the rest is never buffered), and an
 * idle timeout between chunks so a client trickling bytes (slowloris) cannot hold a connection.
 */
import type { IncomingMessage } from 'node:http';

export type BodyResult =
  | { ok: true; body: Buffer }
  | { ok: false; reason: 'too-large'; received: number }
  | { ok: false; reason: 'timeout' | 'aborted' };

export function readBody(req: IncomingMessage, limit: number, idleMs: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (r: BodyResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      if (!r.ok) req.pause();
      resolve(r);
    };
    let timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), idleMs);
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        finish({ ok: false, reason: 'too-large', received: size });
        return;
      }
      chunks.push(c);
      clearTimeout(timer);
      timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), idleMs);
    };
    const onEnd = (): void => finish({ ok: true, body: Buffer.concat(chunks, size) });
    const onAbort = (): void => finish({ ok: false, reason: 'aborted' });
    const onClose = (): void => {
      if (!req.complete) onAbort();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
