// POSIX shared memory, memfd and mmap. Everything about layout (headers, sizes, checks) is
// TypeScript; this file only opens, maps and unmaps.
//
// A mapping is handed to JS as an external ArrayBuffer. It is unmapped either by `munmap(ab)`
// (which first detaches the ArrayBuffer, so every view over it becomes length 0 and a use after
// close reads nothing instead of faulting) or, if JS never calls it, by the ArrayBuffer's finalizer.
// Both paths go through one table under a mutex because worker threads map segments too.
#include "shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "errno.h"

namespace ipckit {

namespace {

// One per mmap() call. The finalizer owns it (deletes it); `released` says whether munmap() already
// unmapped it, so that a finalizer that runs late never unmaps a newer mapping at the same address.
struct Mapping {
  void* addr;
  size_t length;
  bool released;
};

std::mutex mappings_mutex;
std::unordered_map<void*, Mapping*>& Mappings() {
  static auto* table = new std::unordered_map<void*, Mapping*>();
  return *table;
}

// Marks `mapping` released and forgets it; true if this call did it (and must munmap).
bool MarkReleased(Mapping* mapping) {
  std::lock_guard<std::mutex> lock(mappings_mutex);
  if (mapping->released) return false;
  mapping->released = true;
  auto it = Mappings().find(mapping->addr);
  if (it != Mappings().end() && it->second == mapping) Mappings().erase(it);
  return true;
}

void Finalize(Napi::Env /*env*/, void* /*data*/, Mapping* mapping) {
  if (MarkReleased(mapping)) munmap(mapping->addr, mapping->length);
  delete mapping;
}

}  // namespace

// shmOpen(name, create, exclusive, mode) -> fd. O_RDWR | O_CLOEXEC, plus O_CREAT / O_EXCL.
static Napi::Value ShmOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  bool create = info[1].As<Napi::Boolean>().Value();
  bool exclusive = info[2].As<Napi::Boolean>().Value();
  mode_t mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value());
  int flags = O_RDWR | O_CLOEXEC;
  if (create) flags |= O_CREAT;
  if (exclusive) flags |= O_EXCL;
  int fd = shm_open(name.c_str(), flags, mode);
  if (fd < 0) {
    ErrnoError(env, errno, "shm_open", name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// shmUnlink(name) -> undefined.
static Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (shm_unlink(name.c_str()) != 0) {
    ErrnoError(env, errno, "shm_unlink", name).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// memfdCreate(name) -> fd, close-on-exec and sealable (the size gets sealed once set).
static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    ErrnoError(env, errno, "memfd_create", name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// sealSize(fd): F_SEAL_SHRINK | F_SEAL_GROW, so no process can truncate an anonymous segment
// under another's mapping (which would turn its next access into SIGBUS).
static Napi::Value SealSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    ErrnoError(env, errno, "fcntl(F_ADD_SEALS)").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// allocate(fd, offset, length): posix_fallocate, so the pages of a fresh object exist before any
// process maps them. Without it a full tmpfs (/dev/shm) or disk lets ftruncate succeed and turns
// the first write to a missing page into SIGBUS. posix_fallocate returns the error, not errno.
static Napi::Value Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  double offset = info[1].As<Napi::Number>().DoubleValue();
  double length = info[2].As<Napi::Number>().DoubleValue();
  int err;
  do {
    err = posix_fallocate(fd, static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (err == EINTR);
  if (err != 0) ErrnoError(env, err, "posix_fallocate").ThrowAsJavaScriptException();
  return env.Undefined();
}

// mmap(fd, offset, length) -> ArrayBuffer over a MAP_SHARED, read-write mapping.
// `offset` must be a multiple of the page size (checked by the kernel: EINVAL).
static Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  double offset = info[1].As<Napi::Number>().DoubleValue();
  double length = info[2].As<Napi::Number>().DoubleValue();
  void* addr = mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(offset));
  if (addr == MAP_FAILED) {
    ErrnoError(env, errno, "mmap").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* mapping = new Mapping{addr, static_cast<size_t>(length), false};
  {
    std::lock_guard<std::mutex> lock(mappings_mutex);
    Mappings()[addr] = mapping;
  }
  return Napi::ArrayBuffer::New(env, addr, static_cast<size_t>(length), Finalize, mapping);
}

// munmap(ab): detaches the ArrayBuffer (views become empty) and unmaps it now. Idempotent.
static Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return env.Undefined();
  Mapping* mapping = nullptr;
  {
    std::lock_guard<std::mutex> lock(mappings_mutex);
    auto it = Mappings().find(buffer.Data());
    if (it != Mappings().end()) mapping = it->second;
  }
  // Not one of ours (or already released): leave it alone.
  if (mapping == nullptr || mapping->length != buffer.ByteLength()) return env.Undefined();
  buffer.Detach();
  if (MarkReleased(mapping)) munmap(mapping->addr, mapping->length);
  return env.Undefined();
}

// pageSize() -> sysconf(_SC_PAGESIZE).
static Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

void InitShm(Napi::Env env, Napi::Object exports) {
  exports.Set("shmOpen", Napi::Function::New(env, ShmOpen, "shmOpen"));
  exports.Set("shmUnlink", Napi::Function::New(env, ShmUnlink, "shmUnlink"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("sealSize", Napi::Function::New(env, SealSize, "sealSize"));
  exports.Set("allocate", Napi::Function::New(env, Allocate, "allocate"));
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("pageSize", Napi::Function::New(env, PageSize, "pageSize"));
}

}  // namespace ipckit
