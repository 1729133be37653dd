/**
 * ipckit: every classic inter-process communication mechanism for Node.js, typed, in one API.
 * This file is the whole public surface.
 */
export type { Channel, ChannelOptions, MessageView, Receiver, Sender } from './core/channel.js';
export { type Codec, type CodecName, type CodecOptions, codecs } from './core/codec.js';
export { ErrorCodes, IpcError, type IpcErrorCode, isIpcError } from './core/errors.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from './core/framing.js';
export {
  listResources,
  RESOURCE_KINDS,
  type ResourceEntry,
  type ResourceKind,
  type ResourceStatus,
} from './core/registry.js';
export {
  NAME_PATTERN,
  readPrivateFile,
  readPrivateJson,
  runtimeDir as ensureRuntimeDir,
  runtimeDirPath as runtimeDir,
  runtimeSubdir,
  writePrivateFileAtomic,
} from './core/runtime-dir.js';
export type { WaitOptions } from './core/wait.js';
export { Message } from './mq/message.js';
export { MessageQueue } from './mq/message-queue.js';
export type {
  BatchMessage,
  ConsumeOptions,
  MessageQueueOptions,
  NackOptions,
  ProcessOptions,
  ReceiveOptions,
  SendOptions,
  StoreSpec,
} from './mq/options.js';
export type {
  ClaimedMessage,
  ClaimRequest,
  ClaimResult,
  OutgoingMessage,
  QueueStats,
  Receipt,
  SendOutcome,
  SendRequest,
  SettleOp,
  Store,
  StoreDriver,
  StoredMessage,
  StoreOpenOptions,
  WakeKind,
} from './mq/store.js';
export { type ParentChannelOptions, parentChannel } from './pipe/child-channel.js';
export { Fifo, type FifoFormat, type FifoOptions, type FifoTarget } from './pipe/fifo.js';
export { NamedPipe, NamedPipeServer, type NamedPipeServerOptions } from './pipe/named-pipe.js';
export { Pipe, type PipeOptions, PipeReader, PipeWriter } from './pipe/pipe.js';
export { PipeChannel } from './pipe/pipe-channel.js';
export type { ChannelKind } from './process/channel-plan.js';
export type { ProcessState, StopOptions } from './process/child-process.js';
export { type MapOptions, Pool, type PoolCodec, type PoolOptions } from './process/pool.js';
export type { ProcessStats } from './process/proc-stats.js';
export { inheritedFd, type Shareable, type ShareItem } from './process/share.js';
export {
  ChildProcess,
  type ChildProcessWithChannel,
  type ExitStatus,
  type SpawnOptions,
  spawn,
} from './process/spawn.js';
export {
  type BackoffOptions,
  type RestartInfo,
  type RestartPolicy,
  type SupervisedChildOptions,
  Supervisor,
  type SupervisorEvents,
  type SupervisorOptions,
} from './process/supervisor.js';
export { TaskError } from './process/task-error.js';
export { type GcOptions, type GcRemoved, type GcResult, gcResources } from './shm/gc.js';
export {
  type MapFileOptions,
  SharedMemory,
  type SharedMemoryKind,
  type SharedMemoryOptions,
  shareFds,
} from './shm/shared-memory.js';
export { ShmChannel, type ShmChannelMode, type ShmChannelOptions, type ShmView } from './shm/shm-channel.js';
export { formatAddress, parseAddress, type SocketAddress, type SocketTransport } from './socket/address.js';
export { type ClientEvents, connect, SocketClient } from './socket/client.js';
export type { PeerInfo } from './socket/link.js';
export type { AuthOptions, ConnectOptions, ListenOptions, ReconnectOptions } from './socket/options.js';
export { RemoteError } from './socket/remote-error.js';
export {
  listen,
  type ServerCloseOptions,
  type ServerEvents,
  type ServerStats,
  SocketServer,
} from './socket/server.js';
export type { Handler, RequestContext, SocketConnection } from './socket/server-connection.js';
export { type SubscribeOptions, Subscription } from './socket/subscription.js';
export { Barrier, type BarrierOptions } from './sync/barrier.js';
export { Condition } from './sync/condition.js';
export { Event } from './sync/event.js';
export { FileLock, type FileLockOptions } from './sync/file-lock.js';
export type { Guard } from './sync/guard.js';
export { Mutex, type MutexGuard, type MutexOptions } from './sync/mutex.js';
export type { PrimitiveOptions } from './sync/primitive.js';
export type { PlacementTarget } from './sync/region.js';
export { RwLock, type RwLockGuard } from './sync/rwlock.js';
export {
  type AcquireOptions,
  Semaphore,
  type SemaphoreOptions,
  type SemaphorePermit,
} from './sync/semaphore.js';
