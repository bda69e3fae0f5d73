/**
 * Clients and faults for the simulated cluster. Clients issue puts, linearizable gets (as ranges
 * or as read-only txns) and compare-and-sets on a few keys through random members and record
 * every operation with its call and return on one global logical clock (so real-time order is
 * exact). An operation whose outcome is unknown (timeout, member died) is recorded as returning at
 * +Infinity.
 */
import { isBoltkvError } from '../../../src/errors.ts';
import type { Member } from '../../../src/replication/member.ts';
import type { KvInput, KvOutput, Operation } from '../lin/checker.ts';
import type { SimCluster } from './cluster.ts';

const dec = (b: Uint8Array | undefined): string | null => (b === undefined ? null : Buffer.from(b).toString());

/** Errors that prove a request was never proposed, so it certainly had no effect. */
function certainlyNotApplied(err: unknown): boolean {
  return (
    isBoltkvError(err, 'ERR_NO_LEADER') ||
    isBoltkvError(err, 'ERR_LEARNER_NOT_SUPPORTED') ||
    isBoltkvError(err, 'ERR_NOT_LEADER')
  );
}

export class Workload {
  readonly history: Operation[] = [];
  private clock = 0;
  private seqValue = 0;
  acked = 0;
  unknown = 0;
  failedReads = 0;
  stopped = false;
  private outstanding = 0;

  constructor(
    readonly c: SimCluster,
    readonly keys: string[],
    readonly clients: number,
    readonly clientTimeoutMs = 1500,
  ) {}

  start(): void {
    for (let k = 0; k < this.clients; k++) this.c.at(this.c.rng.int(1, 20), () => this.next(k));
  }

  get idle(): boolean {
    return this.outstanding === 0;
  }

  private pickMember(): Member | undefined {
    const ms = this.c.members();
    return ms.length === 0 ? undefined : this.c.rng.pick(ms);
  }

  private next(client: number): void {
    if (this.stopped) return;
    const m = this.pickMember();
    if (m === undefined) {
      this.c.at(20, () => this.next(client));
      return;
    }
    const key = this.c.rng.pick(this.keys);
    const r = this.c.rng.next();
    let input: KvInput;
    if (r < 0.5) input = { kind: 'put', key, value: `v${++this.seqValue}` };
    else if (r < 0.85) input = { kind: 'get', key };
    else
      input = {
        kind: 'cas',
        key,
        expect: this.c.rng.bool(0.3)
          ? null
          : `v${this.c.rng.int(Math.max(1, this.seqValue - 5), Math.max(1, this.seqValue))}`,
        value: `v${++this.seqValue}`,
      };
    this.issue(client, m, input).then(() => this.c.at(this.c.rng.int(1, 30), () => this.next(client)));
  }

  /** Runs one operation and records it; resolves when the client has its answer or gives up. */
  issue(client: number, m: Member, input: KvInput): Promise<void> {
    const call = ++this.clock;
    this.outstanding++;
    let done = false;
    return new Promise<void>((resolve) => {
      const finish = (output: KvOutput | undefined, ret: number): void => {
        if (done) return;
        done = true;
        this.outstanding--;
        if (output !== undefined) this.history.push({ client, input, output, call, ret });
        resolve();
      };
      this.c.at(this.clientTimeoutMs, () => {
        if (done) return;
        if (input.kind === 'get') this.failedReads++;
        else this.unknown++;
        finish(input.kind === 'get' ? undefined : { kind: 'unknown' }, Infinity);
      });
      let p: Promise<KvOutput>;
      try {
        if (input.kind === 'put') p = m.put({ key: input.key, value: input.value }).then(() => ({ kind: 'put' }));
        else if (input.kind === 'get' && this.c.rng.bool(0.5))
          p = m.range({ key: input.key }).then((r) => ({ kind: 'get', value: dec(r.kvs[0]?.value) }));
        else if (input.kind === 'get') {
          // the same read as a read-only txn (served through the read barrier, not the log)
          const read = [{ requestRange: { key: input.key } }];
          const cmp = [{ key: input.key, target: 'VERSION' as const, result: 'GREATER' as const, version: 0 }];
          p = m.txn({ compare: cmp, success: read, failure: read }).then((r) => {
            const op = r.responses[0];
            if (op === undefined || !('responseRange' in op)) throw new Error('read-only txn: no range response');
            return { kind: 'get', value: dec(op.responseRange.kvs[0]?.value) };
          });
        } else if (input.kind === 'delete') p = m.deleteRange({ key: input.key }).then(() => ({ kind: 'delete' }));
        else {
          const compare =
            input.expect === null
              ? [{ key: input.key, target: 'VERSION' as const, result: 'EQUAL' as const, version: 0 }]
              : [{ key: input.key, target: 'VALUE' as const, result: 'EQUAL' as const, value: input.expect }];
          p = m
            .txn({ compare, success: [{ requestPut: { key: input.key, value: input.value } }] })
            .then((r) => ({ kind: 'cas', ok: r.succeeded }));
        }
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (out) => {
          if (input.kind !== 'get') this.acked++;
          finish(out, ++this.clock);
        },
        (err: unknown) => {
          if (input.kind === 'get') {
            this.failedReads++;
            finish(undefined, 0);
          } else if (certainlyNotApplied(err)) finish(undefined, 0);
          else {
            this.unknown++;
            finish({ kind: 'unknown' }, Infinity);
          }
        },
      );
    });
  }
}
