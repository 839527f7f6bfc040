// One-way latency at a steady rate: the publisher (this thread) sends one PUB at a time on an
// absolute schedule (rate msgs/s) and stamps each payload with its CLOCK_MONOTONIC send time
// (bytes 8..15, after the sequence number); each subscriber records, per message, the time the
// read that completed it returned minus that stamp. Both clocks are this machine's monotonic clock.
//
// Counting is as strict as in the throughput modes: every subscriber must receive every message in
// order, and the end-of-run PINGs make the counts final. With --interval-ms the run also reports,
// per interval, the server's RSS and the latency percentiles of the messages sent in it (soak).
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"
#include "pub.h"
#include "sub.h"

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

typedef struct {
  uint64_t rss_kb;
  double p50, p99, p999, max;  // µs
} interval_t;

int run_oneway(const opts_t *o) {
  char err[256];
  if (o->size < 16) {
    fprintf(stderr, "oneway needs --size >= 16 (sequence number + send time)\n");
    return 1;
  }
  int nsubs = o->subs > 0 ? o->subs : 1;
  uint64_t interval_ns = (uint64_t)(1e9 / o->rate);
  uint64_t warm = (uint64_t)(o->rate * (double)o->warmup_ms / 1000.0);
  uint64_t timed = (uint64_t)(o->rate * (double)o->duration_ms / 1000.0);
  if (timed == 0) timed = 1;
  uint64_t total = warm + timed;

  sub_t **subs = calloc((size_t)nsubs, sizeof *subs);
  for (int i = 0; i < nsubs; i++) {
    subs[i] = aligned_alloc(64, (sizeof(sub_t) + 63) & ~(size_t)63);
    memset(subs[i], 0, sizeof(sub_t));
    if (sub_open(subs[i], o, i, err, sizeof err) < 0) {
      fail("subscriber %d setup: %s", i, err);
      print_failure_json(o->mode);
      return 0;
    }
    subs[i]->lat = calloc(timed, sizeof(uint32_t));
    subs[i]->lat_from = warm;
    subs[i]->lat_to = total;
  }
  pub_t p = {.o = o, .subs = subs, .nsubs = nsubs, .gate = {.subs = subs, .n = nsubs}};
  p.window = o->window_msgs;
  int nthreads = o->sub_threads < nsubs ? o->sub_threads : nsubs;
  sub_thread_t threads[nthreads];
  pthread_t tids[nthreads];
  for (int t = 0; t < nthreads; t++) {
    int n = 0;
    sub_t **mine = calloc((size_t)nsubs, sizeof *mine);
    for (int i = t; i < nsubs; i += nthreads) mine[n++] = subs[i];
    sub_thread_start(&threads[t], mine, n, &p.gate);
    tids[t] = threads[t].tid;
  }
  if (conn_open(&p.conn, o->host, o->port, 0, "bench-pub", err, sizeof err) < 0 ||
      conn_write(&p.conn, "PING\r\n", 6) < 0 || conn_wait_pong(&p.conn, err, sizeof err) < 0) {
    fail("publisher setup: %s", err);
  }
  char frame[64 + 65536];
  if (o->size > 65536) {
    fprintf(stderr, "oneway: --size at most 65536\n");
    return 1;
  }
  size_t hdr_len = (size_t)snprintf(frame, 64, "PUB %s %d\r\n", BENCH_SUBJECT, o->size);
  size_t frame_len = hdr_len + (size_t)o->size + 2;
  memset(frame + hdr_len, 'x', (size_t)o->size);
  memcpy(frame + hdr_len + o->size, "\r\n", 2);

  size_t per_interval = o->interval_ms ? (size_t)(o->rate * (double)o->interval_ms / 1000.0) : 0;
  size_t nint = per_interval ? (size_t)((timed + per_interval - 1) / per_interval) : 0;
  interval_t *iv = calloc(nint ? nint : 1, sizeof *iv);

  cpu_sample_t ca = {0}, cb;
  uint64_t t0 = 0, start = now_ns() + 1000000ull, max_lag = 0, late = 0, stalls = 0;
  for (uint64_t seq = 0; seq < total && !failed(); seq++) {
    if (seq == warm) {
      cpu_sample(&ca, tids, nthreads, o->server_pid);
      t0 = now_ns();
    }
    if (seq - p.low > p.window) {  // a server far behind: wait rather than flood it (counted)
      p.low = gate_progress(&p.gate);
      if (seq - p.low > p.window) {
        stalls++;
        p.low = wait_progress(&p, seq - p.window / 2);
      }
    }
    uint64_t due = start + seq * interval_ns;
    uint64_t t = now_ns();
    if (t < due) sleep_until(due);
    uint64_t sent = now_ns();
    if (sent > due) {
      uint64_t lag = sent - due;
      if (lag > max_lag) max_lag = lag;
      if (lag > 100000) late++;
    }
    memcpy(frame + hdr_len, &seq, 8);
    memcpy(frame + hdr_len + 8, &sent, 8);
    if (conn_write(&p.conn, frame, frame_len) < 0) {
      fail("publisher write: %s", strerror(errno));
      break;
    }
    p.sent = seq + 1;
    if (per_interval && seq >= warm && (seq - warm) % per_interval == per_interval - 1) {
      iv[(seq - warm) / per_interval].rss_kb = process_rss_kb(o->server_pid);
    }
  }
  uint64_t t_pub = now_ns();
  if (!failed()) p.low = wait_progress(&p, p.sent);
  uint64_t t1 = now_ns();
  cpu_sample(&cb, tids, nthreads, o->server_pid);
  verify(&p, threads, nthreads);
  for (int t = 0; t < nthreads; t++) sub_thread_stop(&threads[t]);
  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }

  size_t n = (size_t)timed * (size_t)nsubs;
  uint32_t *all = malloc(n * sizeof *all);
  for (int i = 0; i < nsubs; i++) memcpy(all + (size_t)i * timed, subs[i]->lat, timed * sizeof(uint32_t));
  if (o->samples) {
    FILE *f = fopen(o->samples, "wb");
    uint64_t buf[4096];
    size_t k = 0;
    for (size_t i = 0; f && i < n; i++) {
      buf[k++] = all[i];
      if (k == 4096 || i == n - 1) {
        if (fwrite(buf, sizeof *buf, k, f) != k) break;
        k = 0;
      }
    }
    if (!f || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", o->samples);
      return 1;
    }
  }
  // Per interval: the messages sent in it, over all subscribers.
  uint32_t *tmp = nint ? malloc((size_t)per_interval * (size_t)nsubs * sizeof *tmp) : NULL;
  for (size_t k = 0; k < nint; k++) {
    uint64_t from = k * per_interval, to = from + per_interval < timed ? from + per_interval : timed;
    size_t m = 0;
    for (int i = 0; i < nsubs; i++)
      for (uint64_t s = from; s < to; s++) tmp[m++] = subs[i]->lat[s];
    qsort(tmp, m, sizeof *tmp, cmp_u32);
    iv[k].p50 = tmp[(size_t)((double)(m - 1) * 0.5)] / 1000.0;
    iv[k].p99 = tmp[(size_t)((double)(m - 1) * 0.99)] / 1000.0;
    iv[k].p999 = tmp[(size_t)((double)(m - 1) * 0.999)] / 1000.0;
    iv[k].max = tmp[m - 1] / 1000.0;
  }
  qsort(all, n, sizeof *all, cmp_u32);
