// Throughput scenarios: one publisher (this thread) writing PUB frames in large batches, N subscribers
// (plain or one queue group, TCP or WebSocket), or none (pub-only).
//
// Flow control: the publisher never runs more than a window of messages ahead of the slowest
// subscriber (queue group: of the sum delivered), so neither server buffers unboundedly or drops us
// as a slow consumer, and the figure is a sustained rate, not how fast a buffer fills.
//
// Counting: every payload carries its sequence number. Plain subscribers must see 0,1,2,... exactly;
// queue members an increasing subset, and at the end the members' counts must add up to the number
// published and their mix64(seq) sums to the publisher's. Anything else is a FAILURE, not a number.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"
#include "gate.h"
#include "sub.h"
#include "pub.h"




// Waits until progress reaches need; FAILURE if it stops moving for STALL_NS. Returns progress.
uint64_t wait_progress(pub_t *p, uint64_t need) {
  uint64_t last = gate_progress(&p->gate), since = now_ns();
  for (;;) {
    uint64_t cur = gate_wait(&p->gate, need, 100000000ull);
    if (cur >= need || failed()) return cur;
    if (cur != last) {
      last = cur;
      since = now_ns();
    } else if (now_ns() - since > STALL_NS) {
      fail("subscribers stopped receiving: %" PRIu64 " of %" PRIu64 " messages arrived (messages lost)", cur,
           p->sent);
      return cur;
    }
  }
}

// Before writing up to target: stay within the window. Once blocked, wait until half the window is
// free, so the publisher wakes once per half window, not once per batch.
void wait_window(pub_t *p, uint64_t target) {
  if (target - p->low <= p->window) return;
  p->low = gate_progress(&p->gate);
  if (target - p->low <= p->window) return;
  p->waits++;
  p->low = wait_progress(p, target - p->window / 2);
}

// Publishes in batches until ms have passed. Returns messages published.
static uint64_t publish_for(pub_t *p, uint64_t ms) {
  uint64_t start = p->sent, end = now_ns() + ms * 1000000ull;
  while (!failed() && now_ns() < end) {
    if (p->nsubs) wait_window(p, p->sent + p->k);
    for (uint64_t i = 0; i < p->k; i++) {
      uint64_t seq = p->sent + i;
      memcpy(p->batch + i * p->frame_len + p->hdr_len, &seq, 8);
    }
    if (conn_write(&p->conn, p->batch, p->k * p->frame_len) < 0) {
      fail("publisher write: %s", strerror(errno));
      break;
    }
    p->sent += p->k;
  }
  return p->sent - start;
}

// Waits until the subscribers have everything published (pub-only: until the server has read it).
void drain(pub_t *p) {
  char err[256];
  if (p->nsubs == 0) {
    if (conn_write(&p->conn, "PING\r\n", 6) < 0 || conn_wait_pong(&p->conn, err, sizeof err) < 0)
      fail("publisher flush: %s", err);
    return;
  }
  p->low = wait_progress(p, p->sent);
}

