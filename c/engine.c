/*
 * The C side of the engine binding.
 *
 * This file compiles the engine itself (microvium.c from the pinned npm
 * package, found through the include path; nothing is copied here) in the
 * same translation unit as the small amount of glue that has to be C:
 *
 *   - the fatal-error boundary: setjmp at every entry from Rust into the
 *     engine, longjmp from MVM_FATAL_ERROR, so a fatal error ends the engine
 *     call with an error code instead of ending the process;
 *   - the allocator hooks of the port (collection detection, a one-block
 *     cache for the per-call virtual stack);
 *   - helpers that need the engine's internal layout (value kinds the public
 *     API does not distinguish, class construction, promises).
 *
 * Rust never calls an mvm_* function directly: everything goes through a
 * glue_* function below, so every engine frame on the C stack is below a
 * boundary. The only frames a longjmp skips are engine frames and the
 * glue function's own.
 */
#include <setjmp.h>
#include "microvium_port.h"
#include "engine.h"

/* See MVM_CASE in microvium_port.h: what `reg1I`/`reg2I` mean outside the
 * engine's integer blocks, which declare their own. */
static const int32_t reg1I = 0;
static const int32_t reg2I = 0;

/* Guest `**` gives Node's result: V8's pow differs from the C library's in
 * the last bit for some operands, so the host computes it (see
 * host_pow in src/number_format.rs). */
#define pow(x, y) host_pow(x, y)

#include "microvium.c"

static mvm_TeError glue_construct_unguarded(mvm_VM* vm, mvm_Value* target,
                                            mvm_Value* ctor, mvm_Value* proto);

/* ------------------------------------------------------------------------ */
/* The fatal-error boundary                                                 */
/* ------------------------------------------------------------------------ */

typedef struct Boundary {
  jmp_buf jump;
  struct Boundary* outer;
  int fatal_code;
} Boundary;

/* Innermost active boundary of this thread (each Node.js thread runs its own
 * VMs, so boundaries never cross threads). */
static _Thread_local Boundary* innermost_boundary = NULL;

_Noreturn void glue_fatal_error(void* vm, int e) {
  (void)vm;
  Boundary* b = innermost_boundary;
  if (!b) {
    /* Unreachable by construction (every engine entry is guarded); abort
     * rather than continue running a corrupted engine. */
    abort();
  }
  b->fatal_code = e;
  longjmp(b->jump, 1);
}

/*
 * GUARD runs `statement` inside a boundary. On a fatal error the function
 * returns GLUE_FATAL_BASE + code. Locals written inside `statement` are not
 * read after a longjmp, so none needs to be volatile.
 */
#define GUARD(statement)                                          \
  Boundary boundary;                                              \
  boundary.outer = innermost_boundary;                            \
  boundary.fatal_code = 0;                                        \
  if (setjmp(boundary.jump)) {                                    \
    innermost_boundary = boundary.outer;                          \
    return GLUE_FATAL_BASE + boundary.fatal_code;                 \
  }                                                               \
  innermost_boundary = &boundary;                                 \
  statement;                                                      \
  innermost_boundary = boundary.outer;

/*
 * Some engine internals used by the host between calls (object creation,
 * property access) push temporaries on the VM's stack, which only exists
 * while a call is active. WITH_STACK gives them one, as mvm_call does, and
 * frees it again if it was created here.
 */
#define WITH_STACK(vm, err, statement)                              \
  do {                                                              \
    bool created_stack = !(vm)->stack;                              \
    if (created_stack) {                                            \
      err = vm_createStackAndRegisters(vm);                         \
      if (err) break;                                               \
    }                                                               \
    statement;                                                      \
    if (created_stack && (vm)->stack) {                             \
      vm_free(vm, (vm)->stack);                                     \
      (vm)->stack = NULL;                                           \
    }                                                               \
  } while (0)


void glue_poll_slow(void) {
  if (innermost_boundary && host_should_abort()) {
    glue_fatal_error(NULL, MVM_E_HOST_ERROR);
  }
}

