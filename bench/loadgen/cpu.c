// CPU time of our own threads (per-thread clocks, getrusage) and of the server (/proc/<pid>/stat).
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static uint64_t ts_ns(struct timespec ts) { return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec; }
static uint64_t tv_ns(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull; }

static uint64_t process_cpu_ns(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  char *p = strrchr(text, ')');
  if (!p) return 0;
  unsigned long long utime = 0, stime = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return 0;
  return (utime + stime) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

// Whole-machine CPU time. IRQ/softirq time is left out: with IRQ time accounting it is not charged
// to any process, so it would show up as "other" load when it is really loopback traffic.
static void machine_cpu_ns(uint64_t *busy, uint64_t *steal) {
  *busy = *steal = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return;
  unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, st = 0;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq,
             &st) == 8) {
    uint64_t tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
    *busy = (user + nice + sys) * tick;
    *steal = st * tick;
  }
  fclose(f);
}

static pid_t extra_pids[16];
static int nextra;

void cpu_add_server_pids(const char *list) {
  for (const char *p = list; p && *p && nextra < 16; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    extra_pids[nextra++] = (pid_t)atoi(p);
  }
}

void cpu_sample(cpu_sample_t *s, const pthread_t *threads, int nthreads, pid_t server_pid) {
  memset(s, 0, sizeof *s);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  s->user_ns = tv_ns(ru.ru_utime);
  s->sys_ns = tv_ns(ru.ru_stime);
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  s->main_ns = ts_ns(ts);
  for (int i = 0; i < nthreads; i++) {
    clockid_t cid;
    if (pthread_getcpuclockid(threads[i], &cid) == 0 && clock_gettime(cid, &ts) == 0) s->others_ns += ts_ns(ts);
  }
  s->server_ns = process_cpu_ns(server_pid);
  for (int i = 0; i < nextra; i++) s->server_ns += process_cpu_ns(extra_pids[i]);
  machine_cpu_ns(&s->machine_ns, &s->steal_ns);
}

cpu_percent_t cpu_percent(const cpu_sample_t *a, const cpu_sample_t *b, uint64_t wall_ns) {
  double w = wall_ns ? (double)wall_ns / 100.0 : 1.0;
  cpu_percent_t p = {
      .user = (double)(b->user_ns - a->user_ns) / w,
      .sys = (double)(b->sys_ns - a->sys_ns) / w,
      .main = (double)(b->main_ns - a->main_ns) / w,
      .others = (double)(b->others_ns - a->others_ns) / w,
      .server = b->server_ns && a->server_ns ? (double)(b->server_ns - a->server_ns) / w : -1,
      .steal = (double)(b->steal_ns - a->steal_ns) / w,
  };
  double machine = (double)(b->machine_ns - a->machine_ns) / w;
  p.other_load = machine - p.user - p.sys - (p.server > 0 ? p.server : 0);
  if (p.other_load < 0) p.other_load = 0;  // clock-tick granularity (10 ms) can make it dip below 0
  return p;
}

uint64_t thread_cpu_ns(pthread_t t) {
  clockid_t cid;
  struct timespec ts;
  if (pthread_getcpuclockid(t, &cid) != 0 || clock_gettime(cid, &ts) != 0) return 0;
  return ts_ns(ts);
}

uint64_t process_rss_kb(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
  }
  fclose(f);
  return kb;
}
