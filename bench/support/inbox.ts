/**
 * Turns a transport's message events into `await receive()`, so the measuring loop reads every
 * transport the same way. A failure (the child exited) rejects the waiting and every later receive.
 */
export class Inbox {
  #messages: unknown[] = [];
  #head = 0;
  #waiter: { resolve(message: unknown): void; reject(err: Error): void } | undefined;
  #error: Error | undefined;

  push(message: unknown): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(message);
    } else {
      this.#messages.push(message);
    }
  }

  fail(err: Error): void {
    this.#error ??= err;
    this.#waiter?.reject(err);
    this.#waiter = undefined;
  }

  receive(): Promise<unknown> {
    if (this.#head < this.#messages.length) {
      const message = this.#messages[this.#head++];
      if (this.#head === this.#messages.length) {
        this.#messages = [];
        this.#head = 0;
      }
      return Promise.resolve(message);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#waiter) return Promise.reject(new Error('Inbox: one receive at a time'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }
}