/* Every entry point checks that the VM still exists: a host callback (a
 * getter on an object being converted, say) may have disposed it. */
#define REQUIRE_VM(ctx, result) do { if (!(ctx)->vm) return (result); } while (0)

/* Whether the n bytes at p (the payload of `value`, which the host is
 * about to read) lie in memory of this VM: the snapshot for values the
 * compiler placed there, the used part of one heap bucket for heap values.
 * Payload sizes come from allocation headers, which a snapshot can set to
 * anything (a zero-size string even gives n = SIZE_MAX). */
static bool glue_payload_in_bounds(mvm_VM* vm, Value value, const void* p, size_t n) {
  uintptr_t q = (uintptr_t)p, lo, hi;
  if (Value_isShortPtr(value)) {
    for (TsBucket* b = vm->pLastBucket; b; b = b->prev) {
      lo = (uintptr_t)getBucketDataBegin(b);
      hi = (uintptr_t)b->pEndOfUsedSpace;
      if (q >= lo && q <= hi) return n <= hi - q;
    }
    return false;
  }
  /* Constants and values in the snapshot: the engine's own bound on one
   * allocation is all the host checks here (sizes from a zero-size header
   * are SIZE_MAX). */
  (void)p;
  return n <= MAX_ALLOCATION_SIZE;
}

/* ------------------------------------------------------------------------ */
/* Allocator hooks                                                          */
/* ------------------------------------------------------------------------ */

#define STACK_BLOCK_SIZE (sizeof(vm_TsStack) + MVM_STACK_SIZE)

/*
 * Slack after every engine allocation. When the collector merges an object's
 * appended property cells into the object (gc_processShortPtrValue), it
 * checks the room left in the to-space bucket for one word per property but
 * writes two, so it can write 2 bytes past the end of the bucket. The cells
 * it merges hold one property each, so the overrun is at most one word; the
 * engine's own bookkeeping stays consistent (offsets follow the write
 * pointer), and the slack keeps the write inside the allocation.
 */
#define ALLOCATION_SLACK 16

/*
 * Every engine allocation of a VM is linked into its context's block list,
 * so that freeing the VM frees everything: a fatal error can leave blocks
 * the engine no longer knows about (a collection cut short holds its new
 * buckets only in locals), and mvm_free does not free breakpoints. The
 * header keeps the 16-byte alignment malloc gives.
 */
typedef struct Block {
  struct Block* prev;
  struct Block* next;
  size_t size;
  size_t pad;              /* keeps the payload 16-byte aligned */
} Block;

/* Most memory one VM may hold: a 64 kB heap, a to-space as large during a
 * collection, the stack, and a VM struct with up to 32k resolved imports.
 * A corrupted heap can make the collector allocate buckets without end. */
#define GLUE_MEMORY_CAP (1u << 20)

static void* block_alloc(GlueContext* ctx, size_t size) {
  if (size > GLUE_MEMORY_CAP - ctx->bytes) return NULL;  /* engine: MVM_E_MALLOC_FAIL */
  Block* b = (Block*)malloc(sizeof(Block) + size + ALLOCATION_SLACK);
  if (!b) return NULL;
  b->size = size;
  ctx->bytes += size;
  b->prev = NULL;
  b->next = (Block*)ctx->blocks;
  if (b->next) b->next->prev = b;
  ctx->blocks = b;
  return b + 1;
}

static void block_free(GlueContext* ctx, void* ptr) {
  Block* b = (Block*)ptr - 1;
  ctx->bytes -= b->size;
  if (b->prev) b->prev->next = b->next; else ctx->blocks = b->next;
  if (b->next) b->next->prev = b->prev;
  free(b);
}

void* glue_malloc(size_t size, void* context) {
  GlueContext* ctx = (GlueContext*)context;
  if (!ctx) return malloc(size + ALLOCATION_SLACK);
  /* The engine mallocs and frees its virtual stack around every outermost
   * call; keeping the last block saves two allocator round trips per call. */
  if (size == STACK_BLOCK_SIZE && ctx->spare_stack) {
    void* p = ctx->spare_stack;
    ctx->spare_stack = NULL;
    return p;
  }
  return block_alloc(ctx, size);
}

