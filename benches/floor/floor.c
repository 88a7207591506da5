/*
 * The benchmark floor: the Microvium engine, built with this project's port
 * (c/microvium_port.h) and glue (c/engine.c), driven straight from C with no
 * JavaScript boundary. It runs the same snapshots and workloads as the
 * JavaScript engines in benches/run.js, so the difference between the two is
 * what the boundary costs.
 *
 * Usage:
 *   floor run <main.mvm> <restore.mvm> [--budget-ms N] [--min-batches N] [--only a,b]
 *   floor memory <restore.mvm> <count>
 *
 * run prints JSON lines, like benches/worker.js: {"start": name} before each
 * workload, {"workload": name, "ns": median ns per operation, ...} after it,
 * then {"done": true}. memory prints one JSON object. Export ids match
 * benches/guest.js.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <malloc.h>
#include <unistd.h>
#include "engine.h"

/* The host hooks come from c/standalone_host.c and the glue API is declared
 * in c/engine.h. */

/* ---- Helpers ------------------------------------------------------------ */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char* what, int err) {
  fprintf(stderr, "floor: %s failed (error %d)\n", what, err);
  exit(1);
}

static uint8_t* read_file(const char* path, size_t* out_size) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
  fclose(f);
  *out_size = (size_t)n;
  return buf;
}

/* Import 1 (and any other id) is the identity function `x => x`. */
static mvm_TeError host_identity(mvm_VM* vm, mvm_HostFunctionID id, mvm_Value* result,
                                 mvm_Value* args, uint8_t argCount) {
  (void)vm; (void)id;
  *result = argCount ? args[0] : (mvm_Value)0x01; /* undefined */
  return MVM_E_SUCCESS;
}

static mvm_TeError resolve_import(mvm_HostFunctionID id, void* context, mvm_TfHostFunction* out) {
  (void)id; (void)context;
  *out = host_identity;
  return MVM_E_SUCCESS;
}

/* ---- State shared by the workloads -------------------------------------- */

typedef struct Floor {
  GlueContext ctx;           /* the VM running the main snapshot */
  mvm_Value fn[9];           /* exports 1..8 (functions live in bytecode) */
  mvm_Handle held;           /* export 7's object, held across calls */
  mvm_Handle key[6];         /* property keys x y z a b c */
  mvm_Handle scratch;        /* result slot that must survive allocation */
  const uint8_t* restore_bytes;
  size_t restore_size;
  char str10[11];
  char str1k[1025];
  char out_buf[2048];        /* strings are copied out, as a host would */
} Floor;

static volatile double sink;

static double call1(Floor* F, mvm_Value fn, mvm_Value* args, uint8_t argc, mvm_Value* out) {
  int err = glue_call(&F->ctx, fn, NULL, out, args, argc);
  if (err) die("call", err);
  return 0;
}

static mvm_Value int_value(Floor* F, int32_t i) {
  /* Small integers are encoded without allocation by the engine. */
  return mvm_newInt32(F->ctx.vm, i);
}

/* Each batch function runs n operations, returns the elapsed nanoseconds of
 * the timed part, and adds to *check a per-operation check value that does
 * not depend on n (benches/run.js compares it across engines). */
typedef double (*BatchFn)(Floor* F, long n, double* check);

static double w_restore(Floor* F, long n, double* check) {
  GlueContext* vms = calloc((size_t)n, sizeof(GlueContext));
  if (!vms) die("calloc", 0);
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    int err = glue_restore(&vms[i], F->restore_bytes, F->restore_size, resolve_import);
    if (err) die("restore", err);
  }
  double t = now_ns() - t0;
  for (long i = 0; i < n; i++) glue_free_vm(&vms[i], false);
  free(vms);
  *check += 1;
  return t;
}

static double w_call(Floor* F, long n, double* check) {
  double sum = 0;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    mvm_Value args[2] = { int_value(F, (int32_t)(i & 1023)), int_value(F, 1) };
    mvm_Value r;
    call1(F, F->fn[1], args, 2, &r);
    sum += glue_to_float64(&F->ctx, r) - (double)(i & 1023);
  }
  double t = now_ns() - t0;
  *check += sum / (double)n;  /* 1 when every result was right */
  return t;
}

/* One operation is one crossing; the guest makes them in runs of 1,000 (so
 * its loop counter stays a small integer), hence n is rounded up to that. */
static double w_crossing(Floor* F, long n, double* check) {
  long thousands = (n + 999) / 1000;
  mvm_Value args[1] = { int_value(F, (int32_t)thousands) };
  mvm_Value r;
  double t0 = now_ns();
  call1(F, F->fn[2], args, 1, &r);
  double t = now_ns() - t0;
  *check += glue_to_float64(&F->ctx, r);
  return t * (double)n / (double)(thousands * 1000);
}

