// Shared helpers for the load generator: clocks, failure reporting, the sequence-number hash.
#pragma once
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  nanosleep(&ts, NULL);
}

// splitmix64 finalizer: queue-group members sum mix(seq) so that a lost message and a duplicate of
// another one cannot cancel out the way they would in a plain count.
static inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The first failure wins; every thread checks failed() to stop early. The run then prints
// {"ok":false,...} instead of a number.
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int failed(void);
const char *failure_text(void);

// Prints {"ok":false,"mode":...,"error":"<first failure>"} on stdout.
void print_failure_json(const char *mode);
