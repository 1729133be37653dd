{
  "targets": [
    {
      "target_name": "ipckit",
      "sources": ["native/addon.cc", "native/errno.cc", "native/fifo.cc", "native/pipe.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
