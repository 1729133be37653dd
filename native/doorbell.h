#pragma once
#include <napi.h>

namespace ipckit {
void InitDoorbell(Napi::Env env, Napi::Object exports);
}
