// What the kernel charges a sender for TCP over loopback, by write size (bench/loopback-send-cost.ts runs it).
//
// One sender thread writes `chunk` bytes at a time to each of `subs` sockets in turn (non-blocking,
// TCP_NODELAY, as natter's connections are); two reader threads drain them with epoll and 256 KiB reads,
// as the load generator's subscriber threads do. Prints one JSON line: the sender thread's CPU time (user
// and system) per KiB sent, the readers' together, the rate, and the sendto calls (and short writes).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 256
#define READERS 2
#define READ_BYTES (256 * 1024)

static int readSide[MAX_SUBS], writeSide[MAX_SUBS];
static int subs;
static volatile int stop;
static double readerCpu[READERS];

static double seconds(const struct timeval *t) { return t->tv_sec + t->tv_usec / 1e6; }

static double threadCpu(double *user, double *sys) {
  struct rusage r;
  getrusage(RUSAGE_THREAD, &r);
  if (user) *user = seconds(&r.ru_utime);
  if (sys) *sys = seconds(&r.ru_stime);
  return seconds(&r.ru_utime) + seconds(&r.ru_stime);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *reader(void *arg) {
  int k = (int)(long)arg;
  int ep = epoll_create1(0);
  for (int i = k; i < subs; i += READERS) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = readSide[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, readSide[i], &ev);
  }
  char *buf = malloc(READ_BYTES);
  struct epoll_event events[64];
  double start = threadCpu(NULL, NULL);
  while (!stop) {
    int n = epoll_wait(ep, events, 64, 100);
    for (int i = 0; i < n; i++)
      while (read(events[i].data.fd, buf, READ_BYTES) > 0) {}
  }
  readerCpu[k] = threadCpu(NULL, NULL) - start;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: send-cost <chunk bytes> <seconds> [subscribers (10)]\n");
    return 2;
  }
  size_t chunk = strtoul(argv[1], NULL, 10);
  double duration = atof(argv[2]);
  subs = argc > 3 ? atoi(argv[3]) : 10;
  if (subs < 1 || subs > MAX_SUBS || chunk == 0) return 2;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
  socklen_t addrLength = sizeof addr;
  if (bind(listener, (void *)&addr, sizeof addr) != 0 || listen(listener, MAX_SUBS) != 0 ||
      getsockname(listener, (void *)&addr, &addrLength) != 0) {
    perror("listen");
    return 1;
  }
  int one = 1;
  for (int i = 0; i < subs; i++) {
    readSide[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(readSide[i], (void *)&addr, sizeof addr) != 0 || (writeSide[i] = accept(listener, NULL, NULL)) < 0) {
      perror("connect");
      return 1;
    }
    setsockopt(writeSide[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(writeSide[i], F_SETFL, O_NONBLOCK);
    fcntl(readSide[i], F_SETFL, O_NONBLOCK);
  }
  pthread_t readers[READERS];
  for (int k = 0; k < READERS; k++) pthread_create(&readers[k], NULL, reader, (void *)(long)k);

  char *bytes = malloc(chunk);
  memset(bytes, 'x', chunk);
  double user0, sys0, user1, sys1;
  double start = now();
  threadCpu(&user0, &sys0);
  unsigned long long sent = 0, calls = 0, shortWrites = 0;
  while (now() - start < duration) {
    for (int i = 0; i < subs; i++) {
      size_t at = 0;
      while (at < chunk) {
        ssize_t n = send(writeSide[i], bytes + at, chunk - at, MSG_NOSIGNAL);
        calls++;
        if (n > 0) {
          at += n;
          sent += n;
          if (at < chunk) shortWrites++;
        } else if (n < 0 && errno != EAGAIN) {
          perror("send");
          return 1;
        } else {
          struct pollfd p = {.fd = writeSide[i], .events = POLLOUT};
          poll(&p, 1, 100);
        }
      }
    }
  }
  threadCpu(&user1, &sys1);
  double elapsed = now() - start;
  stop = 1;
  for (int k = 0; k < READERS; k++) pthread_join(readers[k], NULL);
  double kib = sent / 1024.0;
  double readersCpu = 0;
  for (int k = 0; k < READERS; k++) readersCpu += readerCpu[k];
  printf("{\"chunk\":%zu,\"subs\":%d,\"gbPerSec\":%.3f,\"senderUserNsPerKiB\":%.1f,\"senderSysNsPerKiB\":%.1f,"
         "\"readersNsPerKiB\":%.1f,\"calls\":%llu,\"shortWrites\":%llu}\n",
         chunk, subs, sent / elapsed / 1e9, (user1 - user0) / kib * 1e9, (sys1 - sys0) / kib * 1e9, readersCpu / kib * 1e9,
         calls, shortWrites);
  return 0;
}
