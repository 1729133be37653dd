/**
 * Waits bounded by a caller's AbortSignal: any number of them may share one signal. Node warns of
 * a listener leak past ten listeners on one signal, so ipckit keeps one per signal.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, Pipe } from '../../src/index.js';
import { rejectionOf, watchdog } from '../helpers.js';

describe('waits sharing one AbortSignal', () => {
  it('50 receives under one signal: one listener on it, no leak warning, all rejected by the abort', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const { reader, writer } = Pipe.create();
    const rx = reader.receiver<string>();
    const tx = writer.sender<string>();
    try {
      const controller = new AbortController();
      const waits = Array.from({ length: 50 }, () => rejectionOf(rx.receive({ signal: controller.signal })));
      expect(getEventListeners(controller.signal, 'abort').length).toBe(1);
      controller.abort();
      const errors = await watchdog(Promise.all(waits), 5000, 'the receives reject');
      expect(new Set(errors.map((err) => err.code))).toEqual(new Set([ErrorCodes.ABORTED]));
      // One signal reused wait after wait still has the one listener.
      const reused = new AbortController();
      for (let i = 0; i < 20; i++) {
        await tx.send(`m${i}`);
        expect(await rx.receive({ signal: reused.signal })).toBe(`m${i}`);
      }
      expect(getEventListeners(reused.signal, 'abort').length).toBe(1);
      // Let any warning reach the listener (they are emitted on the next tick).
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await tx.close();
      await rx.close();
    }
  });
});
