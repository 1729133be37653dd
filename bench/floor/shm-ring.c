// The C floor of the shared-memory channel's small-message case: a single-producer ring between two
// processes (fork, MAP_SHARED), 64 B messages with an 8-byte record header, busy-spinning, the head
// published with a release store every `batch` messages. Quoted in docs/benchmarks.md.
//
//   gcc -O2 -o /tmp/shm-ring bench/floor/shm-ring.c && /tmp/shm-ring 20000000 1 1
//
// argv: messages; copy: 0 the reader only touches each message, 1 it copies each into memory of
// its own from malloc (as a receiver handing out owned buffers must), 2 into a bump arena (as V8's
// young generation allocates); batch: messages per publication.
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define CAP (1u << 20)
#define MSG 64
#define REC (MSG + 8)
struct ring { _Alignas(64) _Atomic uint64_t head; _Alignas(64) _Atomic uint64_t tail; _Alignas(64) unsigned char data[CAP]; };
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
  long n = atol(argv[1]); int copy = atoi(argv[2]); long batch = atol(argv[3]);
  struct ring *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(r, 0, sizeof *r);
  unsigned char msg[MSG]; for (int i = 0; i < MSG; i++) msg[i] = i;
  pid_t pid = fork();
  if (pid == 0) { // writer
    uint64_t head = 0, cached_tail = 0;
    for (long i = 0; i < n; i++) {
      while (head + REC - cached_tail > CAP) cached_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
      uint64_t at = head % CAP;
      if (at + REC > CAP) { head += CAP - at; i--; continue; }
      uint32_t len = MSG; memcpy(r->data + at, &len, 4); memcpy(r->data + at + 8, msg, MSG);
      head += REC;
      if ((i + 1) % batch == 0 || i == n - 1) atomic_store_explicit(&r->head, head, memory_order_release);
    }
    _exit(0);
  }
  double t0 = now(); uint64_t tail = 0, cached_head = 0; long got = 0; uint64_t sum = 0;
  while (got < n) {
    while (tail == cached_head) cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t at = tail % CAP;
    if (at + REC > CAP) { tail += CAP - at; continue; }
    uint32_t len; memcpy(&len, r->data + at, 4);
    if (copy == 2) { static unsigned char arena[1 << 20]; static size_t used; if (used + len > sizeof arena) used = 0; unsigned char *m = arena + used; used += len; memcpy(m, r->data + at + 8, len); sum += m[len - 1]; }
    else if (copy) { unsigned char *m = malloc(len); memcpy(m, r->data + at + 8, len); sum += m[len - 1]; free(m); }
    else sum += r->data[at + 8 + len - 1];
    tail += REC; got++;
    atomic_store_explicit(&r->tail, tail, memory_order_release);
  }
  double t = now() - t0; waitpid(pid, NULL, 0);
  printf("copy=%d batch=%ld: %.2f M msg/s (sum %lu)\n", copy, batch, n / t / 1e6, (unsigned long)sum);
  return 0;
}
