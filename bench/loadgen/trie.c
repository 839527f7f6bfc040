// Matching against a large trie with subjects no cache can hold: N subscriptions, then one
// publisher whose every message has a subject never seen before.
//
//   literal:  N subscriptions m.<hi>.<lo>.x (j = hi*1000 + lo, j < N) and one catch-all m.>
//   wildcard: N subscriptions m.<hi>.<lo>.*
//   message s is published on m.<hi>.<lo>.<s>, with j = (s * 7919) mod N (a permutation: consecutive
//   messages walk different branches), so every subject is new and every match walks the trie to
//   its last token. Each message matches exactly one subscription (the catch-all, or its own
//   wildcard), so the sink connections receive each message exactly once: they are checked as a
//   queue group is (increasing sequence per connection, counts and hash of sequence numbers add up).
//
// Also measured: how long subscribing takes (until the PONG after the last SUB), and the server's
// RSS before and after (per subscription cost).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"
#include "pub.h"
#include "sub.h"

#define STRIDE 7919u

static size_t put_u64(char *out, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

// One PUB frame for message seq at out; returns its length.
static size_t put_frame(char *out, uint64_t seq, uint64_t nsubs, int size) {
  uint64_t j = (seq * STRIDE) % nsubs;
  size_t n = 0;
  memcpy(out, "PUB m.", 6);
  n = 6;
  n += put_u64(out + n, j / 1000);
  out[n++] = '.';
  n += put_u64(out + n, j % 1000);
  out[n++] = '.';
  n += put_u64(out + n, seq);
  out[n++] = ' ';
  n += put_u64(out + n, (uint64_t)size);
  out[n++] = '\r';
  out[n++] = '\n';
  memcpy(out + n, &seq, 8);
  memset(out + n + 8, 'x', (size_t)size - 8);
  n += (size_t)size;
  out[n++] = '\r';
  out[n++] = '\n';
  return n;
}

static uint64_t publish_for(pub_t *p, char *batch, uint64_t ms) {
  const opts_t *o = p->o;
  uint64_t start = p->sent, end = now_ns() + ms * 1000000ull;
  size_t max_frame = 64 + (size_t)o->size;
  while (!failed() && now_ns() < end) {
    wait_window(p, p->sent + p->k);
    size_t len = 0;
    uint64_t k = 0;
    while (k < p->k && len + max_frame <= o->batch_bytes + max_frame) {
      len += put_frame(batch + len, p->sent + k, o->trie_subs, o->size);
      k++;
    }
    if (conn_write(&p->conn, batch, len) < 0) {
      fail("publisher write: %s", strerror(errno));
      break;
    }
    p->sent += k;
  }
  return p->sent - start;
}

static int subscribe_all(sub_t **sinks, int nsinks, const opts_t *o, char *err, size_t errlen) {
  size_t cap = 1 << 16;
  char *buf = malloc(cap + 128);
  for (int c = 0; c < nsinks; c++) {
    size_t len = 0;
    if (c == 0 && !o->trie_wild) len += (size_t)sprintf(buf, "SUB m.> 0\r\n");
    for (uint64_t j = (uint64_t)c; j < o->trie_subs; j += (uint64_t)nsinks) {
      len += (size_t)sprintf(buf + len, "SUB m.%" PRIu64 ".%" PRIu64 ".%s %" PRIu64 "\r\n", j / 1000, j % 1000,
                             o->trie_wild ? "*" : "x", j + 1);
      if (len >= cap) {
        if (conn_write(&sinks[c]->conn, buf, len) < 0) {
          snprintf(err, errlen, "write SUB: %s", strerror(errno));
          return -1;
        }
        len = 0;
      }
    }
    len += (size_t)sprintf(buf + len, "PING\r\n");
    if (conn_write(&sinks[c]->conn, buf, len) < 0) {
      snprintf(err, errlen, "write SUB: %s", strerror(errno));
      return -1;
    }
  }
  free(buf);
  for (int c = 0; c < nsinks; c++) {
    conn_set_timeout_ms(&sinks[c]->conn, 120000);  // a million SUBs may take a while
    if (conn_wait_pong(&sinks[c]->conn, err, errlen) < 0) return -1;
  }
  return 0;
}

int run_trie(const opts_t *o_in) {
  char err[256];
  opts_t o_copy = *o_in;
  o_copy.queue = 1;  // the sinks are checked as a queue group is
  const opts_t *o = &o_copy;
  int nsinks = o->sub_conns;
  sub_t **sinks = calloc((size_t)nsinks, sizeof *sinks);
  for (int i = 0; i < nsinks; i++) {
    sub_t *s = sinks[i] = aligned_alloc(64, (sizeof(sub_t) + 63) & ~(size_t)63);
    memset(s, 0, sizeof(sub_t));
    char name[32];
    snprintf(name, sizeof name, "bench-sink-%d", i);
    if (conn_open(&s->conn, o->host, o->port, 0, name, err, sizeof err) < 0) {
      fail("sink %d setup: %s", i, err);
      print_failure_json(o->mode);
      return 0;
    }
    s->index = i;
    s->queue = 1;
    s->any_subject = 1;
    s->size = (size_t)o->size;
    s->hdr[0] = 1;  // never matches: every MSG takes the general parser
    s->hdr_len = 1;
  }
  sleep_ns(300000000ull);
  uint64_t rss0 = process_rss_kb(o->server_pid);
  uint64_t ts0 = now_ns();
  if (subscribe_all(sinks, nsinks, o, err, sizeof err) < 0) {
    fail("subscribing: %s", err);
    print_failure_json(o->mode);
    return 0;
  }
  double sub_secs = (double)(now_ns() - ts0) / 1e9;
  sleep_ns(1000000000ull);
  uint64_t rss1 = process_rss_kb(o->server_pid);

  pub_t p = {.o = o, .subs = sinks, .nsubs = nsinks, .gate = {.subs = sinks, .n = nsinks, .queue = 1}};
  for (int i = 0; i < nsinks; i++) conn_set_nonblocking(&sinks[i]->conn);
  int nthreads = nsinks < 2 ? 1 : 2;
  sub_thread_t threads[nthreads];
  pthread_t tids[nthreads];
  for (int t = 0; t < nthreads; t++) {
    int n = 0;
    sub_t **mine = calloc((size_t)nsinks, sizeof *mine);
    for (int i = t; i < nsinks; i += nthreads) mine[n++] = sinks[i];
    sub_thread_start(&threads[t], mine, n, &p.gate);
    tids[t] = threads[t].tid;
  }
  if (conn_open(&p.conn, o->host, o->port, 0, "bench-pub", err, sizeof err) < 0 ||
      conn_write(&p.conn, "PING\r\n", 6) < 0 || conn_wait_pong(&p.conn, err, sizeof err) < 0) {
    fail("publisher setup: %s", err);
  }
  p.window = o->window_msgs;
  p.k = o->batch_bytes / (40 + (uint64_t)o->size);
  if (p.k > p.window / 4) p.k = p.window / 4;
  if (p.k < 1) p.k = 1;
  char *batch = malloc(p.k * (64 + (size_t)o->size) + 64);

  if (!failed() && o->warmup_ms) {
    publish_for(&p, batch, o->warmup_ms);
    drain(&p);
  }
  cpu_sample_t ca, cb;
  cpu_sample(&ca, tids, nthreads, o->server_pid);
  uint64_t t0 = now_ns();
  uint64_t published = failed() ? 0 : publish_for(&p, batch, o->duration_ms);
  drain(&p);
  uint64_t t1 = now_ns();
  cpu_sample(&cb, tids, nthreads, o->server_pid);
  verify(&p, threads, nthreads);
  for (int t = 0; t < nthreads; t++) sub_thread_stop(&threads[t]);
  uint64_t rss2 = process_rss_kb(o->server_pid);
  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }
  double secs = (double)(t1 - t0) / 1e9;
  cpu_percent_t cpu = cpu_percent(&ca, &cb, t1 - t0);
  printf("{\"ok\":true,\"mode\":\"trie\",\"kind\":\"%s\",\"trie_subs\":%" PRIu64 ",\"sub_conns\":%d,\"size\":%d,"
         "\"published\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"seconds\":%.6f,\"msgs_per_sec\":%.1f,"
         "\"matches_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"subscribe_seconds\":%.6f,\"subs_per_sec\":%.1f,"
         "\"rss_before_kb\":%" PRIu64 ",\"rss_subscribed_kb\":%" PRIu64 ",\"rss_end_kb\":%" PRIu64 ","
         "\"cpu\":{\"pub\":%.1f,\"subs\":%.1f,\"user\":%.1f,\"sys\":%.1f,\"server\":%.1f,\"other\":%.1f,\"steal\":%.1f}}\n",
         o->trie_wild ? "wildcard" : "literal", o->trie_subs, nsinks, o->size, published, published, secs,
         (double)published / secs, (double)published / secs, (double)published * o->size / secs / 1e6, sub_secs,
         (double)o->trie_subs / sub_secs, rss0, rss1, rss2, cpu.main, cpu.others, cpu.user, cpu.sys, cpu.server,
         cpu.other_load, cpu.steal);
  return 0;
}
