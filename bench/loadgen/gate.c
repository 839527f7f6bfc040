// Futex-based wait for subscriber progress. Subscribers pay one fence and one load per read when
// the publisher is not waiting.
#include "gate.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "sub.h"

uint64_t gate_progress(gate_t *g) {
  if (g->queue) {
    uint64_t sum = 0;
    for (int i = 0; i < g->n; i++) sum += atomic_load_explicit(&g->subs[i]->received, memory_order_acquire);
    return sum;
  }
  uint64_t min = UINT64_MAX;
  for (int i = 0; i < g->n; i++) {
    uint64_t r = atomic_load_explicit(&g->subs[i]->received, memory_order_acquire);
    if (r < min) min = r;
  }
  return g->n ? min : 0;
}

uint64_t gate_wait(gate_t *g, uint64_t need, uint64_t timeout_ns) {
  uint64_t deadline = now_ns() + timeout_ns;
  for (;;) {
    uint32_t w = atomic_load(&g->wake);
    atomic_store(&g->need, need);  // seq_cst: either we see their count or they see our need
    uint64_t cur = gate_progress(g);
    uint64_t t = now_ns();
    if (cur >= need || t >= deadline || failed()) {
      atomic_store(&g->need, 0);
      return cur;
    }
    // 1 ms cap: a safety net only; the wake-up normally comes from gate_notify.
    uint64_t left = deadline - t < 1000000 ? deadline - t : 1000000;
    struct timespec ts = {0, (long)left};
    syscall(SYS_futex, &g->wake, FUTEX_WAIT_PRIVATE, w, &ts, NULL, 0);
  }
}

void gate_notify(gate_t *g, uint64_t own_count) {
  atomic_thread_fence(memory_order_seq_cst);  // our count store before reading need (see gate_wait)
  uint64_t need = atomic_load_explicit(&g->need, memory_order_relaxed);
  if (need == 0) return;
  if (!g->queue && own_count < need) return;  // the minimum cannot have reached it yet
  if (gate_progress(g) >= need) {
    atomic_fetch_add(&g->wake, 1);
    syscall(SYS_futex, &g->wake, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
}
