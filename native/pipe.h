#pragma once
#include <napi.h>

namespace ipckit {
void InitPipe(Napi::Env env, Napi::Object exports);
}
