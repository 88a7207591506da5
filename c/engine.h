/*
 * Interface between the Rust engine binding (src/engine.rs) and c/engine.c.
 * Keep in sync with the #[repr(C)] mirror in src/engine.rs.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "microvium.h"

/* Fatal engine errors come back from glue_* calls as this plus the code. */
#define GLUE_FATAL_BASE 1000

/* Per-VM state the C side needs; owned (and kept at a fixed address) by Rust. */
typedef struct GlueContext {
  mvm_VM* vm;              /* NULL until restored and after free */
  void* host;              /* the Rust VM state, for host-function callbacks */
  void* spare_stack;       /* one cached virtual-stack block */
  uint32_t gc_epoch;       /* bumped whenever the collector frees old buckets */
  void* blocks;            /* every live engine allocation (see glue_malloc) */
  uint32_t poll_count;     /* instruction dispatches, see GLUE_POLL */
  size_t bytes;            /* engine memory held (see GLUE_MEMORY_CAP) */
  int fatal_code;          /* a fatal error in an inspection function
                            * (glue_kind...), which cannot return a status */
  void* host_function;     /* the host's mvm_TfHostFunction for imports */
  void* breakpoint_callback; /* the host's glue_BreakpointCallback */
  uint32_t checked_epoch;  /* gc_epoch + 1 while checked_bits is current */
  uint8_t* checked_bits;   /* heap offsets already checked, a bit each (see
                            * glue_check_short_ptr); in the block list */
  int fatal_reason;        /* why a check failed, when the host can say it
                            * in a user's terms (GLUE_REASON_*), else 0 */
  void* verified;          /* what c/verifier.c left for the run-time checks
                            * (a VerifierResult in the block list), or NULL */
} GlueContext;

/* Reasons a check gives for a fatal MVM_E_INVALID_BYTECODE (fatal_reason). */
enum {
  /* A closure variable is read or written outside the closure scopes that
   * exist: what the microvium 8.0.0 compiler emits for a function that
   * makes closures in a `for (let ...)` loop and, after it, closures over
   * the function's own variables (the loop's scope replaces the function's
   * instead of extending it, and is discarded after the loop). */
  GLUE_REASON_NO_SCOPE = 1,
};

enum {
  GLUE_KIND_UNDEFINED = 0,
  GLUE_KIND_NULL = 1,
  GLUE_KIND_BOOLEAN = 2,
  GLUE_KIND_NUMBER = 3,
  GLUE_KIND_STRING = 4,
  GLUE_KIND_FUNCTION = 5,
  GLUE_KIND_OBJECT = 6,
  GLUE_KIND_ARRAY = 7,
  GLUE_KIND_UINT8_ARRAY = 8,
  GLUE_KIND_CLASS = 9,
  GLUE_KIND_FIXED_ARRAY = 10,
  GLUE_KIND_HOST_FUNCTION = 11,
  GLUE_KIND_PROMISE = 12,
  GLUE_KIND_OTHER = 13,
};

/* ------------------------------------------------------------------------ */
/* The glue API (c/engine.c). Every entry into the engine goes through one   */
/* of these; those returning int give an mvm_TeError, or GLUE_FATAL_BASE +   */
/* code after a fatal error. src/engine.rs mirrors these declarations.       */
/* ------------------------------------------------------------------------ */

int glue_restore(GlueContext* ctx, const uint8_t* bytes, size_t size, mvm_TfResolveImport resolve);
/* Why the last glue_restore on this thread failed the verifier (c/verifier.c):
 * the `detail` of its MVM_E_INVALID_BYTECODE. */
const char* glue_verify_detail(void);
/* The snapshot header checks (src/snapshot.rs): 0 or an mvm_TeError, with a
 * description in *detail. */
int glue_check_header(const uint8_t* bytes, size_t size, const char** detail);
void glue_free_vm(GlueContext* ctx, bool after_fatal_error);
int glue_call(GlueContext* ctx, mvm_Value func, const mvm_Value* this_value,
              mvm_Value* out_result, mvm_Value* args, uint8_t arg_count);
