/**
 * What every synchronization primitive shares: where its state lives (its own named segment, or a
 * place in memory the user owns), how it is opened and closed, and the bookkeeping that fails
 * pending waits with ERR_IPC_CLOSED before the memory goes away.
 */
import { closedError, ErrorCodes, IpcError } from '../core/errors.js';
import { register, unregister } from '../core/registry.js';
import { kernelName, kernelPath } from '../shm/kernel-name.js';
import {
  checkMode,
  createNamed,
  type MappedSegment,
  openNamed,
  openOrCreateNamed,
  unlinkNamed,
  unlinkOwnName,
  unmapSegment,
} from '../shm/mapping.js';
import {
  checkHeader,
  initHeader,
  Kind,
  type KindName,
  type PlacementTarget,
  placeRegion,
  Region,
} from './region.js';
import { Spinner } from './waiter.js';

/** Options shared by the named constructors of every primitive. */
export interface PrimitiveOptions {
  /** Permission bits of a new primitive's segment. Default 0o600. */
  mode?: number;
}

/** How a primitive is reached: by name (with its segment) or placed at an offset. */
export type OpenHow = 'create' | 'open' | 'openOrCreate';

/** The fixed description of one primitive kind. */
export interface KindSpec {
  kind: KindName;
  byteLength: number;
  /** Fills a zeroed region after its header (slot counts, initial values). */
  init(region: Region, param: number): void;
}

/** Opened storage: the region, the segment behind a named primitive, and its header parameter. */
export interface Storage {
  region: Region;
  param: number;
  name: string | undefined;
  segment: MappedSegment | undefined;
  kernel: string | undefined;
  what: string;
}

/** Opens or creates the named primitive `name` of `spec`'s kind. */
export function openNamedStorage(
  spec: KindSpec,
  name: string,
  how: OpenHow,
  param: number,
  opts: PrimitiveOptions | undefined,
): Storage {
  const what = `${spec.kind} '${String(name)}'`;
  const kernel = kernelName(spec.kind, name, spec.kind);
  const mode = opts?.mode ?? 0o600;
  checkMode(mode);
  const code = Kind[spec.kind];
  const init = (data: ArrayBuffer) => {
    const region = new Region(data, 0, spec.byteLength);
    initHeader(region, code, param);
    spec.init(region, param);
  };
  let segment: MappedSegment;
  let created = false;
  if (how === 'create') {
    segment = createNamed(kernel, what, code, spec.byteLength, mode, init);
    created = true;
  } else if (how === 'open') {
    segment = openNamed(kernel, what, code);
  } else {
    ({ segment, created } = openOrCreateNamed(kernel, what, code, spec.byteLength, mode, init));
  }
  try {
    if (segment.info.size < spec.byteLength) {
      throw new IpcError(ErrorCodes.INCOMPATIBLE, `${what}: its segment is too small for this layout`);
    }
    const region = new Region(segment.data, 0, spec.byteLength);
    const stored = checkHeader(region, code, what);
    if (created) register(spec.kind, name, kernelPath(kernel));
    return { region, param: stored, name, segment, kernel, what };
  } catch (err) {
    unmapSegment(segment);
    // A segment this call created goes with the failure (the registry refused it, say): a name
    // left behind unregistered would block the next create.
    if (created) unlinkNamed(kernel, what);
    throw err;
  }
}

/** Places a primitive of `spec`'s kind in user memory: initializes it (`create`) or checks it (`open`). */
export function placedStorage(
  spec: KindSpec,
  target: PlacementTarget,
  offset: number,
  how: 'create' | 'open',
  param: number,
): Storage {
  const what = `${spec.kind} at offset ${String(offset)}`;
  const region = placeRegion(target, offset, spec.byteLength, what);
  const code = Kind[spec.kind];
  if (how === 'create') {
    initHeader(region, code, param);
    spec.init(region, param);
  }
  const stored = checkHeader(region, code, what);
  return { region, param: stored, name: undefined, segment: undefined, kernel: undefined, what };
}