static double w_objects(Floor* F, long n, double* check) {
  double t = 0;
  for (long i = 0; i < n; i++) {
    mvm_Value args[1] = { int_value(F, 100) };
    mvm_Value r;
    double t0 = now_ns();
    call1(F, F->fn[4], args, 1, &r);
    t += now_ns() - t0;
    *check += glue_to_float64(&F->ctx, r) / (double)n;
  }
  return t;
}

static double w_closures(Floor* F, long n, double* check) {
  double t = 0;
  for (long i = 0; i < n; i++) {
    mvm_Value args[2] = { int_value(F, 1000), int_value(F, 100) };
    mvm_Value r;
    double t0 = now_ns();
    call1(F, F->fn[5], args, 2, &r);
    t += now_ns() - t0;
    *check += glue_to_float64(&F->ctx, r) / (double)n;
  }
  return t;
}

static double string_round_trips(Floor* F, long n, double* check, const char* s, size_t len) {
  size_t total = 0;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    mvm_Value arg, r;
    int err = glue_new_string(&F->ctx, s, len, &arg);
    if (err) die("new string", err);
    call1(F, F->fn[6], &arg, 1, &r);
    const char* p; size_t size;
    err = glue_string_utf8(&F->ctx, r, &p, &size);
    if (err) die("string utf8", err);
    memcpy(F->out_buf, p, size);
    total += size;
  }
  double t = now_ns() - t0;
  *check += (double)total / (double)n;
  return t;
}

static double w_str10(Floor* F, long n, double* check) {
  return string_round_trips(F, n, check, F->str10, 10);
}

static double w_str1k(Floor* F, long n, double* check) {
  return string_round_trips(F, n, check, F->str1k, 1024);
}

static double get_number(Floor* F, mvm_Handle* obj, mvm_Handle* key) {
  int err = glue_get_property(&F->ctx, &obj->_value, &key->_value, &F->scratch._value);
  if (err) die("get property", err);
  return glue_to_float64(&F->ctx, F->scratch._value);
}

static double w_proxy3(Floor* F, long n, double* check) {
  double sum = 0;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    sum += get_number(F, &F->held, &F->key[0]);
    sum += get_number(F, &F->held, &F->key[1]);
    sum += get_number(F, &F->held, &F->key[2]);
  }
  double t = now_ns() - t0;
  *check += sum / (double)n;
  return t;
}

static double w_objret(Floor* F, long n, double* check) {
  double sum = 0;
  mvm_Handle obj;
  glue_handle_init(&F->ctx, &obj);
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    call1(F, F->fn[8], NULL, 0, &obj._value);
    sum += get_number(F, &obj, &F->key[3]);
    int err = glue_get_property(&F->ctx, &obj._value, &F->key[4]._value, &F->scratch._value);
    if (err) die("get property", err);
    const char* p; size_t size;
    err = glue_string_utf8(&F->ctx, F->scratch._value, &p, &size);
    if (err) die("string utf8", err);
    memcpy(F->out_buf, p, size);
    sum += (double)size;
    err = glue_get_property(&F->ctx, &obj._value, &F->key[5]._value, &F->scratch._value);
    if (err) die("get property", err);
    sum += mvm_toBool(F->ctx.vm, F->scratch._value) ? 1 : 0;
  }
  double t = now_ns() - t0;
  mvm_releaseHandle(F->ctx.vm, &obj);
  *check += sum / (double)n;
  return t;
}

/* ---- Measurement -------------------------------------------------------- */

typedef struct Workload {
  const char* name;
  BatchFn fn;
  long max_batch;  /* upper bound on operations per batch */
} Workload;

static const Workload WORKLOADS[] = {
  { "restore",  w_restore,  20000 },
  { "call",     w_call,     1L << 24 },
  { "crossing", w_crossing, 8000000 },
  { "objects",  w_objects,  1 },
  { "closures", w_closures, 1 },
  { "str10",    w_str10,    1L << 24 },
  { "str1k",    w_str1k,    1L << 22 },
  { "proxy3",   w_proxy3,   1L << 24 },
  { "objret",   w_objret,   500 },  /* capped as in worker.js */
};

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

/* Grow the batch until it takes about a tenth of the budget, then run batches
 * until the budget is spent (at least min_batches) and report the median
 * per-operation time. */
static void measure(Floor* F, const Workload* w, double budget_ns, int min_batches) {
  double check = 0;
  long n = 1;
  double target = budget_ns / 10;
  /* warm-up, then calibration */
  double dummy = 0;
  w->fn(F, 1, &dummy);
  while (n < w->max_batch) {
    double t = w->fn(F, n, &dummy);
    if (t >= target) break;
    long next = t > 0 ? (long)(n * (target / t) * 1.2) : n * 10;
    if (next <= n) next = n * 2;
    if (next > n * 10) next = n * 10;
    n = next > w->max_batch ? w->max_batch : next;
  }
  double samples[1000];
  int count = 0;
  double start = now_ns();
  while (count < 1000 && (count < min_batches || now_ns() - start < budget_ns)) {
    double t = w->fn(F, n, &check);
    samples[count++] = t / (double)n;
  }
  qsort(samples, (size_t)count, sizeof(double), cmp_double);
  double med = count % 2 ? samples[count / 2] : (samples[count / 2 - 1] + samples[count / 2]) / 2;
  printf("{\"workload\":\"%s\",\"ns\":%.3f,\"batches\":%d,\"batch\":%ld,\"check\":%.17g}\n",
         w->name, med, count, n, check / count);
  fflush(stdout);
}

