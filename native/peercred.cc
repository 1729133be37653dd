// peerCredentials(fd) -> { pid, uid, gid }: who is connected to a Unix socket. The kernel records
// the peer's credentials at connect time, so they cannot be spoofed by what the peer later sends.
#include "peercred.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "errno.h"

namespace ipckit {

static Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Object result = Napi::Object::New(env);
#if defined(__linux__)
  struct ucred cred;
  socklen_t length = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    ErrnoError(env, errno, "getsockopt(SO_PEERCRED)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
#else
  // BSD and macOS: getpeereid gives uid and gid; the pid is not available this way.
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) != 0) {
    ErrnoError(env, errno, "getpeereid").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  result.Set("pid", Napi::Number::New(env, -1));
  result.Set("uid", Napi::Number::New(env, uid));
  result.Set("gid", Napi::Number::New(env, gid));
#endif
  return result;
}

void InitPeercred(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace ipckit
