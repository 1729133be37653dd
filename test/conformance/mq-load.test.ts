/**
 * Load against every store in stores.ts: 2 producer and 2 consumer processes move 200 000
 * messages with mixed types and priorities. Without faults every message is handled exactly once;
 * with 50 consumers killed by SIGKILL at random moments, none is lost and each redelivery carries
 * a higher attempt count. Randomness is seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { watchdog } from '../helpers.js';
import { useQueueContext } from './context.js';
import { type Fixture, startFixture } from './harness.js';
import { stores } from './stores.js';

const PER_PRODUCER = 100_000;
const TOTAL = 2 * PER_PRODUCER;
const KILLS = 50;

/** mulberry32: a small seeded generator, so a failing run can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every delivery the consumers reported: body → attempts, in the order reported. */
class Deliveries {
  readonly byBody = new Map<string, number[]>();
  total = 0;
  #onProgress: (() => void)[] = [];

  watch(consumer: Fixture, onLine?: () => void): void {
    consumer.child.stdout!.setEncoding('utf8');
    let rest = '';
    consumer.child.stdout!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const space = line.indexOf(' ');
        if (!/^\d:/.test(line) || space < 0) continue;
        const body = line.slice(0, space);
        const attempts = Number(line.slice(space + 1));
        const seen = this.byBody.get(body);
        if (seen) seen.push(attempts);
        else this.byBody.set(body, [attempts]);
        this.total++;
        onLine?.();
      }
      for (const f of this.#onProgress) f();
    });
  }

  /** Resolves once every one of `count` bodies was delivered at least once. */
  allSeen(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.byBody.size >= count) resolve();
      };
      this.#onProgress.push(check);
      check();
    });
  }
}

function startProducers(queue: string, spec: string): Fixture[] {
  return ['0', '1'].map((p) => startFixture('mq-load-producer.ts', [queue, p, String(PER_PRODUCER)], spec));
}

for (const store of stores) {
  const skip = store.unavailable();
  describe.skipIf(skip !== undefined)(
    `MessageQueue under load: ${store.name}${skip ? ` (${skip})` : ''}`,
    () => {
      const ctx = useQueueContext(store);

      it('moves 200k messages through 2 producers and 2 consumers, each exactly once', {
        timeout: 180_000,
      }, async () => {
        const deliveries = new Deliveries();
        const consumers = [0, 1].map(() => startFixture('mq-load-consumer.mjs', [ctx.name], ctx.handle.spec));
        for (const c of consumers) deliveries.watch(c);
        await Promise.all(consumers.map((c) => c.waitFor('ready')));
        const producers = startProducers(ctx.name, ctx.handle.spec);
        for (const p of producers) expect((await p.exit(150_000)).code).toBe(0);
        await watchdog(deliveries.allSeen(TOTAL), 150_000, `all ${TOTAL} messages to be delivered`);
        for (const c of consumers) c.kill('SIGTERM');
        for (const c of consumers) expect((await c.exit()).code).toBe(0);

        expect(deliveries.byBody.size).toBe(TOTAL);
        const duplicates = [...deliveries.byBody.values()].filter((a) => a.length > 1).length;
        expect(duplicates).toBe(0);
        expect([...deliveries.byBody.values()].every((a) => a[0] === 1)).toBe(true);
        const q = await ctx.open();
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
        await q.close();
        if (ctx.handle.integrity) expect(await ctx.handle.integrity(ctx.name)).toBe('ok');
      });

      it('loses nothing when consumers are killed with SIGKILL 50 times during the load', {
        timeout: 180_000,
      }, async () => {
        const seed = Number(process.env.MQ_SEED ?? Date.now() % 1_000_000);
        console.log(`mq kill test seed: ${seed} (repeat with MQ_SEED=${seed})`);
        const rand = random(seed);
        const deliveries = new Deliveries();
        // A short lease so what a killed consumer held comes back quickly.
        const options = JSON.stringify({ visibilityTimeoutMs: 1000, maxAttempts: 1000 });
        const standby = () =>
          startFixture('mq-load-consumer.mjs', [ctx.name, options], ctx.handle.spec, { MQ_WAIT_GO: '1' });
        let kills = 0;
        const victims: Fixture[] = [];
        const slots = [0, 1].map(() => ({ current: standby(), next: standby(), seen: 0, limit: 0 }));
        const killed = new Promise<void>((resolveAll, rejectAll) => {
          const arm = (slot: (typeof slots)[number]) => {
            slot.seen = 0;
            // Each life ends after a random number of messages: mean ~2000, so 50 kills land well
            // inside the 200k messages.
            slot.limit = 200 + Math.floor(rand() * 3600);
            const life = slot.current;
            deliveries.watch(life, () => {
              // Lines a killed consumer printed before it died count for nothing in the next life.
              if (life !== slot.current) return;
              if (++slot.seen !== slot.limit || kills >= KILLS) return;
              kills++;
              const victim = life;
              victim.kill('SIGKILL');
              victims.push(victim);
              slot.current = slot.next;
              slot.next = standby();
              arm(slot);
              const next = slot.current;
              next.waitFor('standby').then(() => next.tell('go'), rejectAll);
              if (kills === KILLS) resolveAll();
            });
          };
          for (const slot of slots) arm(slot);
        });
        await Promise.all(slots.map((s) => s.current.waitFor('standby')));
        for (const s of slots) s.current.tell('go');
        const producers = startProducers(ctx.name, ctx.handle.spec);
        await watchdog(killed, 150_000, `${KILLS} consumer kills`);
        expect(deliveries.byBody.size).toBeLessThan(TOTAL);
        for (const p of producers) expect((await p.exit(150_000)).code).toBe(0);
        await watchdog(
          deliveries.allSeen(TOTAL),
          150_000,
          `all ${TOTAL} messages to be delivered despite the kills`,
        );
        for (const s of slots) {
          s.current.kill('SIGTERM');
          s.next.kill('SIGKILL');
        }
        for (const s of slots) expect((await s.current.exit()).code).toBe(0);
        await Promise.all([...victims, ...slots.map((s) => s.next)].map((f) => f.exit()));

        expect(kills).toBe(KILLS);
        expect(deliveries.byBody.size).toBe(TOTAL);
        let redelivered = 0;
        for (const attempts of deliveries.byBody.values()) {
          if (attempts.length > 1) redelivered += attempts.length - 1;
          // Each redelivery of a message counts a later attempt than the one before it.
          for (let i = 1; i < attempts.length; i++) expect(attempts[i]!).toBeGreaterThan(attempts[i - 1]!);
        }
        console.log(`mq kill test: ${KILLS} kills, ${redelivered} redeliveries of ${TOTAL} messages`);
        const q = await ctx.open();
        expect(await q.stats()).toMatchObject({ ready: 0, delayed: 0, inflight: 0, dead: 0 });
        await q.close();
        if (ctx.handle.integrity) expect(await ctx.handle.integrity(ctx.name)).toBe('ok');
      });
    },
  );
}
