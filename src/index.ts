export * from './bolt/index.ts';
