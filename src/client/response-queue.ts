/**
 * The buffer between a watch connection and the code iterating it. It never refuses: instead it
 * tells its producer to pause reading the socket once `highWater` responses wait (TCP then pushes
 * back on the server, which bounds its own buffers), and to resume when half are drained. So a slow
 * consumer costs bounded memory here.
 */
export class ResponseQueue<T> {
  #items: T[] = [];
  #head = 0;
  #waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  #ended = false;
  #error: unknown = undefined;
  #paused = false;
  readonly #highWater: number;
  readonly #onPressure: (paused: boolean) => void;

  constructor(highWater: number, onPressure: (paused: boolean) => void) {
    this.#highWater = highWater;
    this.#onPressure = onPressure;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  get paused(): boolean {
    return this.#paused;
  }

  push(item: T): void {
    if (this.#ended) return;
    const w = this.#waiters.shift();
    if (w !== undefined) {
      w.resolve({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    if (!this.#paused && this.length >= this.#highWater) {
      this.#paused = true;
      this.#onPressure(true);
    }
  }

  /** No more items; what is buffered is still delivered, then iteration ends (or throws `error`). */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (this.length === 0) this.#flushWaiters();
  }

  /** End now, dropping what is buffered. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.end();
    this.#flushWaiters();
  }

  #flushWaiters(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) {
      if (this.#error !== undefined) w.reject(this.#error);
      else w.resolve({ value: undefined, done: true });
    }
    // An error is thrown once; later calls just see the end.
    if (ws.length > 0) this.#error = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.length > 0) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (this.#paused && this.length <= this.#highWater >> 1) {
        this.#paused = false;
        this.#onPressure(false);
      }
      return Promise.resolve({ value: item, done: false });
    }
    if (this.#ended) {
      const err = this.#error;
      if (err !== undefined) {
        this.#error = undefined;
        return Promise.reject(err);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}