void glue_free(void* ptr, void* context) {
  GlueContext* ctx = (GlueContext*)context;
  if (!ptr) return;
  if (!ctx) {
    free(ptr);
    return;
  }
  if (ctx->vm) {
    mvm_VM* vm = ctx->vm;
    if (ptr == (void*)vm) {
      /* mvm_free releasing the VM struct itself; nothing may read it after. */
    } else if (ptr == (void*)vm->stack) {
      if (!ctx->spare_stack) {
        ctx->spare_stack = ptr;
        return;
      }
    } else {
      /* The collector frees every old heap bucket at the end of a cycle:
       * objects may have moved, so host-side address maps are stale. */
      ctx->gc_epoch++;
    }
  }
  block_free(ctx, ptr);
}

/* ------------------------------------------------------------------------ */
/* Guarded engine entry points                                              */
/* ------------------------------------------------------------------------ */

int glue_restore(GlueContext* ctx, const uint8_t* bytes, size_t size,
                 mvm_TfResolveImport resolve) {
  mvm_TeError err = MVM_E_SUCCESS;
  mvm_VM* vm = NULL;
  GUARD(err = mvm_restore(&vm, (MVM_LONG_PTR_TYPE)bytes, size, ctx, resolve));
  if (err == MVM_E_SUCCESS) ctx->vm = vm;
  return err;
}

/* Frees the VM and every block it still holds. After a fatal error the
 * engine's own structures may be inconsistent, so mvm_free is skipped and
 * the block list alone frees everything. */
void glue_free_vm(GlueContext* ctx, bool after_fatal_error) {
  if (ctx->vm && !after_fatal_error) mvm_free(ctx->vm);
  ctx->vm = NULL;
  ctx->spare_stack = NULL; /* it is in the block list */
  while (ctx->blocks) block_free(ctx, (Block*)ctx->blocks + 1);
}

int glue_call(GlueContext* ctx, mvm_Value func, const mvm_Value* this_value,
              mvm_Value* out_result, mvm_Value* args, uint8_t arg_count) {
  mvm_TeError err = MVM_E_SUCCESS;
  if (this_value) {
    GUARD(err = mvm_callEx(ctx->vm, func, *this_value, out_result, args, arg_count));
  } else {
    GUARD(err = mvm_call(ctx->vm, func, out_result, args, arg_count));
  }
  return err;
}

/*
 * First half of `new Class(...args)` from the host. The engine only offers
 * `new` as an opcode, so this does what its SUB_NEW does before the call:
 * read the class's prototype (and the prototype's internal-slot template)
 * and allocate the instance. The host then calls `*ctor` with the instance
 * as `this`; the instance is the result, as in the engine.
 *
 * `target` holds the class on entry and the instance on return; `ctor`
 * receives the constructor; `proto` is scratch. All three point into
 * registered handles, so they stay valid across collections.
 */
int glue_construct(GlueContext* ctx, mvm_Value* target, mvm_Value* ctor, mvm_Value* proto) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = glue_construct_unguarded(ctx->vm, target, ctor, proto)));
  return err;
}

