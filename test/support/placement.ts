/** Room for any one sync primitive placed in a segment, rounded to placement's alignment (8). */
import { Barrier, Condition, Event, Mutex, RwLock, Semaphore } from '../../src/index.js';

export const PLACEMENT_STRIDE =
  Math.ceil(
    Math.max(
      Mutex.byteLength,
      Semaphore.byteLength,
      RwLock.byteLength,
      Condition.byteLength,
      Barrier.byteLength,
      Event.byteLength,
    ) / 8,
  ) * 8;
