// Subscribers: each connection parses its MSG frames and checks every sequence number; a few epoll
// threads share all subscriber connections.
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conn.h"
#include "gate.h"
#include "opts.h"

#define BENCH_SUBJECT "bench.tp"

struct sub {
  conn_t conn;
  int index;
  int queue;          // 0: must see every message in order; 1: queue member, sees an increasing subset
  char hdr[96];       // the exact MSG control line we expect: the memcmp fast path
  size_t hdr_len;
  size_t size;
  uint64_t next_seq;  // plain: the next sequence expected; queue: the lowest acceptable next one
  uint64_t hash;      // queue: sum of mix64(seq) over what this member received
  uint64_t count;
  int any_subject;    // trie: MSGs arrive on many subjects (any accepted; order still checked)
  // oneway: one-way latency per message, indexed by seq - lat_from (payload bytes 8..15 hold the
  // publisher's CLOCK_MONOTONIC send time); only seqs in [lat_from, lat_to) are recorded.
  uint32_t *lat;
  uint64_t lat_from, lat_to;
  // Read by the publisher for flow control: on their own cache line so parsing does not bounce it.
  _Alignas(64) _Atomic uint64_t received;
  _Atomic uint64_t pongs;
  char pad[48];
};

typedef struct {
  sub_t **subs;
  int n;
  gate_t *gate;
  int epfd, evfd;  // evfd wakes the thread: a PING request, or stop
  pthread_t tid;
} sub_thread_t;

// Connects, subscribes (to the index-th subject of o->sub_subjects, round-robin), and waits for the
// PONG that proves the SUB is registered.
int sub_open(sub_t *s, const opts_t *o, int index, char *err, size_t errlen);

int sub_thread_start(sub_thread_t *t, sub_t **subs, int n, gate_t *gate);
// Asks the thread to send PING on each of its connections (their PONGs count in sub_t.pongs).
void sub_thread_ping(sub_thread_t *t);
void sub_thread_stop(sub_thread_t *t);
