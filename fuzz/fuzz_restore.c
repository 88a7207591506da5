/*
 * libFuzzer harness for the restore-and-call path: the Microvium engine as
 * this addon builds it (c/engine.c, which includes the engine with the port
 * in c/microvium_port.h), driven through the same glue_* entry points that
 * the Rust host (src/) uses, in the same order.
 *
 * Per input:
 *   1. The input is a snapshot. Its size field and CRC are fixed up (so that
 *      mutations reach the engine instead of failing the checksum), then its
 *      header is checked by the same C function src/snapshot.rs calls
 *      (glue_check_header, c/verifier.c). Rejected inputs end here, as in
 *      the host. glue_restore then runs the restore-time verifier (the
 *      project's real validation, c/verifier.c) before the engine.
 *   2. glue_restore with every import id the import table lists resolved to
 *      one host function that returns its first argument (any other id is
 *      MVM_E_UNRESOLVED_IMPORT, as in src/restore.rs). Even ids act as async host
 *      functions: glue_async_start, and the promise is settled after the
 *      call through the engine's callback (every third one rejected).
 *   3. Every export in the export table is resolved and inspected the way
 *      the host converts guest values (glue_kind, then the kind's reader).
 *      Function exports among the first MAX_EXPORTS are called under a gas limit
 *      with no arguments, two small ints, and a string made with
 *      glue_new_string; class exports are constructed (glue_construct, then
 *      the constructor with the instance as `this`). Each result (or thrown
 *      value) is inspected; a function result is called once more.
 *   4. A collection, a snapshot of the VM (createSnapshot), then the VM is
 *      freed. A fatal engine error (glue code >= GLUE_FATAL_BASE) poisons the
 *      VM: nothing more is called on it and it is freed with
 *      glue_free_vm(ctx, true), as the host does.
 *
 * Every engine allocation is in the context's block list, so glue_free_vm
 * frees everything: a leak here is a leak in the glue or the engine.
 *
 * Environment (for triage, not needed for fuzzing):
 *   FUZZ_VERBOSE=1          print what each step returned
 *   FUZZ_WRITE_FIXED=path   write the fixed-up snapshot (what the engine
 *                           saw) to path, e.g. for a regression test that
 *                           restores it through the addon
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"

/* The host hooks come from c/standalone_host.c and the glue API is declared
 * in c/engine.h. */

/* ---- Limits --------------------------------------------------------------- */

#define HEADER_SIZE 28      /* 12 bytes + 8 section offsets (src/snapshot.rs) */
#define SECTION_COUNT 8
#define GAS 10000           /* instructions per call */
#define MAX_EXPORTS 16      /* exports called per input (all are resolved) */
#define MAX_KEYS 8          /* properties / elements read per object */
#define MAX_DEPTH 2         /* nesting of property reads */

#define MAX_PENDING 8       /* async host calls awaiting their resumption */
#define MAX_RESUMES 32      /* resumptions per input */

#define V_UNDEFINED ((mvm_Value)0x01)
#define V_TRUE ((mvm_Value)0x09)
#define V_FALSE ((mvm_Value)0x0D)

static int verbose = -1;
#define LOG(...) do { if (verbose > 0) fprintf(stderr, __VA_ARGS__); } while (0)

/* ---- Snapshot fix-up and validation (mirrors src/snapshot.rs) ------------ */

static uint16_t rd16(const uint8_t* b, size_t at) { return (uint16_t)(b[at] | (b[at + 1] << 8)); }
static void wr16(uint8_t* b, size_t at, uint16_t v) { b[at] = (uint8_t)v; b[at + 1] = (uint8_t)(v >> 8); }

static uint16_t crc16_ccitt(const uint8_t* data, size_t n) {
  uint16_t r = 0xFFFF;
  for (size_t i = 0; i < n; i++) {
    r = (uint16_t)((r >> 8) | (r << 8));
    r ^= data[i];
    r ^= (uint16_t)((r & 0xff) >> 4);
    r ^= (uint16_t)(r << 12);
    r ^= (uint16_t)((r & 0xff) << 5);
  }
  return r;
}

typedef struct Tables {
  size_t imports_at, import_count;
  size_t exports_at, export_count;
} Tables;

