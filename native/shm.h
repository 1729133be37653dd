#pragma once
#include <napi.h>

namespace ipckit {
void InitShm(Napi::Env env, Napi::Object exports);
}
