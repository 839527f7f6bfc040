// Run-wide failure flag: the first error message is kept, later ones are dropped.
#include <stdarg.h>

#include "common.h"

static atomic_int g_failed;
static char g_text[512];

void fail(const char *fmt, ...) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&g_failed, &expected, 1)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_text, sizeof g_text, fmt, ap);
  va_end(ap);
  atomic_store(&g_failed, 2);  // text is complete
}

int failed(void) { return atomic_load_explicit(&g_failed, memory_order_relaxed) != 0; }

const char *failure_text(void) {
  while (atomic_load(&g_failed) == 1) {
  }
  return g_text;
}

void print_failure_json(const char *mode) {
  printf("{\"ok\":false,\"mode\":\"%s\",\"error\":\"", mode);
  for (const char *s = failure_text(); *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar(*s >= 32 ? *s : ' ');
  }
  printf("\"}\n");
}
