/**
 * Modules loaded on first use instead of at import time. Every process that imports ipckit pays for
 * what it loads up front: a child spawned with a channel waits for it before its first message.
 * What only some programs need stays out of that: msgpackr (only messages beyond plain data reach
 * it), TLS, the v8 codec and zlib's crc32 (the FIFO 'frames' checksum).
 */
import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

/** A function that calls `make` on its first call and returns that same value on every call. */
export function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}

/**
 * A function that loads `specifier` with `require` on its first call and returns the same module on
 * every call. For a package with both builds this is its CommonJS build (msgpackr's `dist/node.cjs`).
 */
export function lazyModule<T>(specifier: string): () => T {
  return lazy(() => requireFromHere(specifier) as T);
}
