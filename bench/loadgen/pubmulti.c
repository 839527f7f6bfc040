// Pub-only with several publishers at once: each thread has its own connection and writes PUB
// frames in large batches, as the single publisher does; nothing subscribes. Each phase ends when
// every publisher has its PONG, so every PUB before it was read by the server. The figure is all
// publishers' messages together per second.
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"
#include "sub.h"

typedef struct {
  const opts_t *o;
  int index;
  conn_t conn;
  pthread_t tid;
  uint64_t published;  // timed phase
  pthread_barrier_t *barrier;
} mpub_t;

static uint64_t publish_for(mpub_t *m, char *batch, size_t k, size_t frame_len, uint64_t ms) {
  uint64_t n = 0, end = now_ns() + ms * 1000000ull;
  while (!failed() && now_ns() < end) {
    if (conn_write(&m->conn, batch, k * frame_len) < 0) {
      fail("publisher %d write: %s", m->index, strerror(errno));
      break;
    }
    n += k;
  }
  return n;
}

static void flush_pong(mpub_t *m) {
  char err[256];
  if (failed()) return;
  if (conn_write(&m->conn, "PING\r\n", 6) < 0 || conn_wait_pong(&m->conn, err, sizeof err) < 0)
    fail("publisher %d flush: %s", m->index, err);
}

static void *mpub_main(void *arg) {
  mpub_t *m = arg;
  const opts_t *o = m->o;
  char hdr[64];
  size_t hdr_len = (size_t)snprintf(hdr, sizeof hdr, "PUB %s %d\r\n", BENCH_SUBJECT, o->size);
  size_t frame_len = hdr_len + (size_t)o->size + 2;
  size_t k = o->batch_bytes / frame_len;
  if (k < 1) k = 1;
  char *batch = malloc(k * frame_len);
  for (size_t i = 0; i < k; i++) {
    char *f = batch + i * frame_len;
    memcpy(f, hdr, hdr_len);
    memset(f + hdr_len, 'x', (size_t)o->size);
    memcpy(f + hdr_len + o->size, "\r\n", 2);
  }
  pthread_barrier_wait(m->barrier);  // 1: all connected
  if (o->warmup_ms) publish_for(m, batch, k, frame_len, o->warmup_ms);
  flush_pong(m);
  pthread_barrier_wait(m->barrier);  // 2: warm-up read by the server; main samples CPU and starts the clock
  pthread_barrier_wait(m->barrier);  // 3: go
  m->published = publish_for(m, batch, k, frame_len, o->duration_ms);
  flush_pong(m);
  pthread_barrier_wait(m->barrier);  // 4: everything read
  pthread_barrier_wait(m->barrier);  // 5: main has read our CPU clock
  free(batch);
  return NULL;
}

int run_pub_multi(const opts_t *o) {
  char err[256];
  int n = o->pubs;
  mpub_t *pubs = calloc((size_t)n, sizeof *pubs);
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "bench-pub-%d", i);
    pubs[i] = (mpub_t){.o = o, .index = i, .barrier = &barrier};
    if (conn_open(&pubs[i].conn, o->host, o->port, 0, name, err, sizeof err) < 0 ||
        conn_write(&pubs[i].conn, "PING\r\n", 6) < 0 || conn_wait_pong(&pubs[i].conn, err, sizeof err) < 0) {
      fail("publisher %d setup: %s", i, err);
      print_failure_json(o->mode);
      return 0;
    }
  }
  for (int i = 0; i < n; i++) {
    pthread_create(&pubs[i].tid, NULL, mpub_main, &pubs[i]);
    tids[i] = pubs[i].tid;
  }
  pthread_barrier_wait(&barrier);  // 1
  pthread_barrier_wait(&barrier);  // 2
  uint64_t per0[n];
  for (int i = 0; i < n; i++) per0[i] = thread_cpu_ns(tids[i]);
  cpu_sample_t ca, cb;
  cpu_sample(&ca, tids, n, o->server_pid);
  uint64_t t0 = now_ns();
  pthread_barrier_wait(&barrier);  // 3
  pthread_barrier_wait(&barrier);  // 4
  uint64_t t1 = now_ns();
  cpu_sample(&cb, tids, n, o->server_pid);
  double busiest = 0;
  for (int i = 0; i < n; i++) {
    double pct = (double)(thread_cpu_ns(tids[i]) - per0[i]) / ((double)(t1 - t0) / 100.0);
    if (pct > busiest) busiest = pct;
  }
  pthread_barrier_wait(&barrier);  // 5
  for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }
  uint64_t published = 0;
  for (int i = 0; i < n; i++) published += pubs[i].published;
  double secs = (double)(t1 - t0) / 1e9;
  cpu_percent_t cpu = cpu_percent(&ca, &cb, t1 - t0);
  // "pub" is the busiest publisher thread (what could limit the figure); "subs" all of them together.
  printf("{\"ok\":true,\"mode\":\"throughput\",\"pubs\":%d,\"subs\":0,\"queue\":false,\"ws\":false,\"size\":%d,"
         "\"published\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"seconds\":%.6f,"
         "\"msgs_per_sec\":%.1f,\"pub_msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
         "\"cpu\":{\"pub\":%.1f,\"subs\":%.1f,\"user\":%.1f,\"sys\":%.1f,\"server\":%.1f,\"other\":%.1f,\"steal\":%.1f}}\n",
         n, o->size, published, published, secs, (double)published / secs, (double)published / secs,
         (double)published * o->size / secs / 1e6, busiest, cpu.others, cpu.user, cpu.sys, cpu.server,
         cpu.other_load, cpu.steal);
  return 0;
}
