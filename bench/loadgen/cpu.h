// CPU accounting, to show whether the load generator (not the server) is the bottleneck.
#pragma once
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
  uint64_t user_ns, sys_ns;  // whole generator process (getrusage)
  uint64_t main_ns;          // calling thread (the publisher / requester)
  uint64_t others_ns;        // the threads passed in (subscribers / responder)
  uint64_t server_ns;        // server process from /proc/<pid>/stat, 0 if unknown
  uint64_t machine_ns;       // all processes on the machine (user + nice + system, /proc/stat)
  uint64_t steal_ns;         // time the hypervisor gave our vCPUs to someone else
} cpu_sample_t;

void cpu_sample(cpu_sample_t *s, const pthread_t *threads, int nthreads, pid_t server_pid);

// More server processes whose CPU counts in server_ns (a cluster's other nodes): --server-pids a,b.
void cpu_add_server_pids(const char *list);

// Percent of one core used between a and b over wall_ns, per field.
typedef struct {
  double user, sys, main, others, server;
  double other_load;  // machine minus generator minus server: other work disturbing the run
  double steal;
} cpu_percent_t;

cpu_percent_t cpu_percent(const cpu_sample_t *a, const cpu_sample_t *b, uint64_t wall_ns);

// CPU time of one thread (ns), 0 if unknown.
uint64_t thread_cpu_ns(pthread_t t);

// Resident set size of a process in KiB (VmRSS), 0 if unknown.
uint64_t process_rss_kb(pid_t pid);
