// The task run by pool.ts's workers: counts the primes in [from, to). A task module default-exports
// one function (async or not); what it returns goes back to the caller, what it throws rejects.

/** One unit of work. */
export interface Range {
  from: number;
  to: number;
}

export default function countPrimes({ from, to }: Range): number {
  if (to < from) throw new RangeError(`empty range ${from}..${to}`);
  let count = 0;
  for (let n = Math.max(2, from); n < to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}
