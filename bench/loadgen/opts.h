// Command-line options of the load generator (see usage() in main.c).
#pragma once
#include <stdint.h>
#include <sys/types.h>

typedef struct {
  const char *mode;  // "throughput" or "latency"
  const char *host;
  int port;          // NATS TCP port (publisher, requester, responder, TCP subscribers)
  int ws_port;       // WebSocket port (subscribers when sub_ws)
  int subs;          // 0 = pub-only
  int queue;         // subscribers form one queue group
  int sub_ws;        // subscribers connect over WebSocket
  int sub_threads;   // epoll threads sharing the subscriber connections
  int size;          // payload bytes
  uint64_t warmup_ms, duration_ms;
  uint64_t window_msgs;   // publisher may run at most this many messages ahead of the slowest subscriber
  uint64_t window_bytes;  // ... and at most this many frame bytes ahead
  uint64_t batch_bytes;   // bytes of PUB frames per write()
  pid_t server_pid;       // for server CPU%
  const char *samples;    // latency: write the round-trip samples (uint64 ns, little endian) here
} opts_t;

int run_throughput(const opts_t *o);
int run_latency(const opts_t *o);
