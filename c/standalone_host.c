/*
 * The host hooks of c/engine.c for C programs that link the engine without
 * the addon (the benchmark floor, the fuzzer). In the addon, src/ supplies
 * them: JavaScript number formatting, V8's pow, and the thread-teardown poll.
 */
#include <math.h>
#include <stdio.h>
#include "engine.h"

int host_format_number(char* buf, size_t size, const char* fmt, double x) {
  (void)fmt;
  return snprintf(buf, size, "%.17g", x);
}

double host_pow(double x, double y) { return pow(x, y); }

/* No JavaScript thread to be torn down. */
bool host_should_abort(void) { return false; }
