// flock(2): advisory whole-file locks, interoperable with flock(1), released by the kernel when the
// last fd of the open file description closes (so when the holder dies). Only the non-blocking
// attempt is used on the event loop; the blocking form is for FileLock.lockSync.
#include "flock.h"

#include <sys/file.h>

#include <cerrno>

#include "errno.h"

namespace ipckit {

// flock(fd, exclusive, wait) -> true if locked, false if another holder has it (only when !wait).
static Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool exclusive = info[1].As<Napi::Boolean>().Value();
  bool wait = info[2].As<Napi::Boolean>().Value();
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  ErrnoError(env, errno, "flock").ThrowAsJavaScriptException();
  return env.Undefined();
}

// funlock(fd): LOCK_UN.
static Napi::Value Funlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (flock(fd, LOCK_UN) != 0) ErrnoError(env, errno, "flock(LOCK_UN)").ThrowAsJavaScriptException();
  return env.Undefined();
}

void InitFlock(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("funlock", Napi::Function::New(env, Funlock, "funlock"));
}

}  // namespace ipckit