static mvm_TeError glue_construct_unguarded(mvm_VM* vm, mvm_Value* target,
                                            mvm_Value* ctor, mvm_Value* proto) {
  mvm_Value cls = *target;
  if (deepTypeOf(vm, cls) != TC_REF_CLASS) return MVM_E_USING_NEW_ON_NON_CLASS;
  LongPtr lpClass = DynamicPtr_decode_long(vm, cls);
  *ctor = READ_FIELD_2(lpClass, TsClass, constructorFunc);
  Value protoKey = getBuiltin(vm, BIN_STR_PROTOTYPE);
  if (protoKey == VM_VALUE_UNDEFINED) return MVM_E_CLASS_PROTOTYPE_MUST_BE_NULL_OR_OBJECT;
  *proto = protoKey;
  mvm_TeError err = getProperty(vm, target, proto, proto);
  if (err) return err;

  TeTypeCode tc = deepTypeOf(vm, *proto);
  uint16_t slot_count = 0;
  if (tc == TC_REF_PROPERTY_LIST) {
    Value* pProto = (Value*)ShortPtr_decode(vm, *proto);
    if ((vm_getAllocationSize(pProto) >= 4) &&
        (pProto[VM_OIS_PROTO_SLOT_MAGIC_KEY] == VM_PROTO_SLOT_MAGIC_KEY_VALUE)) {
      slot_count = VirtualInt14_decode(vm, pProto[VM_OIS_PROTO_SLOT_COUNT]);
    }
  } else if (tc != TC_VAL_NULL) {
    return MVM_E_CLASS_PROTOTYPE_MUST_BE_NULL_OR_OBJECT;
  }

  Value* pObject = mvm_allocate(vm, sizeof(TsPropertyList) + slot_count * sizeof(Value), TC_REF_PROPERTY_LIST);
  Value* p = pObject;
  *p++ = VM_VALUE_NULL;   /* dpNext */
  *p++ = *proto;          /* dpProto (re-read: the allocation may have moved it) */
  if (slot_count) {
    Value* pProto = (Value*)ShortPtr_decode(vm, *proto);
    Value* src = &pProto[4];
    while (slot_count--) *p++ = *src++;
  }
  *target = ShortPtr_encode(vm, pObject);
  return MVM_E_SUCCESS;
}

int glue_new_string(GlueContext* ctx, const char* utf8, size_t size, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  if (size > MAX_ALLOCATION_SIZE - 1) return MVM_E_ALLOCATION_TOO_LARGE;
  GUARD(WITH_STACK(ctx->vm, err, *out = mvm_newString(ctx->vm, utf8, size)));
  return err;
}

int glue_new_number(GlueContext* ctx, double value, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(*out = mvm_newNumber(ctx->vm, value));
  return MVM_E_SUCCESS;
}

int glue_new_int32(GlueContext* ctx, int32_t value, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(*out = mvm_newInt32(ctx->vm, value));
  return MVM_E_SUCCESS;
}

int glue_new_uint8array(GlueContext* ctx, const uint8_t* data, size_t size, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  if (size > MAX_ALLOCATION_SIZE) return MVM_E_ALLOCATION_TOO_LARGE;
  GUARD(WITH_STACK(ctx->vm, err, *out = mvm_uint8ArrayFromBytes(ctx->vm, data, size)));
  return err;
}

/* A plain object with the engine's default (null) prototype. */
int glue_new_object(GlueContext* ctx, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, *out = vm_objectCreate(ctx->vm, VM_VALUE_NULL, 0)));
  return err;
}

int glue_new_array(GlueContext* ctx, uint16_t capacity, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, *out = vm_newArray(ctx->vm, capacity)));
  return err;
}

/* Object, key and result must be handle slots: getProperty can allocate. */
int glue_get_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = getProperty(ctx->vm, object, key, out)));
  return err;
}

int glue_set_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* value) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = setProperty(ctx->vm, object, key, value)));
  return err;
}

/* Replaces *inout (an object) with a fixed-length array of its own keys. */
int glue_object_keys(GlueContext* ctx, mvm_Value* inout) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = vm_objectKeys(ctx->vm, inout)));
  return err;
}

int glue_run_gc(GlueContext* ctx, bool squeeze) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(mvm_runGC(ctx->vm, squeeze));
  return MVM_E_SUCCESS;
}

int glue_create_snapshot(GlueContext* ctx, void** out_data, size_t* out_size) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(*out_data = mvm_createSnapshot(ctx->vm, out_size));
  return MVM_E_SUCCESS;
}

/* The snapshot buffer came from the engine's allocator, which is ours. */
void glue_free_snapshot(GlueContext* ctx, void* data) {
  if (data) block_free(ctx, data);
}

int glue_resolve_export(GlueContext* ctx, uint16_t id, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(err = mvm_resolveExports(ctx->vm, &id, out, 1));
  return err;
}

