// mkfifo(3): the one syscall Node does not expose for named pipes.
#include "fifo.h"

#include <sys/stat.h>
#include <sys/types.h>

#include "errno.h"

namespace ipckit {

// mkfifo(path, mode) -> undefined. The umask still applies here; the caller chmods afterwards
// so the requested mode holds even under an unusual umask.
static Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value());
  if (mkfifo(path.c_str(), mode) != 0) {
    ErrnoError(env, errno, "mkfifo", path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

void InitFifo(Napi::Env env, Napi::Object exports) {
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
}

}  // namespace ipckit
