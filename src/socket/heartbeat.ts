/**
 * One timer per heartbeat interval for the whole process, not one per connection: a server with
 * thousands of connections wakes once per interval and walks them. The timers are unref'd, so
 * heartbeats never keep a process alive on their own.
 */

/** Something that sends a heartbeat and checks its peer's on every tick. */
export interface Beating {
  beat(): void;
}

interface Wheel {
  timer: NodeJS.Timeout;
  members: Set<Beating>;
}

const wheels = new Map<number, Wheel>();

/** Starts calling `member.beat()` every `intervalMs`. */
export function joinHeartbeat(intervalMs: number, member: Beating): void {
  let wheel = wheels.get(intervalMs);
  if (!wheel) {
    const members = new Set<Beating>();
    const timer = setInterval(() => {
      // Deleting from a Set while iterating it is safe: a member that dies in beat() leaves.
      for (const m of members) m.beat();
    }, intervalMs);
    timer.unref();
    wheel = { timer, members };
    wheels.set(intervalMs, wheel);
  }
  wheel.members.add(member);
}

/** Stops the heartbeat of `member`; the interval's timer goes when its last member leaves. */
export function leaveHeartbeat(intervalMs: number, member: Beating): void {
  const wheel = wheels.get(intervalMs);
  if (!wheel) return;
  wheel.members.delete(member);
  if (wheel.members.size === 0) {
    clearInterval(wheel.timer);
    wheels.delete(intervalMs);
  }
}
