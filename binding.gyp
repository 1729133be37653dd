{
  "targets": [
    {
      "target_name": "ipckit",
      "sources": ["native/addon.cc", "native/errno.cc", "native/fifo.cc", "native/pipe.cc", "native/peercred.cc",
                  "native/shm.cc", "native/futex.cc", "native/doorbell.cc", "native/watcher.cc",
                  "native/pidfd.cc", "native/flock.cc", "native/fd.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
