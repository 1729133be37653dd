// close(2) for the fds this addon opens (shm_open, memfd_create, pipe2, ...). Node's fs.closeSync
// must not close them: in a worker thread Node tracks the fds fs opened, and closing one it did
// not open prints "File descriptor N closed but not opened in unmanaged mode".
#include "fd.h"

#include <unistd.h>

#include <cerrno>

#include "errno.h"

namespace ipckit {

// close(fd) -> undefined. Not retried on EINTR: Linux has released the fd by then, and a retry
// could close an fd another thread just got.
static Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0 && errno != EINTR) ErrnoError(env, errno, "close").ThrowAsJavaScriptException();
  return env.Undefined();
}

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace ipckit