/* 0 if the host would pass the snapshot to the engine: the header checks
 * of src/snapshot.rs, which are C's (glue_check_header). */
static int validate(const uint8_t* b, size_t n, Tables* t) {
  const char* detail = NULL;
  int err = glue_check_header(b, n, &detail);
  if (err) {
    LOG("header: %s\n", detail);
    return err;
  }
  size_t imports = rd16(b, 12), exports = rd16(b, 14), exports_end = rd16(b, 16);
  t->imports_at = imports;
  t->import_count = (exports - imports) / 2;
  t->exports_at = exports;
  t->export_count = (exports_end - exports) / 4;
  return 0;
}

/* ---- Imports ------------------------------------------------------------- */

static uint8_t import_listed[65536 / 8];   /* ids of the current snapshot */

static int inspect(GlueContext* ctx, mvm_Value* slot, int depth, bool may_allocate);
static bool fatal_in_host_function;  /* a fatal error inside an import */

/* Async host calls whose resumption is due (src/calls.rs host_call): the
 * engine's callback and the value to resolve it with, rooted in handles. */
static mvm_Handle pending_cb[MAX_PENDING], pending_value[MAX_PENDING];
static int pending_count;
static bool pending_live;   /* the handles are registered with the VM */

/* Every import is `x => x`. Imports with an even id are async, as a host
 * function registered with { async: true }: the engine's async protocol
 * starts first (glue_async_start), the guest gets a promise, and the host
 * resumes it after the call with the first argument. Then, like the host's
 * trampoline, it converts its arguments (without allocating). */
static mvm_TeError host_identity(mvm_VM* vm, mvm_HostFunctionID id, mvm_Value* result,
                                 mvm_Value* args, uint8_t argCount) {
  GlueContext* ctx = glue_get_context(vm);
  bool is_async = false;
  if (id % 2 == 0) {
    mvm_Value cb = V_UNDEFINED;
    int err = glue_async_start(ctx, result, &cb);
    if (err >= GLUE_FATAL_BASE) {
      fatal_in_host_function = true;
      return MVM_E_HOST_ERROR;
    }
    if (err == MVM_E_SUCCESS) {
      is_async = true;
      if (pending_live && pending_count < MAX_PENDING) {
        pending_cb[pending_count]._value = cb;
        pending_value[pending_count]._value = argCount ? args[0] : V_UNDEFINED;
        pending_count++;
      }
    }
    /* else: no await points in the script, an ordinary call */
  }
  for (uint8_t i = 0; i < argCount && i < 4; i++) {
    int err = inspect(ctx, &args[i], MAX_DEPTH, false);
    if (err >= GLUE_FATAL_BASE) {
      /* The host poisons the VM here and fails the guest's call. */
      fatal_in_host_function = true;
      return MVM_E_HOST_ERROR;
    }
  }
  if (!is_async) *result = argCount ? args[0] : V_UNDEFINED;
  return MVM_E_SUCCESS;
}

static mvm_TeError resolve_import(mvm_HostFunctionID id, void* context, mvm_TfHostFunction* out) {
  (void)context;
  *out = host_identity;
  return (import_listed[id >> 3] >> (id & 7)) & 1 ? MVM_E_SUCCESS : MVM_E_UNRESOLVED_IMPORT;
}

/* ---- Reading guest values as the host does (src/membrane.rs, api.rs) ----- */

static volatile uint64_t sink;

typedef struct Scratch {
  mvm_Handle keys;
  mvm_Handle key;
  mvm_Handle value;
} Scratch;

static Scratch scratch[MAX_DEPTH + 1];
static int scratch_live;  /* handles of scratch[] registered with the VM */

/* Reads property s->key of *slot into s->value and inspects it. Returns 0,
 * a non-fatal glue error (skipped by the caller) or a fatal one. */
static int inspect_property(GlueContext* ctx, mvm_Value* slot, Scratch* s, int depth) {
  int err = glue_get_property(ctx, slot, &s->key._value, &s->value._value);
  if (err) return err;
  return inspect(ctx, &s->value._value, depth + 1, true);
}

/* Reads *slot (a handle's value) by its kind. With may_allocate, also reads
 * up to MAX_KEYS properties or elements of objects and arrays, recursively.
 * Returns 0 or a glue error code (>= GLUE_FATAL_BASE when fatal). */
