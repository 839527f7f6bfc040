/*
 * Lets natter's musl binary run on a Debian machine that has musl's loader (Debian's `musl` package)
 * but no libstdc++ built for musl (Alpine has it: `apk add libstdc++`; Debian does not package it).
 * The binary then loads Debian's glibc-built libstdc++.so.6 and libgcc_s.so.1, which ask for a few
 * glibc-only symbols; this library, built with musl-gcc and named ld-linux-x86-64.so.2 (a library
 * libstdc++ lists as needed), provides them, as Alpine's gcompat does. Used only by the tests and
 * scripts/device-figures.ts (scripts/foreign.ts builds it); never shipped.
 */
#include <link.h>
#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* glibc 2.32+: libstdc++ skips atomic reference counts while this is non-zero; 0 is always safe. */
char __libc_single_threaded = 0;

uint32_t arc4random(void) {
  uint32_t x = 0;
  getentropy(&x, sizeof x);
  return x;
}

size_t __strftime_l(char *s, size_t max, const char *format, const struct tm *tm, locale_t loc) {
  return strftime_l(s, max, format, tm, loc);
}

/* thread_local destructors: not run (a thread's C++ thread_locals leak at its exit). */
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) {
  (void)dtor; (void)obj; (void)dso;
  return 0;
}

/* glibc 2.35's _dl_find_object, which libgcc_s's unwinder uses to find exception tables; from dl_iterate_phdr. */
struct dl_find_object {
  unsigned long long dlfo_flags;
  void *dlfo_map_start;
  void *dlfo_map_end;
  void *dlfo_link_map;
  void *dlfo_eh_frame;
  unsigned long long reserved[7];
};

struct lookup { uintptr_t pc; struct dl_find_object *out; int found; };

static int find_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct lookup *l = data;
  uintptr_t lo = UINTPTR_MAX, hi = 0, eh = 0;
  int contains = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD) {
      if (start < lo) lo = start;
      if (start + ph->p_memsz > hi) hi = start + ph->p_memsz;
      if (l->pc >= start && l->pc < start + ph->p_memsz) contains = 1;
    } else if (ph->p_type == PT_GNU_EH_FRAME) {
      eh = start;
    }
  }
  if (!contains) return 0;
  l->out->dlfo_flags = 0;
  l->out->dlfo_map_start = (void *)lo;
  l->out->dlfo_map_end = (void *)hi;
  l->out->dlfo_link_map = NULL;
  l->out->dlfo_eh_frame = (void *)eh;
  l->found = 1;
  return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *result) {
  struct lookup l = { (uintptr_t)pc, result, 0 };
  dl_iterate_phdr(find_object, &l);
  return l.found ? 0 : -1;
}

/* libgcc_s defines these with a hidden symbol version, which musl's loader does not resolve. */
struct { unsigned int vendor, type, subtype; unsigned int features[1]; } __cpu_model;
int __cpu_indicator_init(void) { return 0; }
