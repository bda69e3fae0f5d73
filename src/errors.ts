/**
 * The one error family of boltkv. Every error a caller can provoke, in every layer, is a
 * `BoltkvError` with a stable `code`; each layer has its own subclass (`BoltError`, `MvccError`,
 * `WatchError`, `RaftError`) so `instanceof` still tells where it came from. A handle used after it
 * was closed answers `ERR_CLOSED` in every layer.
 *
 * `Panic` is shared: it means one of boltkv's own invariants broke, whichever layer noticed.
 */
export class BoltkvError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BoltkvError';
    this.code = code;
  }
}

/** Thrown only when one of boltkv's own invariants is broken: a bug, please report it. */
export class Panic extends BoltkvError {
  declare readonly code: 'ERR_PANIC';
  constructor(message: string) {
    super('ERR_PANIC', `boltkv invariant broken: ${message}`);
    this.name = 'Panic';
  }
}

export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Panic(message);
}

/** True when `err` is a boltkv error, optionally with the given code. */
export function isBoltkvError(err: unknown, code?: string): err is BoltkvError {
  return err instanceof BoltkvError && (code === undefined || err.code === code);
}
