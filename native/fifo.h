#pragma once
#include <napi.h>

namespace ipckit {
void InitFifo(Napi::Env env, Napi::Object exports);
}