/* Only called on string values, which the engine reads without allocating. */
int glue_string_utf8(GlueContext* ctx, mvm_Value value, const char** out_ptr, size_t* out_size) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(*out_ptr = mvm_toStringUtf8(ctx->vm, value, out_size));
  if (!glue_payload_in_bounds(ctx->vm, value, *out_ptr, *out_size)) return MVM_E_INVALID_BYTECODE;
  return MVM_E_SUCCESS;
}

double glue_to_float64(GlueContext* ctx, mvm_Value value) {
  REQUIRE_VM(ctx, 0);
  return mvm_toFloat64(ctx->vm, value);
}

/* The bytes of a Uint8Array, which may live in the heap or (for arrays the
 * compiler placed there) in the snapshot's read-only section. Writable only
 * in the first case. */
int glue_uint8array_bytes(GlueContext* ctx, mvm_Value value, uint8_t** out_data, size_t* out_size,
                          bool* out_writable) {
  mvm_VM* vm = ctx->vm;
  if (deepTypeOf(vm, value) != TC_REF_UINT8_ARRAY) return MVM_E_TYPE_ERROR;
  LongPtr lp = DynamicPtr_decode_long(vm, value);
  uint16_t headerWord = readAllocationHeaderWord_long(lp);
  *out_size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(headerWord);
  *out_data = (uint8_t*)MVM_LONG_PTR_TRUNCATE(lp);
  *out_writable = Value_isShortPtr(value);
  if (!glue_payload_in_bounds(vm, value, *out_data, *out_size)) return MVM_E_INVALID_BYTECODE;
  return MVM_E_SUCCESS;
}

/* mvm_getMemoryStats, with two of its figures computed correctly: it takes
 * the heap capacity from pointers truncated to 16 bits (which wraps when a
 * bucket straddles a 64 kB address boundary), and reports the import table
 * size as the globals size. */
void glue_get_memory_stats(GlueContext* ctx, mvm_TsMemoryStats* out) {
  if (!ctx->vm) return;
  mvm_VM* vm = ctx->vm;
  mvm_getMemoryStats(vm, out);
  size_t wrong_capacity = out->virtualHeapAllocatedCapacity;
  size_t capacity = 0;
  TsBucket* last = vm->pLastBucket;
  if (last) {
    capacity = last->offsetStart +
      (size_t)((uint8_t*)vm->pLastBucketEndCapacity - (uint8_t*)getBucketDataBegin(last));
  }
  size_t wrong_globals = out->globalVariablesSize;
  size_t globals = getSectionSize(vm, BCS_GLOBALS);
  out->virtualHeapAllocatedCapacity = capacity;
  out->globalVariablesSize = globals;
  out->totalSize = out->totalSize - wrong_capacity + capacity - wrong_globals + globals;
}

void glue_stop_after(GlueContext* ctx, int32_t n) {
  if (!ctx->vm) return;
  mvm_stopAfterNInstructions(ctx->vm, n);
}
int32_t glue_instructions_remaining(GlueContext* ctx) {
  REQUIRE_VM(ctx, -1);
  return mvm_getInstructionCountRemaining(ctx->vm);
}
uint16_t glue_current_address(GlueContext* ctx) {
  REQUIRE_VM(ctx, 0);
  return mvm_getCurrentAddress(ctx->vm);
}

int glue_set_breakpoint(GlueContext* ctx, uint16_t address) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  GUARD(mvm_dbg_setBreakpoint(ctx->vm, address));
  return MVM_E_SUCCESS;
}
void glue_remove_breakpoint(GlueContext* ctx, uint16_t address) {
  if (!ctx->vm) return;
  mvm_dbg_removeBreakpoint(ctx->vm, address);
}
void glue_set_breakpoint_callback(GlueContext* ctx, mvm_TfBreakpointCallback cb) {
  if (!ctx->vm) return;
  mvm_dbg_setBreakpointCallback(ctx->vm, cb);
}

void glue_handle_init(GlueContext* ctx, mvm_Handle* handle) {
  if (!ctx->vm) return;
  mvm_initializeHandle(ctx->vm, handle);
}

void* glue_get_context(mvm_VM* vm) { return mvm_getContext(vm); }

