// FdWatcher: calls a JS function on the thread's own event loop (uv_poll) when an fd becomes
// readable: a doorbell (eventfd, datagram socket), a FIFO or a pidfd. Nothing blocks and nothing
// runs on the libuv threadpool. With a drain mode, the fd is read empty before the callback runs, so
// a level-triggered poll does not fire again for the same rings.
//
// The uv handle outlives the JS object if needed: it is freed in its close callback, and an async
// cleanup hook closes it when a worker thread's environment is torn down.
#include "watcher.h"

#include <unistd.h>
#include <uv.h>

#include "errno.h"

namespace ipckit {

int DrainFd(int fd);     // doorbell.cc
int DrainRings(int fd);  // doorbell.cc

// What to read from the fd before the callback (DrainMode in src/native/binding.ts).
enum Drain { kNone = 0, kRead = 1, kRings = 2 };

namespace {

class FdWatcher;

struct Poll {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  napi_async_cleanup_hook_handle hook;
  FdWatcher* owner;
  int fd;
  int drain;
  bool close_fd;
  bool closing;
  bool active;
  bool referenced;
};

void OnClosed(uv_handle_t* handle);

// Starts closing the handle once; OnClosed frees everything.
void BeginClose(Poll* poll) {
  if (poll->closing) return;
  poll->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), OnClosed);
}

void OnCleanup(napi_async_cleanup_hook_handle /*hook*/, void* arg) {
  BeginClose(static_cast<Poll*>(arg));
}

void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  Poll* poll = static_cast<Poll*>(handle->data);
  if (poll->closing) return;
  int count = 0;
  if (status == 0 && poll->drain == kRead) count = DrainFd(poll->fd);
  if (status == 0 && poll->drain == kRings) count = DrainRings(poll->fd);
  napi_env env = poll->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, result;
  napi_value argv[2];
  napi_get_reference_value(env, poll->callback, &callback);
  napi_get_global(env, &global);
  napi_create_int32(env, count, &argv[0]);
  napi_create_int32(env, status, &argv[1]);
  napi_status rc = napi_make_callback(env, poll->context, global, callback, 2, argv, &result);
  if (rc == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::Start>("start"),
                           InstanceMethod<&FdWatcher::Stop>("stop"),
                           InstanceMethod<&FdWatcher::Ref>("ref"),
                           InstanceMethod<&FdWatcher::Unref>("unref"),
                           InstanceMethod<&FdWatcher::Close>("close"),
                       });
  }

  // new FdWatcher(fd, drainMode, callback(reads, status)[, closeFd])
  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    int drain = info[1].As<Napi::Number>().Int32Value();
    Napi::Function callback = info[2].As<Napi::Function>();
    bool close_fd = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "FdWatcher: no event loop").ThrowAsJavaScriptException();
      return;
    }
    auto* poll = new Poll{};
    int rc = uv_poll_init(loop, &poll->handle, fd);
    if (rc != 0) {
      delete poll;
      ErrnoError(env, -rc, "uv_poll_init").ThrowAsJavaScriptException();
      return;
    }
    poll->handle.data = poll;
    poll->env = env;
    poll->owner = this;
    poll->fd = fd;
    poll->drain = drain;
    poll->close_fd = close_fd;
    poll->referenced = true;
    napi_create_reference(env, callback, 1, &poll->callback);
    napi_value resource_name;
    napi_create_string_utf8(env, "ipckit:FdWatcher", NAPI_AUTO_LENGTH, &resource_name);
    napi_async_init(env, nullptr, resource_name, &poll->context);
    napi_add_async_cleanup_hook(env, OnCleanup, poll, &poll->hook);
    poll_ = poll;
  }

  ~FdWatcher() override {
    if (poll_ != nullptr) {
      poll_->owner = nullptr;
      BeginClose(poll_);
    }
  }

  void Detach() { poll_ = nullptr; }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && !poll_->closing && !poll_->active) {
      int rc = uv_poll_start(&poll_->handle, UV_READABLE, OnPoll);
      if (rc != 0) {
        ErrnoError(info.Env(), -rc, "uv_poll_start").ThrowAsJavaScriptException();
      } else {
        poll_->active = true;
      }
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && !poll_->closing && poll_->active) {
      uv_poll_stop(&poll_->handle);
      poll_->active = false;
    }
    return info.Env().Undefined();
  }

  // ref/unref: whether a started watcher keeps the event loop (the process, the worker) alive.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && !poll_->closing) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && !poll_->closing) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    return info.Env().Undefined();
  }

  // close(): stops watching for good. The fd is closed too if the watcher owns it (closeFd).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) {
      Poll* poll = poll_;
      poll_ = nullptr;
      poll->owner = nullptr;
      BeginClose(poll);
    }
    return info.Env().Undefined();
  }

  Poll* poll_ = nullptr;
};

void OnClosed(uv_handle_t* handle) {
  Poll* poll = static_cast<Poll*>(handle->data);
  if (poll->owner != nullptr) poll->owner->Detach();
  // With closeFd the watcher owns the fd: it goes with the watcher, also when a worker thread is
  // terminated (its JS 'exit' handlers do not run then, but this cleanup does).
  if (poll->close_fd) close(poll->fd);
  napi_delete_reference(poll->env, poll->callback);
  napi_async_destroy(poll->env, poll->context);
  napi_remove_async_cleanup_hook(poll->hook);
  delete poll;
}

}  // namespace

void InitWatcher(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
}

}  // namespace ipckit
