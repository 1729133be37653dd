#pragma once
#include <napi.h>

namespace ipckit {
void InitFlock(Napi::Env env, Napi::Object exports);
}
