/**
 * The messages a channel had read ahead for `receive()` when its reader switched to views
 * (`receiveView()` of the pipe and shared-memory channels): they come first, in order. A view gets
 * one encoded again; `receive()` and `tryReceive()` get it as it was decoded, since encoding and
 * decoding it again would run the schema twice (a value it transformed need not pass it again).
 */
import type { MessageView } from './channel.js';
import { type MessageCodec, plainBytes } from './codec.js';
import type { IpcError } from './errors.js';
import { checkWaitOptions, type WaitOptions } from './wait.js';

type Item<T> = { message: T } | { error: IpcError };

function noop(): void {}

export class ReadAhead<T> {
  #items: Item<T>[] = [];

  /** Takes over what the channel had queued (ChannelBase.takeQueued()). */
  fill(items: Item<T>[]): void {
    this.#items = items;
  }

  /** Forgets them all (the channel closed). */
  clear(): void {
    this.#items = [];
  }

  /** The next one as `tryReceive()` returns it, throwing its error; undefined once none is left. */
  take(): { message: T } | undefined {
    const item = this.#items.shift();
    if (item && 'error' in item) throw item.error;
    return item;
  }

  /**
   * What `receive(opts)` returns while one is left: it, settled at once (nobody can be waiting
   * while any is left: a waiter found none). Undefined when none is left or the signal was
   * aborted, for the view path to answer.
   */
  receive(opts: WaitOptions | undefined): Promise<T> | undefined {
    if (this.#items.length === 0 || opts?.signal?.aborted) return undefined;
    try {
      checkWaitOptions(opts);
      return Promise.resolve(this.take()!.message);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The next one as a view: encoded again into bytes of its own, whose release() does nothing. */
  takeView(codec: MessageCodec<T>): MessageView | undefined {
    const item = this.take();
    return item && { bytes: plainBytes(codec.encode(item.message)), release: noop };
  }
}