static long rss_bytes(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static int run_memory(const char* path, long count) {
  size_t size;
  uint8_t* bytes = read_file(path, &size);
  GlueContext* vms = calloc((size_t)count + 1, sizeof(GlueContext));
  /* one VM first, so that code pages and allocator arenas are warm */
  int err = glue_restore(&vms[count], bytes, size, resolve_import);
  if (err) die("restore", err);
  malloc_trim(0);
  long rss0 = rss_bytes();
  struct mallinfo2 m0 = mallinfo2();
  for (long i = 0; i < count; i++) {
    err = glue_restore(&vms[i], bytes, size, resolve_import);
    if (err) die("restore", err);
  }
  long rss1 = rss_bytes();
  struct mallinfo2 m1 = mallinfo2();
  mvm_TsMemoryStats stats;
  mvm_getMemoryStats(vms[0].vm, &stats);
  printf("{\"engine\":\"floor\",\"count\":%ld,\"rssPerVm\":%.1f,\"mallocPerVm\":%.1f,"
         "\"engineTotalSize\":%zu,\"snapshotBytes\":%zu}\n",
         count, (double)(rss1 - rss0) / count,
         (double)((long)m1.uordblks - (long)m0.uordblks) / count,
         stats.totalSize, size);
  for (long i = 0; i <= count; i++) glue_free_vm(&vms[i], false);
  free(vms);
  free(bytes);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "memory") == 0) {
    return run_memory(argv[2], atol(argv[3]));
  }
  if (argc < 4 || strcmp(argv[1], "run") != 0) {
    fprintf(stderr, "usage: floor run <main.mvm> <restore.mvm> [--budget-ms N] [--min-batches N] [--only a,b]\n"
                    "       floor memory <restore.mvm> <count>\n");
    return 2;
  }
  double budget_ms = 300;
  int min_batches = 3;
  const char* only = NULL;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--budget-ms")) budget_ms = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--min-batches")) min_batches = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
  }

  static Floor F;  /* zeroed, fixed address (the engine keeps &F.ctx) */
  size_t main_size;
  uint8_t* main_bytes = read_file(argv[2], &main_size);
  F.restore_bytes = read_file(argv[3], &F.restore_size);
  for (int i = 0; i < 10; i++) F.str10[i] = (char)('a' + i);
  for (int i = 0; i < 1024; i++) F.str1k[i] = (char)('a' + i % 26);

  int err = glue_restore(&F.ctx, main_bytes, main_size, resolve_import);
  if (err) die("restore main", err);
  for (uint16_t id = 1; id <= 8; id++) {
    err = glue_resolve_export(&F.ctx, id, &F.fn[id]);
    if (err) die("resolve export", err);
  }
  glue_handle_init(&F.ctx, &F.held);
  glue_handle_init(&F.ctx, &F.scratch);
  static const char* names = "xyzabc";
  for (int i = 0; i < 6; i++) {
    glue_handle_init(&F.ctx, &F.key[i]);
    err = glue_new_string(&F.ctx, &names[i], 1, &F.key[i]._value);
    if (err) die("new string", err);
  }
  mvm_Value r;
  call1(&F, F.fn[7], NULL, 0, &F.held._value);
  mvm_Value n1000 = int_value(&F, 1000);
  call1(&F, F.fn[3], &n1000, 1, &r);  /* build the 1,000 objects */

  for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0]; i++) {
    const Workload* w = &WORKLOADS[i];
    if (only) {
      /* match a whole name in the comma-separated list */
      size_t len = strlen(w->name);
      const char* p = only;
      int found = 0;
      while ((p = strstr(p, w->name)) != NULL) {
        if ((p == only || p[-1] == ',') && (p[len] == 0 || p[len] == ',')) { found = 1; break; }
        p += len;
      }
      if (!found) continue;
    }
    printf("{\"start\":\"%s\"}\n", w->name);
    fflush(stdout);
    measure(&F, w, budget_ms * 1e6, min_batches);
  }
  printf("{\"done\":true}\n");

  mvm_releaseHandle(F.ctx.vm, &F.held);
  mvm_releaseHandle(F.ctx.vm, &F.scratch);
  for (int i = 0; i < 6; i++) mvm_releaseHandle(F.ctx.vm, &F.key[i]);
  glue_free_vm(&F.ctx, false);
  free(main_bytes);
  free((void*)F.restore_bytes);
  return 0;
}