// After the run: PING on every connection. A PONG comes after everything the server had queued
// before it, so counts compared after the PONGs are final: a shortfall is loss, never "late".
void verify(pub_t *p, sub_thread_t *threads, int nthreads) {
  char err[256];
  if (failed()) return;
  if (p->o->relay) {  // a relay forwards PING as data: the strict sequence checks and counts must do
    for (int i = 0; i < p->nsubs; i++) {
      uint64_t got = atomic_load(&p->subs[i]->received);
      if (got != p->sent) fail("subscriber %d received %" PRIu64 " of %" PRIu64 " messages", i, got, p->sent);
    }
    return;
  }
  if (conn_write(&p->conn, "PING\r\n", 6) < 0 || conn_wait_pong(&p->conn, err, sizeof err) < 0) {
    fail("publisher flush: %s", err);
    return;
  }
  if (p->noise && (conn_write(p->noise, "PING\r\n", 6) < 0 || conn_wait_pong(p->noise, err, sizeof err) < 0)) {
    fail("unrelated subscriptions' connection: %s", err);  // e.g. it received a MSG it did not subscribe to
    return;
  }
  if (p->nsubs == 0) return;
  uint64_t pongs_before[p->nsubs];
  for (int i = 0; i < p->nsubs; i++) pongs_before[i] = atomic_load(&p->subs[i]->pongs);
  for (int t = 0; t < nthreads; t++) sub_thread_ping(&threads[t]);
  uint64_t deadline = now_ns() + 20ull * 1000000000ull;
  for (int i = 0; i < p->nsubs && !failed(); i++) {
    while (atomic_load(&p->subs[i]->pongs) == pongs_before[i]) {
      if (failed()) return;
      if (now_ns() > deadline) {
        fail("subscriber %d: no PONG within 20 s of the end", i);
        return;
      }
      sleep_ns(100000);
    }
  }
  if (!p->o->queue) {
    for (int i = 0; i < p->nsubs; i++) {
      uint64_t got = atomic_load(&p->subs[i]->received);
      if (got != p->sent) {
        fail("subscriber %d received %" PRIu64 " of %" PRIu64 " messages (%s)", i, got, p->sent,
             got < p->sent ? "lost" : "duplicates");
        return;
      }
    }
    return;
  }
  uint64_t total = 0, hash = 0, want = 0;
  for (int i = 0; i < p->nsubs; i++) {
    total += atomic_load(&p->subs[i]->received);
    hash += p->subs[i]->hash;  // safe: the thread is idle after the PONG
  }
  for (uint64_t s = 0; s < p->sent; s++) want += mix64(s);
  if (total != p->sent) {
    fail("queue group received %" PRIu64 " messages, %" PRIu64 " published (%s)", total, p->sent,
         total < p->sent ? "lost" : "duplicates");
  } else if (hash != want) {
    fail("queue group received %" PRIu64 " messages but not each exactly once (loss and duplicates)", total);
  }
}

// The unrelated subscriptions: a mix of literal and wildcard subjects that bench.tp never matches,
// some sharing its first token (so matching walks past them), on one connection that must receive nothing.
int noise_open(conn_t *c, const opts_t *o, char *err, size_t errlen) {
  if (conn_open(c, o->host, o->port, 0, "bench-noise", err, errlen) < 0) return -1;
  size_t cap = (size_t)o->noise_subs * 48 + 16, len = 0;
  char *cmds = malloc(cap);
  static const char *shapes[] = {"SUB bench.n%d %d\r\n", "SUB bench.n%d.* %d\r\n", "SUB noise.%d.> %d\r\n",
                                 "SUB *.n%d.x %d\r\n"};
  for (int i = 0; i < o->noise_subs; i++) len += (size_t)sprintf(cmds + len, shapes[i % 4], i, i + 1);
  len += (size_t)sprintf(cmds + len, "PING\r\n");
  int r = conn_write(c, cmds, len) < 0 || conn_wait_pong(c, err, errlen) < 0 ? -1 : 0;
  free(cmds);
  return r;
}