#define PCT(q) ((double)all[(size_t)((double)(n - 1) * (q))] / 1000.0)
  double secs = (double)(t1 - t0) / 1e9;
  cpu_percent_t cpu = cpu_percent(&ca, &cb, t1 - t0);
  printf("{\"ok\":true,\"mode\":\"oneway\",\"subs\":%d,\"ws\":%s,\"size\":%d,\"rate\":%.1f,\"achieved_rate\":%.1f,"
         "\"messages\":%" PRIu64 ",\"samples\":%zu,\"seconds\":%.6f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
         "\"p999_us\":%.3f,\"max_us\":%.3f,\"min_us\":%.3f,\"max_send_lag_us\":%.1f,\"late_sends\":%" PRIu64
         ",\"window_stalls\":%" PRIu64 ",\"server_rss_kb\":%" PRIu64 ","
         "\"cpu\":{\"pub\":%.1f,\"subs\":%.1f,\"user\":%.1f,\"sys\":%.1f,\"server\":%.1f,\"other\":%.1f,\"steal\":%.1f},"
         "\"intervals\":[",
         nsubs, o->sub_ws ? "true" : "false", o->size, o->rate, (double)timed / ((double)(t_pub - t0) / 1e9), timed, n,
         secs, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), PCT(1.0), PCT(0), (double)max_lag / 1000.0, late, stalls,
         process_rss_kb(o->server_pid), cpu.main, cpu.others, cpu.user, cpu.sys, cpu.server, cpu.other_load,
         cpu.steal);
  for (size_t k = 0; k < nint; k++)
    printf("%s{\"t_s\":%.3f,\"rss_kb\":%" PRIu64 ",\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f}",
           k ? "," : "", (double)((k + 1) * o->interval_ms) / 1000.0, iv[k].rss_kb, iv[k].p50, iv[k].p99, iv[k].p999,
           iv[k].max);
  printf("]}\n");
  return 0;
}