static int inspect(GlueContext* ctx, mvm_Value* slot, int depth, bool may_allocate) {
  uint16_t extra = 0;
  int kind = glue_kind(ctx, *slot, &extra);
  int err = 0;
  switch (kind) {
    case GLUE_KIND_NUMBER: {
      double d = glue_to_float64(ctx, *slot);
      sink += (uint64_t)(d == d);
      break;
    }
    case GLUE_KIND_STRING: {
      const char* p = NULL;
      size_t n = 0;
      err = glue_string_utf8(ctx, *slot, &p, &n);
      if (err) return err;
      for (size_t i = 0; i < n; i++) sink += (uint8_t)p[i];
      break;
    }
    case GLUE_KIND_UINT8_ARRAY: {
      uint8_t* p = NULL;
      size_t n = 0;
      bool writable = false;
      err = glue_uint8array_bytes(ctx, *slot, &p, &n, &writable);
      if (err) return 0;
      for (size_t i = 0; i < n; i++) sink += p[i];
      if (writable && n) p[0] = p[0];   /* the host writes heap arrays */
      break;
    }
    case GLUE_KIND_ARRAY:
    case GLUE_KIND_FIXED_ARRAY: {
      int len = glue_array_length(ctx, *slot);
      if (!may_allocate || depth >= MAX_DEPTH || len <= 0) break;
      Scratch* s = &scratch[depth];
      for (int i = 0; i < len && i < MAX_KEYS; i++) {
        err = glue_new_int32(ctx, i, &s->key._value);
        if (err) return err;
        err = inspect_property(ctx, slot, s, depth);
        if (err >= GLUE_FATAL_BASE) return err;
      }
      break;
    }
    case GLUE_KIND_PROMISE: {
      mvm_Value out = V_UNDEFINED;
      sink += (uint64_t)glue_promise_state(ctx, *slot, &out);
    }
    /* fall through: a promise is also an object */
    case GLUE_KIND_OBJECT:
    case GLUE_KIND_CLASS: {
      sink += glue_object_proto(ctx, *slot);
      if (!may_allocate || depth >= MAX_DEPTH) break;
      Scratch* s = &scratch[depth];
      s->keys._value = *slot;
      err = glue_object_keys(ctx, &s->keys._value);
      if (err >= GLUE_FATAL_BASE) return err;
      if (err) break;
      int n = glue_array_length(ctx, s->keys._value);
      for (int i = 0; i < n && i < MAX_KEYS; i++) {
        err = glue_new_int32(ctx, i, &s->key._value);
        if (err) return err;
        err = glue_get_property(ctx, &s->keys._value, &s->key._value, &s->key._value);
        if (err >= GLUE_FATAL_BASE) return err;
        if (err) continue;
        err = inspect_property(ctx, slot, s, depth);
        if (err >= GLUE_FATAL_BASE) return err;
      }
      break;
    }
    default:
      sink += (uint64_t)kind + extra;
      break;
  }
  return 0;
}

/* ---- One input ----------------------------------------------------------- */

typedef struct Run {
  GlueContext ctx;
  mvm_Handle exports[MAX_EXPORTS];
  mvm_Handle result;
  mvm_Handle arg;
  mvm_Handle fn;
  mvm_Handle ctor;
  mvm_Handle proto;
  int export_handles;   /* how many of exports[] are registered */
  bool other_handles;
  bool fatal;
} Run;

static bool is_fatal(Run* r, int err, const char* what) {
  if (err) LOG("  %s -> %d\n", what, err);
  if (err >= GLUE_FATAL_BASE || fatal_in_host_function) r->fatal = true;
  return r->fatal;
}

/* Settles the promises of async host calls, as the host does from the event
 * loop after the call: callback(true, value), every third one rejected. */
static int resumes;
static void resume_pending(Run* r) {
  while (pending_count > 0 && resumes < MAX_RESUMES && !r->fatal) {
    pending_count--;
    mvm_Value args[2] = { resumes % 3 == 2 ? V_FALSE : V_TRUE, pending_value[pending_count]._value };
    r->fn._value = pending_cb[pending_count]._value;
    pending_cb[pending_count]._value = V_UNDEFINED;
    pending_value[pending_count]._value = V_UNDEFINED;
    resumes++;
    glue_stop_after(&r->ctx, GAS);
    r->result._value = V_UNDEFINED;
    int err = glue_call(&r->ctx, r->fn._value, NULL, &r->result._value, args, 2);
    if (is_fatal(r, err, "resume")) return;
    if (err == MVM_E_SUCCESS || err == MVM_E_UNCAUGHT_EXCEPTION) {
      if (is_fatal(r, inspect(&r->ctx, &r->result._value, 0, true), "inspect resume result")) return;
    }
  }
}

