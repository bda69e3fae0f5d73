export { BoltError, Panic } from './errors.ts';
export type { BoltErrorCode } from './errors.ts';
export type { FileIO, FileSystem, OpenFileOptions } from './file.ts';
export { NodeFile, nodeFileSystem } from './node-file.ts';
