#pragma once
#include <napi.h>

namespace ipckit {
void InitFd(Napi::Env env, Napi::Object exports);
}