/* Calls *fn with one of the argument shapes; inspects the result. */
static void call_shape(Run* r, mvm_Value* fn, const mvm_Value* this_value, int shape) {
  mvm_Value args[2];
  uint8_t argc = 0;
  if (shape == 1) {
    if (is_fatal(r, glue_new_int32(&r->ctx, 3, &args[0]), "int")) return;
    if (is_fatal(r, glue_new_int32(&r->ctx, 4, &args[1]), "int")) return;
    argc = 2;
  } else if (shape == 2) {
    if (is_fatal(r, glue_new_string(&r->ctx, "fuzz", 4, &r->arg._value), "string")) return;
    args[0] = r->arg._value;
    argc = 1;
  }
  glue_stop_after(&r->ctx, GAS);
  r->result._value = V_UNDEFINED;
  int err = glue_call(&r->ctx, *fn, this_value, &r->result._value, args, argc);
  if (is_fatal(r, err, "call")) return;
  /* On success the result, on an uncaught exception the thrown value: the
   * host converts both. */
  if (err == MVM_E_SUCCESS || err == MVM_E_UNCAUGHT_EXCEPTION) {
    if (is_fatal(r, inspect(&r->ctx, &r->result._value, 0, true), "inspect result")) return;
  }
  resume_pending(r);
}