/** Removes the named primitive `name` of `kind`. ERR_IPC_NOT_FOUND if it does not exist. */
export function unlinkNamedPrimitive(kind: KindName, name: string): void {
  const kernel = kernelName(kind, name, kind);
  unregister(kind, name);
  if (!unlinkNamed(kernel, `${kind} '${name}'`)) {
    throw new IpcError(ErrorCodes.NOT_FOUND, `${kind} '${name}' does not exist`);
  }
}

/** Base class: lifecycle, naming and pending-wait bookkeeping. */
export abstract class Primitive implements Disposable {
  /** The primitive's name, or undefined when it was placed in user memory. */
  readonly name: string | undefined;
  /** @internal */
  protected readonly region: Region;
  /** @internal For errors: "mutex 'jobs'". */
  protected readonly what: string;
  /** @internal Adaptive spin state of this handle. */
  protected readonly spinner = new Spinner();
  readonly #kind: KindName;
  readonly #segment: MappedSegment | undefined;
  readonly #kernel: string | undefined;
  readonly #pending = new Set<() => void>();
  #closed = false;

  /** @internal */
  protected constructor(kind: KindName, storage: Storage) {
    this.#kind = kind;
    this.name = storage.name;
    this.region = storage.region;
    this.what = storage.what;
    this.#segment = storage.segment;
    this.#kernel = storage.kernel;
  }

  /**
   * True once `close()` ran, or once the memory a placed primitive lives in went away (its
   * SharedMemory was closed, or its ArrayBuffer transferred): the primitive is unusable either way.
   */
  get closed(): boolean {
    return this.#closed || this.region.detached;
  }

  /**
   * @internal Throws ERR_IPC_CLOSED once closed or once the memory is gone. Every operation and
   * every wait attempt goes through here, so this one check is what keeps a primitive placed in a
   * SharedMemory from touching a detached buffer (V8 would throw a raw TypeError) after the user
   * closed the segment: the segment's close() does not know what was placed in it.
   */
  protected assertOpen(): void {
    if (this.#closed || this.region.detached) throw this.closedError();
  }

  /** @internal The ERR_IPC_CLOSED error of this handle, saying why when its memory went away. */
  protected closedError(): IpcError {
    if (this.#closed || !this.region.detached) return closedError(this.what);
    return new IpcError(
      ErrorCodes.CLOSED,
      `${this.what} is closed: the memory it was placed in is gone (its SharedMemory was closed, or its ArrayBuffer transferred)`,
    );
  }

  /**
   * @internal Tracks a parked wait so `close()` can end it (its `kick` re-checks, and the closed
   * primitive's attempt throws ERR_IPC_CLOSED) before the memory is unmapped.
   */
  protected trackWait(kick: () => void): () => void {
    this.#pending.add(kick);
    return () => this.#pending.delete(kick);
  }

  /** @internal Subclasses release per-handle shares (barrier membership) here, before unmapping. */
  protected onClose(): void {}

  /**
   * Closes this handle: pending waits of this handle reject with ERR_IPC_CLOSED and a named
   * primitive's memory is unmapped. Locks still held through this handle stay held (other processes
   * see them as held until this process exits): release guards first. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const kick of [...this.#pending]) kick();
    this.#pending.clear();
    this.onClose();
    if (this.#segment) unmapSegment(this.#segment);
  }

  /**
   * Removes a named primitive's name (open handles keep working). Idempotent; a no-op for placed
   * ones. A name that now belongs to a newer primitive (this one's name was unlinked, then the name
   * created again) is left alone, with its registry entry.
   */
  unlink(): void {
    const id = this.#segment?.id;
    if (this.name === undefined || this.#kernel === undefined || id === undefined) return;
    unlinkOwnName(this.#kernel, id, { kind: this.#kind, name: this.name }, this.what);
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