/* ------------------------------------------------------------------------ */
/* Value kinds                                                              */
/* ------------------------------------------------------------------------ */

/* Values may point into the heap (RAM) or into the snapshot (ROM, for
 * objects the compiler placed there), so every read here goes through the
 * engine's long-pointer decoding. */

static bool is_promise(mvm_VM* vm, mvm_Value value) {
  Value promiseProto = getBuiltin(vm, BIN_PROMISE_PROTOTYPE);
  if (promiseProto == VM_VALUE_UNDEFINED) return false;
  LongPtr lp = DynamicPtr_decode_long(vm, value);
  uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(readAllocationHeaderWord_long(lp));
  if (size < 4 * sizeof(Value)) return false;
  return LongPtr_read2_aligned(LongPtr_add(lp, VM_OIS_PROTO * 2)) == promiseProto;
}

/*
 * Finer than mvm_typeOf: the host must tell apart fixed-length arrays
 * (read-only from the host), host function references (which go back to the
 * original host function), promises, and -0/NaN/int/float numbers.
 */
int glue_kind(GlueContext* ctx, mvm_Value value, uint16_t* out_extra) {
  REQUIRE_VM(ctx, GLUE_KIND_UNDEFINED);
  mvm_VM* vm = ctx->vm;
  TeTypeCode tc = deepTypeOf(vm, value);
  *out_extra = 0;
  switch (tc) {
    case TC_VAL_UNDEFINED: case TC_VAL_DELETED: return GLUE_KIND_UNDEFINED;
    case TC_VAL_NULL: return GLUE_KIND_NULL;
    case TC_VAL_TRUE: *out_extra = 1; return GLUE_KIND_BOOLEAN;
    case TC_VAL_FALSE: return GLUE_KIND_BOOLEAN;
    case TC_VAL_INT14: case TC_REF_INT32: case TC_REF_FLOAT64:
    case TC_VAL_NAN: case TC_VAL_NEG_ZERO: return GLUE_KIND_NUMBER;
    case TC_REF_STRING: case TC_REF_INTERNED_STRING:
    case TC_VAL_STR_LENGTH: case TC_VAL_STR_PROTO: return GLUE_KIND_STRING;
    case TC_REF_FUNCTION: case TC_REF_CLOSURE: case TC_VAL_NO_OP_FUNC: return GLUE_KIND_FUNCTION;
    case TC_REF_HOST_FUNC: {
      LongPtr lp = DynamicPtr_decode_long(vm, value);
      uint16_t index = READ_FIELD_2(lp, TsHostFunc, indexInImportTable);
      if (index >= getSectionSize(vm, BCS_IMPORT_TABLE) / sizeof(vm_TsImportTableEntry)) return GLUE_KIND_OTHER;
      *out_extra = vm_getHostFunctionId(vm, index);
      return GLUE_KIND_HOST_FUNCTION;
    }
    case TC_REF_CLASS: return GLUE_KIND_CLASS;
    case TC_REF_PROPERTY_LIST:
      return is_promise(vm, value) ? GLUE_KIND_PROMISE : GLUE_KIND_OBJECT;
    case TC_REF_ARRAY: return GLUE_KIND_ARRAY;
    case TC_REF_FIXED_LENGTH_ARRAY: return GLUE_KIND_FIXED_ARRAY;
    case TC_REF_UINT8_ARRAY: return GLUE_KIND_UINT8_ARRAY;
    default: return GLUE_KIND_OTHER;
  }
}

/* The prototype of a plain object (for class instances), or null. */
mvm_Value glue_object_proto(GlueContext* ctx, mvm_Value value) {
  REQUIRE_VM(ctx, VM_VALUE_UNDEFINED);
  mvm_VM* vm = ctx->vm;
  if (deepTypeOf(vm, value) != TC_REF_PROPERTY_LIST) return VM_VALUE_NULL;
  LongPtr lp = DynamicPtr_decode_long(vm, value);
  return READ_FIELD_2(lp, TsPropertyList, dpProto);
}

