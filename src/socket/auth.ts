/**
 * Authentication checks: a shared token compared in constant time, and the kernel's credentials of
 * the process on the other end of a Unix socket (SO_PEERCRED through the addon).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { socketFd } from '../core/exit-flush.js';
import { native, nativeAvailable } from '../native/binding.js';
import type { SocketTransport } from './address.js';

/** Who is on the other end of a Unix socket, as the kernel recorded it at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Checks presented tokens against one expected token without leaking where they differ. */
export class TokenCheck {
  readonly #digest: Buffer;

  constructor(expected: Buffer) {
    this.#digest = digest(expected);
  }

  /**
   * Both sides are hashed first, so the comparison takes the same time whatever the presented
   * token's length or content (timingSafeEqual alone needs equal lengths).
   */
  matches(presented: Buffer): boolean {
    return timingSafeEqual(this.#digest, digest(presented));
  }
}

function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * The peer's credentials, or undefined where they cannot be had (TCP, no addon, a socket that is
 * already closed). Reads the fd of Node's socket handle; a TLS socket passes its underlying socket.
 */
export function peerCredentials(socket: Socket): PeerCredentials | undefined {
  const fd = socketFd(socket);
  if (fd === undefined || !nativeAvailable()) return undefined;
  try {
    return native().peerCredentials(fd);
  } catch {
    return undefined;
  }
}

/** The uid of this process (undefined on platforms without one). */
export function ownUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/**
 * The uids a server admits on the other end of a Unix socket: `auth.uid` when given, else its own
 * (same-user by default). Undefined (no check) over TCP, which has no peer credentials.
 */
export function allowedClientUids(
  kind: SocketTransport,
  explicit: readonly number[] | undefined,
): readonly number[] | undefined {
  if (kind === 'tcp') return undefined;
  const own = ownUid();
  return explicit ?? (own === undefined ? undefined : [own]);
}

/**
 * The uids a client accepts on the server's end of a Unix socket: `auth.uid` when given, else this
 * process's own uid and root's. Without a default, whoever binds a `unix://` path in a shared
 * directory first would receive the client's token and requests; root can take any socket anyway,
 * so admitting it costs nothing. Undefined (no check) over TCP, and by default without the addon,
 * where the credentials cannot be read: file permissions are then all there is, as on the server.
 */
export function expectedServerUids(
  kind: SocketTransport,
  explicit: readonly number[] | undefined,
): readonly number[] | undefined {
  if (kind === 'tcp') return undefined;
  if (explicit) return explicit;
  const own = ownUid();
  if (own === undefined || !nativeAvailable()) return undefined;
  return own === 0 ? [0] : [own, 0];
}
