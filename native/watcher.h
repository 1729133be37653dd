#pragma once
#include <napi.h>

namespace ipckit {
void InitWatcher(Napi::Env env, Napi::Object exports);
}
