/**
 * Polls `fn` until it returns something other than undefined, for tests that wait on other processes,
 * sockets or timers. Errors thrown while polling are kept and reported if time runs out.
 */
export async function eventually<T>(
  what: string | (() => string),
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const name = typeof what === 'string' ? what : what();
      throw new Error(`timed out waiting for ${name}: ${String(last ?? 'no answer')}`, { cause: last });
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
