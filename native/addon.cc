// The addon's entry point: each concern registers its own functions.
// The whole surface is declared, with docs, in src/native/binding.ts.
#include <napi.h>

#include "fifo.h"
#include "pipe.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipckit::InitFifo(env, exports);
  ipckit::InitPipe(env, exports);
  return exports;
}

NODE_API_MODULE(ipckit, Init)
