// Locks mutex 'bench-lock', prints "held", and holds it until killed.
import { Mutex } from '../../src/index.js';

const guard = await Mutex.open('bench-lock').lock();
console.log('held');
setInterval(() => guard, 1 << 30);
