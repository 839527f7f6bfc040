// Flow-control gate between the publisher and the subscriber threads: "how many messages have the
// subscribers fully received", and a futex so the publisher can sleep until that reaches a target
// without polling (polling a 2-core machine steals the CPU the server needs).
#pragma once
#include <stdatomic.h>
#include <stdint.h>

typedef struct sub sub_t;

typedef struct {
  sub_t **subs;
  int n;
  int queue;                 // progress = sum over members (queue group) instead of the minimum
  _Atomic uint64_t need;     // what the publisher waits for; 0 when it is not waiting
  _Atomic uint32_t wake;     // futex word, bumped to wake the publisher
} gate_t;

// The slowest subscriber's count, or a queue group's total.
uint64_t gate_progress(gate_t *g);

// Publisher: blocks until progress >= need or timeout_ns has passed; returns the progress seen.
uint64_t gate_wait(gate_t *g, uint64_t need, uint64_t timeout_ns);

// Subscriber thread, after publishing its new count: wakes the publisher when its target is reached.
void gate_notify(gate_t *g, uint64_t own_count);
