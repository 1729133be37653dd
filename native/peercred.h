// Peer credentials of a connected Unix socket (SO_PEERCRED), so a server can check who is on the
// other end before trusting anything it says.
#pragma once
#include <napi.h>

namespace ipckit {

void InitPeercred(Napi::Env env, Napi::Object exports);

}  // namespace ipckit
