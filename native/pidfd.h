#pragma once
#include <napi.h>

namespace ipckit {
void InitPidfd(Napi::Env env, Napi::Object exports);
}