int run_throughput(const opts_t *o) {
  char err[256];
  int nsubs = o->subs;
  sub_t **subs = calloc((size_t)(nsubs ? nsubs : 1), sizeof *subs);
  for (int i = 0; i < nsubs; i++) {
    subs[i] = aligned_alloc(64, (sizeof(sub_t) + 63) & ~(size_t)63);
    memset(subs[i], 0, sizeof(sub_t));
    if (sub_open(subs[i], o, i, err, sizeof err) < 0) {
      fail("subscriber %d setup: %s", i, err);
      print_failure_json(o->mode);
      return 0;
    }
  }
  if (o->sub_ports && nsubs > 0 && cluster_subs_ready(o, subs, nsubs, err, sizeof err) < 0) {
    fail("cluster: %s", err);
    print_failure_json(o->mode);
    return 0;
  }
  pub_t p = {.o = o, .subs = subs, .nsubs = nsubs, .gate = {.subs = subs, .n = nsubs, .queue = o->queue}};
  int nthreads = nsubs ? o->sub_threads : 0;
  sub_thread_t threads[nthreads > 0 ? nthreads : 1];
  pthread_t tids[nthreads > 0 ? nthreads : 1];
  for (int t = 0; t < nthreads; t++) {
    // Round-robin the connections over the threads.
    int n = 0;
    sub_t **mine = calloc((size_t)nsubs, sizeof *mine);
    for (int i = t; i < nsubs; i += nthreads) mine[n++] = subs[i];
    sub_thread_start(&threads[t], mine, n, &p.gate);
    tids[t] = threads[t].tid;
  }

  conn_t noise;
  if (o->noise_subs > 0) {
    if (noise_open(&noise, o, err, sizeof err) < 0) fail("unrelated subscriptions: %s", err);
    p.noise = &noise;
  }
  if (conn_open(&p.conn, o->host, o->port, 0, "bench-pub", err, sizeof err) < 0 ||
      conn_write(&p.conn, "PING\r\n", 6) < 0 || conn_wait_pong(&p.conn, err, sizeof err) < 0) {
    fail("publisher setup: %s", err);
  }
  char hdr[64];
  // Through the relay the publisher sends what a subscriber receives: MSG frames, forwarded as they are.
  p.hdr_len = o->relay ? (size_t)snprintf(hdr, sizeof hdr, "MSG %s 1 %d\r\n", BENCH_SUBJECT, o->size)
                       : (size_t)snprintf(hdr, sizeof hdr, "PUB %s %d\r\n", BENCH_SUBJECT, o->size);
  p.frame_len = p.hdr_len + (size_t)o->size + 2;
  // The byte window bounds what all subscriber streams together hold in flight (fan-out 100 would
  // otherwise park 100x the window in the server), with a floor so the pipeline never runs dry.
  uint64_t streams = nsubs == 0 || o->queue ? 1 : (uint64_t)nsubs;
  p.window = o->window_msgs;
  if (p.window > o->window_bytes / (p.frame_len * streams)) p.window = o->window_bytes / (p.frame_len * streams);
  if (p.window < 256) p.window = 256;
  p.k = o->batch_bytes / p.frame_len;
  if (p.k > p.window / 4) p.k = p.window / 4;
  if (p.k < 1) p.k = 1;
  p.batch = malloc(p.k * p.frame_len);
  for (uint64_t i = 0; i < p.k; i++) {
    char *f = p.batch + i * p.frame_len;
    memcpy(f, hdr, p.hdr_len);
    memset(f + p.hdr_len, 'x', (size_t)o->size);
    memcpy(f + p.hdr_len + o->size, "\r\n", 2);
  }

  // Warm-up (untimed): lets the server's JIT, caches and socket buffers settle.
  if (!failed() && o->warmup_ms) {
    publish_for(&p, o->warmup_ms);
    drain(&p);
  }
  uint64_t waits_before = p.waits;
  cpu_sample_t ca, cb;
  cpu_sample(&ca, tids, nthreads, o->server_pid);
  uint64_t t0 = now_ns();
  uint64_t published = failed() ? 0 : publish_for(&p, o->duration_ms);
  uint64_t t_pub = now_ns();
  drain(&p);
  uint64_t t1 = now_ns();
  cpu_sample(&cb, tids, nthreads, o->server_pid);
  verify(&p, threads, nthreads);
  for (int t = 0; t < nthreads; t++) sub_thread_stop(&threads[t]);

  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }
  double secs = (double)(t1 - t0) / 1e9;
  uint64_t delivered = nsubs == 0 || o->queue ? published : published * (uint64_t)nsubs;
  cpu_percent_t cpu = cpu_percent(&ca, &cb, t1 - t0);
  printf("{\"ok\":true,\"mode\":\"throughput\",\"subs\":%d,\"queue\":%s,\"ws\":%s,\"size\":%d,"
         "\"published\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"seconds\":%.6f,\"publish_seconds\":%.6f,"
         "\"msgs_per_sec\":%.1f,\"pub_msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
         "\"total_published\":%" PRIu64 ",\"window_msgs\":%" PRIu64 ",\"batch_msgs\":%" PRIu64
         ",\"window_waits\":%" PRIu64 ",\"sub_threads\":%d,\"noise_subs\":%d,\"server_rss_kb\":%" PRIu64 ","
         "\"cpu\":{\"pub\":%.1f,\"subs\":%.1f,\"user\":%.1f,\"sys\":%.1f,\"server\":%.1f,\"other\":%.1f,\"steal\":%.1f}}\n",
         nsubs, o->queue ? "true" : "false", o->sub_ws ? "true" : "false", o->size, published, delivered, secs,
         (double)(t_pub - t0) / 1e9, (double)delivered / secs, (double)published / secs,
         (double)delivered * o->size / secs / 1e6, p.sent, p.window, p.k, p.waits - waits_before, nthreads,
         o->noise_subs, process_rss_kb(o->server_pid),
         cpu.main, cpu.others, cpu.user, cpu.sys, cpu.server, cpu.other_load, cpu.steal);
  return 0;
}
