/** etcdctl's watch: events on a key or range printed as they come, until the signal aborts it. */
import { bool, num } from './args.ts';
import type { Command } from './command.ts';
import { usage } from './errors.ts';
import { etcdJson } from './etcd-json.ts';
import { kvLines } from './etcd-print.ts';
import { rangeEnd } from './etcd-syntax.ts';
import { ETCD_GLOBAL_FLAGS, withKV } from './etcd-target.ts';
import { writeOutOf } from './output.ts';

export const watch: Command = {
  name: 'watch',
  summary: 'watches events on a key or prefix until interrupted (etcdctl; with --data-dir or --endpoints)',
  usage: 'boltkv watch --data-dir DIR | --endpoints URLS [options] <key> [range_end]',
  flags: {
    ...ETCD_GLOBAL_FLAGS,
    prefix: { kind: 'bool', help: 'watch on a prefix if prefix is set' },
    rev: { kind: 'int', default: 0, help: 'revision to start watching' },
    'prev-kv': { kind: 'bool', help: 'get the previous key-value pair before the event happens' },
    'progress-notify': { kind: 'bool', help: 'get periodic watch progress notification from server' },
  },
  async run(p, io) {
    const [key, end] = p.args;
    if (key === undefined || p.args.length > 2) throw usage('watch needs a key and an optional range_end');
    const json = writeOutOf(p.flags['write-out']) === 'json';
    await withKV(p, async (kv) => {
      const w = kv.watch({
        key,
        rangeEnd: rangeEnd(key, end, bool(p.flags.prefix), false),
        startRevision: num(p.flags.rev),
        prevKv: bool(p.flags['prev-kv']),
        progressNotify: bool(p.flags['progress-notify']),
        signal: io.signal,
      });
      for await (const resp of w) {
        if (json) {
          io.out(`${etcdJson(resp)}\n`);
          continue;
        }
        if (resp.canceled || resp.compactRevision)
          io.err(
            `watch was canceled (${resp.cancelReason ?? `etcdserver: mvcc: required revision has been compacted`})\n`,
          );
        if (resp.events.length === 0 && !resp.canceled && !resp.created)
          io.out(`progress notify: ${resp.header.revision}\n`);
        const lines: string[] = [];
        for (const e of resp.events) {
          lines.push(e.type);
          if (e.prevKv) lines.push(...kvLines([e.prevKv], bool(p.flags.hex)));
          lines.push(...kvLines([e.kv], bool(p.flags.hex)));
        }
        if (lines.length > 0) io.out(`${lines.join('\n')}\n`);
      }
    });
  },
};
