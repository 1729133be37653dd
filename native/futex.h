#pragma once
#include <napi.h>

namespace ipckit {
void InitFutex(Napi::Env env, Napi::Object exports);
}
