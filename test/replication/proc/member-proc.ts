/**
 * A member in its own process for the kill -9 tests: a ReplicatedNode plus a minimal JSON client
 * face on loopback (test-only; the real client face is `boltkv serve`): put, get, status, and
 * member add (as a learner) / promote. Configured through the
 * BOLTKV_MEMBER environment variable (JSON). SIGTERM closes it gracefully.
 */
import { createServer } from 'node:http';
import { isBoltkvError } from '../../../src/errors.ts';
import { ReplicatedNode, type NodeOptions } from '../../../src/replication/index.ts';

const cfg = JSON.parse(process.env.BOLTKV_MEMBER ?? '{}') as NodeOptions & { clientPort: number };
const node = await ReplicatedNode.start(cfg);
const m = node.member;
const dec = (b: Uint8Array | undefined): string | null => (b === undefined ? null : Buffer.from(b).toString());

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => {
    chunks.push(c);
    if (chunks.length > 64) req.destroy();
  });
  req.on('end', () => {
    void (async () => {
      let out: unknown;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { key?: string; value?: string; peerURL?: string; id?: number };
        if (req.url === '/put') {
          await m.put({ key: body.key!, value: body.value! });
          out = { ok: true };
        } else if (req.url === '/get') {
          const r = await m.range({ key: body.key! });
          out = { ok: true, value: dec(r.kvs[0]?.value) };
        } else if (req.url === '/status') {
          out = { ok: true, ...m.memberStatus(), consistentIndex: m.consistentIndex(), snapshotsReceived: node.transport.stats.snapshotsReceived };
        } else if (req.url === '/member/add') {
          const r = await m.memberAdd({ peerURLs: [body.peerURL!], isLearner: true });
          out = { ok: true, id: r.member.id };
        } else if (req.url === '/member/promote') {
          await m.memberPromote(body.id!);
          out = { ok: true };
        } else {
          out = { ok: false, code: 'ERR_NOT_FOUND' };
        }
      } catch (err) {
        out = { ok: false, code: isBoltkvError(err) ? err.code : 'ERR_UNKNOWN', message: String(err) };
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(out));
    })();
  });
});
server.listen(cfg.clientPort, '127.0.0.1', () => process.stdout.write('ready\n'));

process.on('SIGTERM', () => {
  server.close();
  void node.close().then(() => process.exit(0), () => process.exit(1));
});
// the tick timer is unref'd; the HTTP server keeps the process alive
