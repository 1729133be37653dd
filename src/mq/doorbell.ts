/**
 * The wake-up seam: how a store tells a waiting consumer in another process that something changed.
 * A waiting process listens on a {@link Doorbell}; a process that changed the queue rings the
 * registered bells with a {@link Ringer}. A ring carries no data, only a bit mask of what may have
 * changed ({@link RING_MESSAGES}, {@link RING_ROOM}); rings may be merged or spurious, never needed
 * for correctness beyond latency. Today's transport is a Unix socket per listening process
 * (socket-doorbell.ts); the shared-memory doorbell can replace it behind this interface.
 */

/** A message may have become claimable. */
export const RING_MESSAGES = 1;
/** A full queue may have room. */
export const RING_ROOM = 2;

/** The listening side, one per process and queue. */
export interface Doorbell {
  /** Where ringers reach this bell; stored in the queue so other processes find it. */
  readonly address: string;
  /** Keeps the process alive while something waits on the bell. */
  ref(): void;
  /** Lets the process exit although the bell is open. */
  unref(): void;
  /** Stops listening and removes what the bell left in the file system. */
  close(): void;
}

/** The ringing side: keeps a connection per bell it has rung. */
export interface Ringer {
  /** Rings the bell at `address` with a mask of RING_* bits. Never throws, never waits. */
  ring(address: string, kinds: number): void;
  /**
   * Stops ringing. Rings already made still reach their bells first (a ring made just before a
   * producer closes is what tells a waiting consumer about its last message), bounded in time.
   */
  close(): Promise<void>;
}

/** A way to make doorbells and ringers. */
export interface DoorbellTransport {
  /** Opens a bell; `onRing` gets the merged RING_* bits of the rings that arrived. */
  listen(onRing: (kinds: number) => void): Promise<Doorbell>;
  /** A ringer; `onGone` is called with an address where nobody listens any more. */
  ringer(onGone: (address: string) => void): Ringer;
}
