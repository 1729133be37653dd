// Turns a failed syscall into a JS Error carrying errno, code, syscall and path,
// the same shape Node's own fs errors have, so TypeScript can map it to an IpcError.
#pragma once
#include <napi.h>
#include <string>

namespace ipckit {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = "");

}  // namespace ipckit
