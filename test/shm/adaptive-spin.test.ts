import { describe, expect, it } from 'vitest';
import { AdaptiveSpin } from '../../src/shm/adaptive-spin.js';

describe('AdaptiveSpin', () => {
  it('opens a window at the first miss and, once parked, stays parked until what it waits for comes', () => {
    const spin = new AdaptiveSpin();
    expect(spin.polling(60_000)).toBe(true);
    spin.park();
    // A doorbell rung for another channel of the thread wakes the waiter with nothing for it.
    expect(spin.polling(60_000)).toBe(false);
    spin.park();
    expect(spin.polling(60_000)).toBe(false);
    spin.came();
    expect(spin.polling(60_000)).toBe(true);
  });

  it('closes the window once it has passed', () => {
    const spin = new AdaptiveSpin();
    expect(spin.polling(0)).toBe(false);
  });

  it('lets a wait that does not count go: the next miss opens a window again', () => {
    const spin = new AdaptiveSpin();
    spin.polling(60_000);
    spin.park();
    spin.forget();
    expect(spin.polling(60_000)).toBe(true);
  });
});
