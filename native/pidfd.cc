// Process and thread identity: pidfd_open(2), whose fd becomes readable when the process exits
// (zombie or reaped alike; watched by the event loop for fast owner-death detection), and gettid(2),
// because a lock owner is a thread: worker threads share their process's pid.
#include "pidfd.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "errno.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace ipckit {

// pidfdOpen(pid) -> fd (close-on-exec by default). ESRCH if there is no such process.
static Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = info[0].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "pidfd_open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// gettid() -> the calling thread's kernel id (the pid for the main thread).
static Napi::Value Gettid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("gettid", Napi::Function::New(env, Gettid, "gettid"));
}

}  // namespace ipckit