static void call_export(Run* r, mvm_Handle* h) {
  uint16_t extra;
  int kind = glue_kind(&r->ctx, h->_value, &extra);
  if (kind == GLUE_KIND_FUNCTION) {
    for (int shape = 0; shape < 3 && !r->fatal; shape++) {
      call_shape(r, &h->_value, NULL, shape);
      if (r->fatal) return;
      /* A function result (a closure, say) is called once, no arguments. */
      if (shape == 0 && glue_kind(&r->ctx, r->result._value, &extra) == GLUE_KIND_FUNCTION) {
        r->fn._value = r->result._value;
        call_shape(r, &r->fn._value, NULL, 0);
      }
    }
  } else if (kind == GLUE_KIND_CLASS) {
    /* new C(3, 4), as src/api.rs does it. */
    r->fn._value = h->_value;
    int err = glue_construct(&r->ctx, &r->fn._value, &r->ctor._value, &r->proto._value);
    if (is_fatal(r, err, "construct") || err) return;
    call_shape(r, &r->ctor._value, &r->fn._value, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (verbose < 0) {
    const char* v = getenv("FUZZ_VERBOSE");
    verbose = v && *v && *v != '0';
  }
  if (size < HEADER_SIZE || size > 0xFFFF) return 0;

  /* An exact-size copy, so ASan sees any read past the snapshot's end. */
  uint8_t* bytes = (uint8_t*)malloc(size);
  memcpy(bytes, data, size);
  wr16(bytes, 4, (uint16_t)size);
  wr16(bytes, 6, crc16_ccitt(bytes + 8, size - 8));
  const char* fixed_path = getenv("FUZZ_WRITE_FIXED");
  if (fixed_path && *fixed_path) {
    FILE* f = fopen(fixed_path, "wb");
    if (f) { fwrite(bytes, 1, size, f); fclose(f); }
  }

  Tables t;
  int invalid = validate(bytes, size, &t);
  if (invalid) {
    LOG("rejected by host validation (%d)\n", invalid);
    free(bytes);
    return 0;
  }

  for (size_t i = 0; i < t.import_count; i++) {
    uint16_t id = rd16(bytes, t.imports_at + 2 * i);
    import_listed[id >> 3] |= (uint8_t)(1u << (id & 7));
  }

  static Run run;   /* fixed address while the VM lives; reset per input */
  Run* r = &run;
  memset(r, 0, sizeof *r);
  scratch_live = 0;
  fatal_in_host_function = false;
  pending_live = false;
  pending_count = 0;
  resumes = 0;

  int err = glue_restore(&r->ctx, bytes, size, resolve_import);
  for (size_t i = 0; i < t.import_count; i++) {
    uint16_t id = rd16(bytes, t.imports_at + 2 * i);
    import_listed[id >> 3] = 0;
  }
  is_fatal(r, err, "restore");
  if (err == MVM_E_INVALID_BYTECODE) LOG("verifier: %s\n", glue_verify_detail());
  if (err) goto done;

  glue_handle_init(&r->ctx, &r->result);
  glue_handle_init(&r->ctx, &r->arg);
  glue_handle_init(&r->ctx, &r->fn);
  glue_handle_init(&r->ctx, &r->ctor);
  glue_handle_init(&r->ctx, &r->proto);
  r->other_handles = true;
  for (int d = 0; d <= MAX_DEPTH; d++) {
    glue_handle_init(&r->ctx, &scratch[d].keys);
    glue_handle_init(&r->ctx, &scratch[d].key);
    glue_handle_init(&r->ctx, &scratch[d].value);
  }
  scratch_live = 1;
  for (int i = 0; i < MAX_PENDING; i++) {
    glue_handle_init(&r->ctx, &pending_cb[i]);
    glue_handle_init(&r->ctx, &pending_value[i]);
  }
  pending_live = true;

  /* Every export is resolved and read; the first MAX_EXPORTS are kept (in
   * handles) to be called. */
  for (size_t i = 0; i < t.export_count && !r->fatal; i++) {
    mvm_Handle* h = &r->result;
    if (i < MAX_EXPORTS) {
      h = &r->exports[i];
      glue_handle_init(&r->ctx, h);
      r->export_handles++;
    }
    uint16_t id = rd16(bytes, t.exports_at + 4 * i);
    err = glue_resolve_export(&r->ctx, id, &h->_value);
    if (is_fatal(r, err, "resolve export") || err) continue;
    is_fatal(r, inspect(&r->ctx, &h->_value, 0, true), "inspect export");
  }
  for (int i = 0; i < r->export_handles && !r->fatal; i++) {
    call_export(r, &r->exports[i]);
  }

  if (!r->fatal) {
    is_fatal(r, glue_run_gc(&r->ctx, false), "gc");
  }
  if (!r->fatal) {
    sink += glue_heap_size(&r->ctx);
    void* snap = NULL;
    size_t snap_size = 0;
    if (!is_fatal(r, glue_create_snapshot(&r->ctx, &snap, &snap_size), "create snapshot")) {
      /* What the host hands back to JavaScript: read it all. */
      for (size_t i = 0; i < snap_size; i++) sink += ((uint8_t*)snap)[i];
      glue_free_snapshot(&r->ctx, snap);
    }
  }

  if (!r->fatal && r->ctx.vm) {
    for (int i = 0; i < r->export_handles; i++) mvm_releaseHandle(r->ctx.vm, &r->exports[i]);
    if (r->other_handles) {
      mvm_releaseHandle(r->ctx.vm, &r->result);
      mvm_releaseHandle(r->ctx.vm, &r->arg);
      mvm_releaseHandle(r->ctx.vm, &r->fn);
      mvm_releaseHandle(r->ctx.vm, &r->ctor);
      mvm_releaseHandle(r->ctx.vm, &r->proto);
    }
    if (pending_live) {
      for (int i = 0; i < MAX_PENDING; i++) {
        mvm_releaseHandle(r->ctx.vm, &pending_cb[i]);
        mvm_releaseHandle(r->ctx.vm, &pending_value[i]);
      }
    }
    if (scratch_live) {
      for (int d = 0; d <= MAX_DEPTH; d++) {
        mvm_releaseHandle(r->ctx.vm, &scratch[d].keys);
        mvm_releaseHandle(r->ctx.vm, &scratch[d].key);
        mvm_releaseHandle(r->ctx.vm, &scratch[d].value);
      }
    }
  }

done:
  LOG("%s (%d async resumptions)\n", r->fatal ? "poisoned (fatal error)" : "done", resumes);
  /* Always: a failed restore can leave blocks in the list too (the host's
   * VmState drop does the same). */
  glue_free_vm(&r->ctx, r->fatal);
  free(bytes);
  return 0;
}