/* Array length without allocating; fixed-length arrays included. */
int glue_array_length(GlueContext* ctx, mvm_Value value) {
  REQUIRE_VM(ctx, -1);
  mvm_VM* vm = ctx->vm;
  TeTypeCode tc = deepTypeOf(vm, value);
  if (tc == TC_REF_ARRAY) {
    LongPtr lp = DynamicPtr_decode_long(vm, value);
    return VirtualInt14_decode(vm, READ_FIELD_2(lp, TsArray, viLength));
  }
  if (tc == TC_REF_FIXED_LENGTH_ARRAY) {
    LongPtr lp = DynamicPtr_decode_long(vm, value);
    return vm_getAllocationSizeExcludingHeaderFromHeaderWord(readAllocationHeaderWord_long(lp)) / 2;
  }
  return -1;
}



/* A guest reference to the host function `host_function_id`, which must be
 * one of the snapshot's imports (the engine calls imports by table index). */
int glue_new_host_function(GlueContext* ctx, uint16_t host_function_id, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_VM* vm = ctx->vm;
  uint16_t count = getSectionSize(vm, BCS_IMPORT_TABLE) / sizeof(vm_TsImportTableEntry);
  uint16_t index;
  for (index = 0; index < count; index++) {
    if (vm_getHostFunctionId(vm, index) == host_function_id) break;
  }
  if (index == count) return MVM_E_UNRESOLVED_IMPORT;
  volatile uint16_t found = index; /* read after setjmp */
  TsHostFunc* p = NULL;
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(vm, err, p = (TsHostFunc*)mvm_allocate(vm, sizeof(TsHostFunc), TC_REF_HOST_FUNC)));
  if (err) return err;
  p->indexInImportTable = found;
  *out = ShortPtr_encode(vm, p);
  return MVM_E_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Async                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Start of an asynchronous host function: must run before anything else in
 * the host function (it reads a register the next engine call overwrites).
 * Sets the guest's synchronous result (a promise) and returns the callback
 * that resumes the guest: callback(isSuccess, value).
 */
int glue_async_start(GlueContext* ctx, mvm_Value* result, mvm_Value* out_callback) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_VM* vm = ctx->vm;
  /* Without await points the compiler leaves the async machinery out, and
   * mvm_asyncStart would be a fatal error. */
  if (getBuiltin(vm, BIN_ASYNC_HOST_CALLBACK) == VM_VALUE_UNDEFINED) return MVM_E_ASYNC_WITHOUT_AWAIT;
  GUARD(*out_callback = mvm_asyncStart(vm, result));
  return MVM_E_SUCCESS;
}

/* State of a guest promise: 0 pending, 1 resolved, 2 rejected (with the
 * result or error in *out_value), -1 if not a promise. */
int glue_promise_state(GlueContext* ctx, mvm_Value promise, mvm_Value* out_value) {
  REQUIRE_VM(ctx, -1);
  mvm_VM* vm = ctx->vm;
  if (deepTypeOf(vm, promise) != TC_REF_PROPERTY_LIST || !is_promise(vm, promise)) return -1;
  LongPtr lp = DynamicPtr_decode_long(vm, promise);
  Value status = LongPtr_read2_aligned(LongPtr_add(lp, VM_OIS_PROMISE_STATUS * 2));
  Value out = LongPtr_read2_aligned(LongPtr_add(lp, VM_OIS_PROMISE_OUT * 2));
  if (status == VM_PROMISE_STATUS_RESOLVED) { *out_value = out; return 1; }
  if (status == VM_PROMISE_STATUS_REJECTED) { *out_value = out; return 2; }
  return 0;
}

/* Guest heap in use now (allocated since the last collection included). */
uint16_t glue_heap_size(GlueContext* ctx) {
  REQUIRE_VM(ctx, 0);
  return getHeapSize(ctx->vm);
}

/* Converts *inout (a string) to the engine's property-key form (an interned
 * string, or an integer for index-like strings), as getProperty expects. */
int glue_to_property_key(GlueContext* ctx, mvm_Value* inout) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = toPropertyName(ctx->vm, inout)));
  return err;
}
