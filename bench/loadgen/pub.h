// The publisher side of the throughput-style modes: its connection, its batch of frames, flow
// control against the subscribers (see gate.h), and the end-of-run verification.
#pragma once
#include <stdint.h>

#include "conn.h"
#include "gate.h"
#include "opts.h"
#include "sub.h"

#define STALL_NS (5ull * 1000000000ull)  // no progress for this long: messages were lost

typedef struct {
  const opts_t *o;
  conn_t conn;
  char *batch;  // k PUB frames; the sequence number is patched into each before every write
  size_t frame_len, hdr_len;
  uint64_t k;       // frames per write
  uint64_t window;  // messages
  uint64_t sent;
  uint64_t low;     // last seen progress (a lower bound: progress only grows)
  uint64_t waits;   // times the publisher had to wait for subscribers
  sub_t **subs;
  int nsubs;
  gate_t gate;
  conn_t *noise;  // connection of the unrelated subscriptions, or NULL
} pub_t;

// Waits until progress reaches need; FAILURE if it stops moving for STALL_NS. Returns progress.
uint64_t wait_progress(pub_t *p, uint64_t need);
// Before writing up to target: stay within the window (once blocked, until half of it is free).
void wait_window(pub_t *p, uint64_t target);
// Waits until the subscribers have everything published (pub-only: until the server has read it).
void drain(pub_t *p);
// PING on every connection; then counts (and a queue group's hash) must match what was published.
void verify(pub_t *p, sub_thread_t *threads, int nthreads);
// Opens the connection holding o->noise_subs unrelated subscriptions.
int noise_open(conn_t *c, const opts_t *o, char *err, size_t errlen);
