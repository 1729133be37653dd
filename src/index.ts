/**
 * ipckit: every classic inter-process communication mechanism for Node.js, typed, in one API.
 * This file is the whole public surface.
 */
export type { Channel, ChannelOptions, Receiver, Sender } from './core/channel.js';
export { type Codec, type CodecName, type CodecOptions, codecs } from './core/codec.js';
export { ErrorCodes, IpcError, type IpcErrorCode, isIpcError } from './core/errors.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from './core/framing.js';
export {
  listResources,
  type ResourceEntry,
  type ResourceKind,
  type ResourceStatus,
} from './core/registry.js';
export { runtimeDirPath as runtimeDir } from './core/runtime-dir.js';
export type { WaitOptions } from './core/wait.js';
export { parentChannel } from './pipe/child-channel.js';
export { Fifo, type FifoFormat, type FifoOptions, type FifoTarget } from './pipe/fifo.js';
export { NamedPipe, NamedPipeServer, type NamedPipeServerOptions } from './pipe/named-pipe.js';
export { Pipe, type PipeOptions, PipeReader, PipeWriter } from './pipe/pipe.js';
export {
  ChildProcess,
  type ChildProcessWithChannel,
  type ExitStatus,
  type SpawnOptions,
  spawn,
} from './process/spawn.js';