int glue_construct(GlueContext* ctx, mvm_Value* target, mvm_Value* ctor, mvm_Value* proto);
int glue_new_string(GlueContext* ctx, const char* utf8, size_t size, mvm_Value* out);
int glue_new_number(GlueContext* ctx, double value, mvm_Value* out);
int glue_new_int32(GlueContext* ctx, int32_t value, mvm_Value* out);
int glue_new_uint8array(GlueContext* ctx, const uint8_t* data, size_t size, mvm_Value* out);
int glue_new_object(GlueContext* ctx, mvm_Value* out);
int glue_new_array(GlueContext* ctx, uint16_t capacity, mvm_Value* out);
int glue_new_host_function(GlueContext* ctx, uint16_t host_function_id, mvm_Value* out);
int glue_get_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* out);
int glue_set_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* value);
int glue_object_keys(GlueContext* ctx, mvm_Value* inout);
int glue_to_property_key(GlueContext* ctx, mvm_Value* inout);
int glue_find_rom_key(GlueContext* ctx, const char* name, size_t size, mvm_Value* out, bool* out_found);
mvm_Value glue_intern_head(GlueContext* ctx);
int glue_intern_list(GlueContext* ctx, mvm_Value stop, mvm_Value* out, size_t cap, size_t* out_count,
                     bool* out_stopped);
int glue_own_property(GlueContext* ctx, mvm_Value object, mvm_Value key, mvm_Value* out, bool* out_found);
int glue_run_gc(GlueContext* ctx, bool squeeze);
int glue_create_snapshot(GlueContext* ctx, void** out_data, size_t* out_size);
void glue_free_snapshot(GlueContext* ctx, void* data);
int glue_resolve_export(GlueContext* ctx, uint16_t id, mvm_Value* out);
int glue_string_utf8(GlueContext* ctx, mvm_Value value, const char** out_ptr, size_t* out_size);
double glue_to_float64(GlueContext* ctx, mvm_Value value);
int glue_uint8array_bytes(GlueContext* ctx, mvm_Value value, uint8_t** out_data, size_t* out_size,
                          bool* out_writable);
void glue_get_memory_stats(GlueContext* ctx, mvm_TsMemoryStats* out);
void glue_stop_after(GlueContext* ctx, int32_t n);
int32_t glue_instructions_remaining(GlueContext* ctx);
uint16_t glue_current_address(GlueContext* ctx);
int glue_set_breakpoint(GlueContext* ctx, uint16_t address);
void glue_remove_breakpoint(GlueContext* ctx, uint16_t address);
/* The host's breakpoint callback: returns 0, or the code of a fatal error of
 * this VM that happened during the callback (the call then ends with it). */
typedef int (*glue_BreakpointCallback)(mvm_VM* vm, uint16_t address);
void glue_set_breakpoint_callback(GlueContext* ctx, glue_BreakpointCallback cb);
void glue_handle_init(GlueContext* ctx, mvm_Handle* handle);
void* glue_get_context(mvm_VM* vm);
int glue_kind(GlueContext* ctx, mvm_Value value, uint16_t* out_extra);
mvm_Value glue_object_proto(GlueContext* ctx, mvm_Value value);
int glue_array_length(GlueContext* ctx, mvm_Value value);
int glue_async_start(GlueContext* ctx, mvm_Value* result, mvm_Value* out_callback);
int glue_promise_state(GlueContext* ctx, mvm_Value promise, mvm_Value* out_value);
uint16_t glue_heap_size(GlueContext* ctx);

/* The fault net (c/fault_net.c): installs a SIGSEGV/SIGBUS handler that
 * turns a memory fault in engine code into a fatal error of the VM
 * concerned. Once per process; a no-op where unsupported. */
void glue_install_fault_net(void);
bool glue_fault_is_recoverable(void);
bool glue_fault_net_installed(void);
int glue_fault_net_self_test(void);
_Noreturn void glue_fatal_error(void* vm, int e);

/* What the host supplies to the engine and glue (src/ in the addon;
 * c/standalone_host.c for C programs such as the bench floor and fuzzer). */
int host_format_number(char* buf, size_t size, const char* fmt, double x);
double host_pow(double x, double y);
bool host_should_abort(void);
