/**
 * Typed events for servers and clients. There is deliberately no 'error' event: failures reach
 * callers as rejected promises, and events only inform (connect, disconnect, refused, …), so an
 * application that listens to nothing never crashes on an unhandled 'error'.
 */
import { EventEmitter } from 'node:events';

/** Event name to listener arguments. */
export type EventMap = Record<string, unknown[]>;

/** A small typed event emitter used by composition. */
export class Events<M extends EventMap> {
  readonly #emitter = new EventEmitter();

  on<K extends keyof M & string>(event: K, listener: (...args: M[K]) => void): void {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
  }

  once<K extends keyof M & string>(event: K, listener: (...args: M[K]) => void): void {
    this.#emitter.once(event, listener as (...args: unknown[]) => void);
  }

  off<K extends keyof M & string>(event: K, listener: (...args: M[K]) => void): void {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
  }

  /**
   * Calls the listeners. One that throws does not break the caller's bookkeeping: its error is
   * rethrown on the next tick, where it is the application's uncaught exception, as in Node.
   */
  emit<K extends keyof M & string>(event: K, ...args: M[K]): void {
    if (this.#emitter.listenerCount(event) === 0) return;
    try {
      this.#emitter.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}
