// Doorbells: ways to make another thread's event loop wake up. Data lives in shared memory; a
// doorbell only says "look again". Two kinds:
//  - eventfd, for threads of one process (or a child that inherited the fd);
//  - a Unix datagram socket bound to an abstract name, for unrelated processes: anyone who knows
//    the name can ring it with one sendto(), the kernel removes the name when its owner dies (no
//    file to clean up), and a full queue (EAGAIN) just means the bell is already ringing.
// The watcher that turns readability into a JS callback is in watcher.cc.
#include "doorbell.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "errno.h"

namespace ipckit {

// Reads from a non-blocking fd until it would block; returns how many reads returned data
// (eventfd: 1 per drain; datagram socket: one per datagram; pipe: chunks). Bounded, so a peer that
// writes without pause cannot keep the event loop here.
int DrainFd(int fd) {
  char buffer[64];
  int reads = 0;
  for (int i = 0; i < 4096; i++) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      reads++;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // 0 (EOF) or EAGAIN or an error: nothing more to read now.
  }
  return reads;
}

// Reads the queued rings of a doorbell socket (SO_PASSCRED set at bind, so each carries its
// sender's credentials) until it would block; returns how many came from this process's user or
// root. The abstract name is listed in /proc/net/unix for all to see: another user's datagrams are
// read and dropped, so they cannot make the owner's event loop re-check shared memory for them.
// Bounded like DrainFd.
int DrainRings(int fd) {
  uid_t real = getuid();
  uid_t effective = geteuid();
  int trusted = 0;
  for (int i = 0; i < 4096; i++) {
    char byte;
    struct iovec iov = {&byte, sizeof byte};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))];
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN or an error: nothing more to read now.
    }
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS) continue;
      struct ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      if (cred.uid == real || cred.uid == effective || cred.uid == 0) trusted++;
    }
  }
  return trusted;
}

// eventfd() -> fd, non-blocking and close-on-exec, counter 0.
static Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    ErrnoError(env, errno, "eventfd").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// eventfdSignal(fd): adds 1 to the counter (the fd becomes readable).
static Napi::Value EventfdSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  // EAGAIN: the counter is saturated, i.e. already readable; nothing to add.
  if (n < 0 && errno != EAGAIN) ErrnoError(env, errno, "write(eventfd)").ThrowAsJavaScriptException();
  return env.Undefined();
}

// drain(fd) -> number of reads that returned data before the fd would block.
static Napi::Value Drain(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), DrainFd(fd));
}

static socklen_t AbstractAddress(const std::string& name, struct sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t len = name.size();
  if (len > sizeof addr->sun_path - 1) len = sizeof addr->sun_path - 1;
  // sun_path[0] stays '\0': the abstract namespace.
  std::memcpy(addr->sun_path + 1, name.data(), len);
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int DatagramSocket() { return socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

// doorbellBind(name) -> fd of a datagram socket bound to the abstract address "\0name", with
// SO_PASSCRED set before the bind (so every ring it ever queues carries credentials; DrainRings).
// EADDRINUSE if another live socket has the name.
static Napi::Value DoorbellBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = DatagramSocket();
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "setsockopt(SO_PASSCRED)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "bind", "@" + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// doorbellSocket() -> fd of an unbound datagram socket to ring doorbells with.
static Napi::Value DoorbellSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = DatagramSocket();
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// One unbound sending socket per process, shared by all threads (sendto on one fd from several
// threads is safe), so a terminated worker leaks nothing.
// Made on first use, and again on a later ring if making it failed (out of fds, say): a failure
// kept for good would fail every ring of the process from then on.
static int SharedSender() {
  static int fd = -1;
  if (fd < 0) fd = DatagramSocket();
  return fd;
}

// One datagram of one byte to `addr`, never blocking; retried on EINTR. Returns sendto's result.
static ssize_t SendRing(int fd, const struct sockaddr_un* addr, socklen_t len) {
  char byte = 1;
  ssize_t n;
  do {
    n = sendto(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const struct sockaddr*>(addr), len);
  } while (n < 0 && errno == EINTR);
  return n;
}

// doorbellRing(fd, name) -> 0 rung, 1 already full of rings (fine: it will wake),
// 2 nobody has that name any more (its owner closed it or died). fd -1: the process's own sender.
static Napi::Value DoorbellRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) fd = SharedSender();
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  struct sockaddr_un addr;
  socklen_t len = AbstractAddress(name, &addr);
  ssize_t n = SendRing(fd, &addr, len);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && info[0].As<Napi::Number>().Int32Value() < 0) {
    // EAGAIN means the doorbell's queue is full (it is ringing: fine) or the shared sender's own
    // send buffer is full of rings other receivers have not read yet (a stopped process's, say):
    // then this ring would be lost. A fresh socket has an empty send buffer and tells them apart.
    int fresh = DatagramSocket();
    if (fresh >= 0) {
      n = SendRing(fresh, &addr, len);
      int err = errno;
      close(fresh);
      errno = err;
    }
  }
  if (n >= 0) return Napi::Number::New(env, 0);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return Napi::Number::New(env, 1);
  if (errno == ECONNREFUSED || errno == ENOENT) return Napi::Number::New(env, 2);
  ErrnoError(env, errno, "sendto", "@" + name).ThrowAsJavaScriptException();
  return env.Undefined();
}

void InitDoorbell(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, Eventfd, "eventfd"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventfdSignal, "eventfdSignal"));
  exports.Set("drain", Napi::Function::New(env, Drain, "drain"));
  exports.Set("doorbellBind", Napi::Function::New(env, DoorbellBind, "doorbellBind"));
  exports.Set("doorbellSocket", Napi::Function::New(env, DoorbellSocket, "doorbellSocket"));
  exports.Set("doorbellRing", Napi::Function::New(env, DoorbellRing, "doorbellRing"));
}

}  // namespace ipckit
