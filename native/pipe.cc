// pipe2(2) with O_CLOEXEC, and F_GETPIPE_SZ / F_SETPIPE_SZ to size the kernel buffer.
#include "pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include "errno.h"

namespace ipckit {

// pipe2() -> [readFd, writeFd], both close-on-exec so only the child they are handed to keeps them.
static Napi::Value Pipe2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ErrnoError(env, errno, "pipe2").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fds[0]));
  result.Set(1u, Napi::Number::New(env, fds[1]));
  return result;
}

// setPipeSize(fd, bytes) -> the size the kernel granted (it rounds up to a power of two pages).
static Napi::Value SetPipeSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int bytes = info[1].As<Napi::Number>().Int32Value();
  int granted = fcntl(fd, F_SETPIPE_SZ, bytes);
  if (granted < 0) {
    ErrnoError(env, errno, "fcntl(F_SETPIPE_SZ)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, granted);
}

// getPipeSize(fd) -> the pipe's kernel buffer size in bytes.
static Napi::Value GetPipeSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int size = fcntl(fd, F_GETPIPE_SZ);
  if (size < 0) {
    ErrnoError(env, errno, "fcntl(F_GETPIPE_SZ)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, size);
}

// setCloexec(fd, on): a pipe end handed to a child must survive exec, the parent's copies must not.
static Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].As<Napi::Boolean>().Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)) != 0) {
    ErrnoError(env, errno, "fcntl(F_SETFD)").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

void InitPipe(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe2", Napi::Function::New(env, Pipe2, "pipe2"));
  exports.Set("setPipeSize", Napi::Function::New(env, SetPipeSize, "setPipeSize"));
  exports.Set("getPipeSize", Napi::Function::New(env, GetPipeSize, "getPipeSize"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
}

}  // namespace ipckit
