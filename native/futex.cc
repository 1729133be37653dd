// futex(2) wait and wake on a 32-bit word inside a mapping. Deliberately not FUTEX_PRIVATE: the
// kernel then keys the wait queue on the page's backing object, so two processes that map the same
// segment at different addresses meet on the same queue. These calls block the calling thread and
// are meant for the ...Sync variants (workers, scripts); async waits never come here.
#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>

#include "errno.h"

namespace ipckit {

// The address of element `index` of an Int32Array, or nullptr (with a JS exception) if out of range.
static int32_t* WordAt(Napi::Env env, const Napi::Value& array, const Napi::Value& index) {
  if (!array.IsTypedArray() || array.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(env, "futex: expected an Int32Array").ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::Int32Array words = array.As<Napi::Int32Array>();
  uint32_t i = index.As<Napi::Number>().Uint32Value();
  if (i >= words.ElementLength()) {
    Napi::RangeError::New(env, "futex: index out of range").ThrowAsJavaScriptException();
    return nullptr;
  }
  return words.Data() + i;
}

// futexWait(int32Array, index, expected, timeoutMs) -> 0 woken (or interrupted: recheck),
// 1 the word was not `expected`, 2 timed out. timeoutMs < 0 waits without a deadline.
static Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = WordAt(env, info[0], info[1]);
  if (word == nullptr) return env.Undefined();
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeout_ms = info[3].As<Napi::Number>().DoubleValue();
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (timeout_ms >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ms / 1000);
    ts.tv_nsec = static_cast<long>((timeout_ms - static_cast<double>(ts.tv_sec) * 1000) * 1e6);
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, nullptr, 0);
  if (rc == 0) return Napi::Number::New(env, 0);
  switch (errno) {
    case EAGAIN:
      return Napi::Number::New(env, 1);
    case ETIMEDOUT:
      return Napi::Number::New(env, 2);
    case EINTR:
      return Napi::Number::New(env, 0);
    default:
      ErrnoError(env, errno, "futex(FUTEX_WAIT)").ThrowAsJavaScriptException();
      return env.Undefined();
  }
}

// futexWake(int32Array, index, count) -> the number of waiters woken.
static Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t* word = WordAt(env, info[0], info[1]);
  if (word == nullptr) return env.Undefined();
  int32_t count = info[2].As<Napi::Number>().Int32Value();
  if (count <= 0) count = INT_MAX;
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  if (rc < 0) {
    ErrnoError(env, errno, "futex(FUTEX_WAKE)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(rc));
}

void InitFutex(Napi::Env env, Napi::Object exports) {
  exports.Set("futexWait", Napi::Function::New(env, FutexWait, "futexWait"));
  exports.Set("futexWake", Napi::Function::New(env, FutexWake, "futexWake"));
}

}  // namespace ipckit
