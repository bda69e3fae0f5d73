/**
 * The engine's only door to the disk. The pager does all its I/O through this interface so tests
 * can swap in a file that drops unsynced writes, tears writes or fails any call.
 */
export interface FileIO {
  /** Read into buf from position; returns bytes read (short only at end of file). */
  read(buf: Uint8Array, position: number): number;
  /** Write all of buf at position. */
  write(buf: Uint8Array, position: number): void;
  /** Write the buffers back to back starting at position. */
  writev(bufs: readonly Uint8Array[], position: number): void;
  /**
   * writev off the event loop (the thread pool), for async commits; settles once all of it is
   * written. The buffers must not change until then. Optional: without it, async commits write
   * with writev.
   */
  writevAsync?(bufs: readonly Uint8Array[], position: number): Promise<void>;
  /** fdatasync: everything written before is durable when this returns. */
  sync(): void;
  /** The same, without blocking the event loop. */
  syncAsync(): Promise<void>;
  size(): number;
  /** Set the file length (grow or shrink). */
  truncate(size: number): void;
  /** One non-blocking attempt at an advisory lock; false when another holder has it. */
  tryLock(exclusive: boolean): boolean;
  unlock(): void;
  close(): void;
}

export interface OpenFileOptions {
  readOnly: boolean;
  mode: number;
}

/** Opens the files a DB lives in. `nodeFileSystem` is the real one. */
export interface FileSystem {
  /** Open an existing file. The engine never relies on this creating or truncating anything. */
  open(path: string, options: OpenFileOptions): FileIO;
  exists(path: string): boolean;
  /** Atomically replace `to` with `from`, durably (online defragmentation needs it). */
  rename?(from: string, to: string): void;
  /** Delete a file if it exists (a defragmentation's leftover). */
  remove?(path: string): void;
  /**
   * Create `path` holding exactly `data`, durably, only if nothing is there yet: the file appears
   * whole or not at all, and an existing file is never touched. False when `path` already existed.
   * This is what makes two processes creating the same database at once safe.
   */
  create(path: string, data: Uint8Array, mode: number): boolean;
  /** Whether `file` (opened from `path`) is still the file at `path`, not one removed or replaced since. */
  isCurrent(path: string, file: FileIO): boolean;
}
