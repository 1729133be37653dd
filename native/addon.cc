// The addon's entry point: each concern registers its own functions.
// The whole surface is declared, with docs, in src/native/binding.ts.
#include <napi.h>

#include "fifo.h"
#include "peercred.h"
#include "pipe.h"
#include "doorbell.h"
#include "fd.h"
#include "flock.h"
#include "futex.h"
#include "pidfd.h"
#include "shm.h"
#include "watcher.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipckit::InitFifo(env, exports);
  ipckit::InitPipe(env, exports);
  ipckit::InitPeercred(env, exports);
  ipckit::InitShm(env, exports);
  ipckit::InitFutex(env, exports);
  ipckit::InitDoorbell(env, exports);
  ipckit::InitWatcher(env, exports);
  ipckit::InitPidfd(env, exports);
  ipckit::InitFlock(env, exports);
  ipckit::InitFd(env, exports);
  return exports;
}

NODE_API_MODULE(ipckit, Init)
