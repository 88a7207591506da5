/*
 * The C side of the engine binding: the glue_* API that src/engine.rs calls
 * (declared in c/engine.h), compiled in one translation unit with the
 * engine itself and the rest of the glue, which all need the engine's
 * internal types. This file includes them in dependency order (each part
 * uses only what comes before it):
 *
 *   microvium.c   the engine: the pinned npm package's source with
 *                 c/patches/ applied (build.rs; found through the include
 *                 path, never copied here), configured by c/microvium_port.h,
 *                 whose c/bytecode_checks.h hangs checks off its markers
 *   verifier.c    the restore-time verifier of snapshots
 *   boundary.c    the fatal-error boundary (setjmp at every entry, longjmp
 *                 from MVM_FATAL_ERROR) and the calls out of engine code
 *   allocator.c   the port's allocator hooks and each VM's block table
 *   checks.c      the functions of the run-time checks
 *
 * and then defines the entry points: restore and free, calls, values made
 * and read (with value kinds the public API does not distinguish, class
 * construction, promises, property keys without allocating).
 *
 * Rust never calls an mvm_* function directly: everything goes through a
 * glue_* function below, and every one that runs engine code does so inside
 * a boundary, so every engine frame on the C stack is below one. The only
 * frames a longjmp skips are engine frames and the glue function's own.
 * That is why this is C: the setjmp must be in a C frame that Rust calls.
 */

/* Tells the parts (c/boundary.c, c/allocator.c, c/checks.c) that they are
 * compiled here, not alone. */
#define GLUE_ENGINE_UNIT 1
#include "microvium_port.h"
#include "engine.h"

/* See MVM_CASE in microvium_port.h: what `reg1I`/`reg2I` mean outside the
 * engine's integer blocks, which declare their own. */
static const int32_t reg1I = 0;
static const int32_t reg2I = 0;

/* Guest `**` gives Node's result: V8's pow differs from the C library's in
 * the last bit for some operands, so the host computes it (see
 * host_pow in src/number_format.rs). */
double glue_pow(double x, double y);
#define pow(x, y) glue_pow(x, y)

#include "microvium.c"
#include "verifier.c"
#include "boundary.c"
#include "allocator.c"
#include "checks.c"

/* ------------------------------------------------------------------------ */
/* Helpers of the entry points                                              */
/* ------------------------------------------------------------------------ */

/* Every entry point checks that the VM still exists: a host callback (a
 * getter on an object being converted, say) may have disposed it. */
#define REQUIRE_VM(ctx, result) do { if (!(ctx)->vm) return (result); } while (0)

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

/* ------------------------------------------------------------------------ */
/* What the entry points hand the engine: its calls to the host             */
/* ------------------------------------------------------------------------ */

/* Every import resolves to the host's one host-function callback, which the
 * engine reaches through this wrapper (see glue_restore). The callback the
 * host's resolver returns has the engine's type, but is called as this one. */
typedef mvm_TeError (*glue_HostFunction)(void* host, mvm_HostFunctionID id, mvm_Value* result,
                                         mvm_Value* args, uint8_t arg_count);

static mvm_TeError glue_host_function(mvm_VM* vm, mvm_HostFunctionID id, mvm_Value* result,
                                      mvm_Value* args, uint8_t arg_count) {
  GlueContext* ctx = (GlueContext*)mvm_getContext(vm);
  /* The host reads the arguments and writes the result outside engine code,
   * where a fault is not recoverable: both must lie in the stack block (the
   * engine takes them from below its stack pointer, which bytecode moves). */
  const uint16_t* bottom = (const uint16_t*)(vm->stack + 1);
  const uint16_t* lowest = (const uint16_t*)((const uint8_t*)vm->stack - STACK_FRONT_SLACK);
  const uint16_t* top = bottom + MVM_STACK_SIZE / 2;
  if ((const uint16_t*)args < lowest || (const uint16_t*)args + arg_count > top ||
      (const uint16_t*)result < lowest || (const uint16_t*)result >= top) {
    glue_fatal_error(vm, MVM_E_INVALID_BYTECODE);
  }
  LEAVE_ENGINE();
  /* The host's function gets its own data (ctx->host) where the engine's
   * callback type has the VM: it needs nothing else of the VM, and finding
   * its data from the VM would take two calls back into C. */
  mvm_TeError err = ((glue_HostFunction)ctx->host_function)(ctx->host, id, result, args, arg_count);
  REENTER_ENGINE();
  glue_limits_after_host_call(ctx); /* time in the host counts (c/boundary.c) */
  /* A fatal error of this VM during the host function (in a nested call the
   * host caught): the engine's state is unknown, so not one more guest
   * instruction may run, not even the unwinding of an error. */
  if ((int)err >= GLUE_FATAL_BASE) glue_fatal_error(vm, (int)err - GLUE_FATAL_BASE);
  return err;
}

static void glue_breakpoint_entry(mvm_VM* vm, uint16_t address) {
  GlueContext* ctx = (GlueContext*)mvm_getContext(vm);
  LEAVE_ENGINE();
  int fatal = ((glue_BreakpointCallback)ctx->breakpoint_callback)(vm, address);
  REENTER_ENGINE();
  /* As for host functions: a fatal error of this VM during the callback. */
  if (fatal) glue_fatal_error(vm, fatal);
}

static GLUE_TLS mvm_TfResolveImport host_resolver;

/* The host's resolver, with the host function it returns kept in the
 * context and the wrapper handed to the engine instead. */
static mvm_TeError glue_resolve_import(mvm_HostFunctionID id, void* context, mvm_TfHostFunction* out) {
  GlueContext* ctx = (GlueContext*)context;
  LEAVE_ENGINE();
  mvm_TeError err = host_resolver(id, context, out);
  REENTER_ENGINE();
  if (*out) {
    if (ctx->host_function && ctx->host_function != (void*)*out) return MVM_E_UNEXPECTED;
    ctx->host_function = (void*)*out;
    *out = glue_host_function;
  }
  return err;
}

/* ------------------------------------------------------------------------ */
/* Guarded engine entry points                                              */
/* ------------------------------------------------------------------------ */

/* The detail of the last restore the verifier rejected on this thread. */
const char* glue_verify_detail(void) { return verifier_last_detail(); }

/* What the glue keeps for the calling thread, freed when its env goes. */
void glue_thread_cleanup(void) { verifier_thread_cleanup(); }

int glue_check_header(const uint8_t* bytes, size_t size, const char** detail) {
  return verifier_check_header(bytes, size, true, detail);
}

int glue_restore(GlueContext* ctx, const uint8_t* bytes, size_t size,
                 mvm_TfResolveImport resolve) {
  mvm_TeError err = MVM_E_SUCCESS;
  mvm_VM* vm = NULL;
  host_resolver = resolve;
#ifndef GLUE_UNCHECKED
  /* Before the engine sees the bytes: mvm_restore itself walks the heap,
   * trusting every allocation header. The result lives in the block list
   * and is freed with the VM. */
  const char* detail = NULL;
  VerifierResult* verified = NULL;
  err = verifier_verify(bytes, size, verifier_alloc, ctx, &verified, &detail);
  if (err) return err;
  ctx->verified = verified;
#endif
  GUARD(err = mvm_restore(&vm, (MVM_LONG_PTR_TYPE)bytes, size, ctx, glue_resolve_import));
  if (err == MVM_E_SUCCESS) ctx->vm = vm;
  return err;
}

/* Frees the VM and every block it still holds. After a fatal error the
 * engine's own structures may be inconsistent, so mvm_free is skipped and
 * the block list alone frees everything. */
static void free_vm_guarded(GlueContext* ctx) {
  /* A fatal error inside mvm_free (an assertion on a corrupted heap) leaves
   * the rest to the block list below. */
  GUARD_OR(ctx, , mvm_free(ctx->vm));
}

void glue_free_vm(GlueContext* ctx, bool after_fatal_error) {
  if (ctx->vm && !after_fatal_error) free_vm_guarded(ctx);
  ctx->vm = NULL;
  ctx->spare_stack = NULL; /* it is in the block list */
  ctx->checked_bits = NULL; /* so is this */
  ctx->verified = NULL;     /* and this */
  block_free_all(ctx);
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

int glue_construct(GlueContext* ctx, mvm_Value* target, mvm_Value* ctor, mvm_Value* proto) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = glue_construct_unguarded(ctx->vm, target, ctor, proto)));
  return err;
}

int glue_new_string(GlueContext* ctx, const char* utf8, size_t size, mvm_Value* out) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  if (size > MAX_ALLOCATION_SIZE - 1) return MVM_E_ALLOCATION_TOO_LARGE;
  /* No WITH_STACK: making a string pushes nothing on the VM's stack (it
   * allocates, and a collection the allocation runs is the one mvm_runGC
   * runs between calls), so it needs none, and a string into the guest
   * does not pay for allocating and freeing one. */
  GUARD(*out = mvm_newString(ctx->vm, utf8, size));
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

/*
 * In safe mode getProperty and setProperty overwrite their object argument
 * (the engine's own check that a caller does not reuse a value that may
 * have moved). The host's slot must keep the object, so the engine gets a
 * copy in a temporary handle, which the collector keeps current. The handle
 * is unlinked whether or not the call ended in a fatal error.
 */
#if MVM_SAFE_MODE
static mvm_Value* temp_handle_push(mvm_VM* vm, mvm_Handle* h, mvm_Value value) {
  h->_next = vm->gc_handles;
  vm->gc_handles = h;
  h->_value = value;
  return &h->_value;
}

static void temp_handle_unlink(mvm_VM* vm, mvm_Handle* h) {
  for (mvm_Handle** p = &vm->gc_handles; *p; p = &(*p)->_next) {
    if (*p == h) { *p = h->_next; return; }
  }
}
#endif

typedef mvm_TeError (*PropertyOp)(VM* vm, Value* object, Value* key, Value* value);

static int property_op_guarded(GlueContext* ctx, PropertyOp op, mvm_Value* object,
                               mvm_Value* key, mvm_Value* value) {
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = op(ctx->vm, object, key, value)));
  return err;
}

/* getProperty (value is the result) or setProperty (value is stored). */
static int property_op(GlueContext* ctx, PropertyOp op, mvm_Value* object, mvm_Value* key,
                       mvm_Value* value) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
#if MVM_SAFE_MODE
  mvm_VM* vm = ctx->vm;
  mvm_Handle copy;
  int err = property_op_guarded(ctx, op, temp_handle_push(vm, &copy, *object), key, value);
  temp_handle_unlink(vm, &copy);
  return err;
#else
  return property_op_guarded(ctx, op, object, key, value);
#endif
}

/* Object, key and result must be handle slots: getProperty can allocate. */
int glue_get_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* out) {
  return property_op(ctx, getProperty, object, key, out);
}

int glue_set_property(GlueContext* ctx, mvm_Value* object, mvm_Value* key, mvm_Value* value) {
  return property_op(ctx, setProperty, object, key, value);
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
  double result = 0;
  GUARD_OR(ctx, 0, result = mvm_toFloat64(ctx->vm, value));
  return result;
}

/* The bytes of a Uint8Array, which may live in the heap or (for arrays the
 * compiler placed there) in the snapshot's read-only section. Writable only
 * in the first case. */
static int uint8array_bytes_unguarded(mvm_VM* vm, mvm_Value value, uint8_t** out_data,
                                     size_t* out_size, bool* out_writable) {
  if (deepTypeOf(vm, value) != TC_REF_UINT8_ARRAY) return MVM_E_TYPE_ERROR;
  LongPtr lp = DynamicPtr_decode_long(vm, value);
  uint16_t headerWord = readAllocationHeaderWord_long(lp);
  *out_size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(headerWord);
  *out_data = (uint8_t*)MVM_LONG_PTR_TRUNCATE(lp);
  /* In the heap, directly or through a handle (exports refer to heap
   * objects that way); not in the snapshot itself. */
  *out_writable = Value_isShortPtr(vm_resolveIndirections(vm, value));
  if (!glue_payload_in_bounds(vm, value, *out_data, *out_size)) return MVM_E_INVALID_BYTECODE;
  return MVM_E_SUCCESS;
}

int glue_uint8array_bytes(GlueContext* ctx, mvm_Value value, uint8_t** out_data, size_t* out_size,
                          bool* out_writable) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  *out_data = NULL;
  *out_size = 0;
  *out_writable = false;
  int err = 0;
  GUARD_OR(ctx, GLUE_FATAL_BASE + ctx->fatal_code,
           err = uint8array_bytes_unguarded(ctx->vm, value, out_data, out_size, out_writable));
  return err;
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

/* While a sandbox limit holds the counter at 0 (c/boundary.c), the gas
 * setting is kept aside until the outermost call returns. */
void glue_stop_after(GlueContext* ctx, int32_t n) {
  if (!ctx->vm) return;
  if (ctx->stop_reason) { ctx->saved_gas = n; return; }
  mvm_stopAfterNInstructions(ctx->vm, n);
}
int32_t glue_instructions_remaining(GlueContext* ctx) {
  REQUIRE_VM(ctx, -1);
  if (ctx->stop_reason) return ctx->saved_gas;
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
void glue_set_breakpoint_callback(GlueContext* ctx, glue_BreakpointCallback cb) {
  if (!ctx->vm) return;
  ctx->breakpoint_callback = (void*)cb;
  mvm_dbg_setBreakpointCallback(ctx->vm, cb ? glue_breakpoint_entry : NULL);
}

/* What mvm_initializeHandle does, without its safe-mode check that the
 * handle is not registered yet: that check walks every registered handle,
 * which made registering n handles O(n^2). The host registers each slot
 * exactly once (src/handles.rs). */
void glue_handle_init(GlueContext* ctx, mvm_Handle* handle) {
  if (!ctx->vm) return;
  handle->_next = ctx->vm->gc_handles;
  ctx->vm->gc_handles = handle;
  handle->_value = VM_VALUE_UNDEFINED;
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
static int kind_unguarded(mvm_VM* vm, mvm_Value value, uint16_t* out_extra) {
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
#ifdef VM_IMPORT_INDEX_ARRAY_PUSH
      /* The engine's own push (c/patches/array-push.patch): a guest function. */
      if (index == VM_IMPORT_INDEX_ARRAY_PUSH) return GLUE_KIND_FUNCTION;
#endif
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

int glue_kind(GlueContext* ctx, mvm_Value value, uint16_t* out_extra) {
  *out_extra = 0;
  REQUIRE_VM(ctx, GLUE_KIND_UNDEFINED);
  int kind = GLUE_KIND_OTHER;
  GUARD_OR(ctx, GLUE_KIND_OTHER, kind = kind_unguarded(ctx->vm, value, out_extra));
  return kind;
}

/* glue_kind and, for a string, glue_string_utf8 (its status in
 * *out_status; untouched otherwise): one boundary for the usual value out
 * of the guest. */
int glue_kind_string(GlueContext* ctx, mvm_Value value, uint16_t* out_extra, const char** out_ptr,
                     size_t* out_size, int* out_status) {
  *out_extra = 0;
  REQUIRE_VM(ctx, GLUE_KIND_UNDEFINED);
  int kind = GLUE_KIND_OTHER;
  GUARD_OR(ctx, GLUE_KIND_OTHER, {
    kind = kind_unguarded(ctx->vm, value, out_extra);
    if (kind == GLUE_KIND_STRING) *out_ptr = mvm_toStringUtf8(ctx->vm, value, out_size);
  });
  if (kind == GLUE_KIND_STRING) {
    *out_status = glue_payload_in_bounds(ctx->vm, value, *out_ptr, *out_size) ? MVM_E_SUCCESS
                                                                              : MVM_E_INVALID_BYTECODE;
  }
  return kind;
}

/* The prototype of a plain object (for class instances), or null. */
static mvm_Value object_proto_unguarded(mvm_VM* vm, mvm_Value value) {
  if (deepTypeOf(vm, value) != TC_REF_PROPERTY_LIST) return VM_VALUE_NULL;
  LongPtr lp = DynamicPtr_decode_long(vm, value);
  return READ_FIELD_2(lp, TsPropertyList, dpProto);
}

mvm_Value glue_object_proto(GlueContext* ctx, mvm_Value value) {
  REQUIRE_VM(ctx, VM_VALUE_UNDEFINED);
  mvm_Value proto = VM_VALUE_NULL;
  GUARD_OR(ctx, VM_VALUE_NULL, proto = object_proto_unguarded(ctx->vm, value));
  return proto;
}

/* Array length without allocating; fixed-length arrays included. */
static int array_length_unguarded(mvm_VM* vm, mvm_Value value) {
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



int glue_array_length(GlueContext* ctx, mvm_Value value) {
  REQUIRE_VM(ctx, -1);
  int length = -1;
  GUARD_OR(ctx, -1, length = array_length_unguarded(ctx->vm, value));
  return length;
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
  mvm_TeError err = MVM_E_SUCCESS;
  /* Without await points the compiler leaves the async machinery out, and
   * mvm_asyncStart would be a fatal error. getBuiltin is inside the boundary
   * too: it checks the snapshot's builtins, and a failed check outside one
   * would jump to the caller's boundary across the host's frames. */
  GUARD(if (getBuiltin(vm, BIN_ASYNC_HOST_CALLBACK) == VM_VALUE_UNDEFINED) err = MVM_E_ASYNC_WITHOUT_AWAIT;
        else *out_callback = mvm_asyncStart(vm, result));
  return err;
}

/* State of a guest promise: 0 pending, 1 resolved, 2 rejected (with the
 * result or error in *out_value), -1 if not a promise. */
static int promise_state_unguarded(mvm_VM* vm, mvm_Value promise, mvm_Value* out_value) {
  if (deepTypeOf(vm, promise) != TC_REF_PROPERTY_LIST || !is_promise(vm, promise)) return -1;
  LongPtr lp = DynamicPtr_decode_long(vm, promise);
  Value status = LongPtr_read2_aligned(LongPtr_add(lp, VM_OIS_PROMISE_STATUS * 2));
  Value out = LongPtr_read2_aligned(LongPtr_add(lp, VM_OIS_PROMISE_OUT * 2));
  if (status == VM_PROMISE_STATUS_RESOLVED) { *out_value = out; return 1; }
  if (status == VM_PROMISE_STATUS_REJECTED) { *out_value = out; return 2; }
  return 0;
}

int glue_promise_state(GlueContext* ctx, mvm_Value promise, mvm_Value* out_value) {
  REQUIRE_VM(ctx, -1);
  int state = -1;
  GUARD_OR(ctx, -1, state = promise_state_unguarded(ctx->vm, promise, out_value));
  return state;
}

/* Guest heap in use now (allocated since the last collection included). */
uint16_t glue_heap_size(GlueContext* ctx) {
  REQUIRE_VM(ctx, 0);
  return getHeapSize(ctx->vm);
}

/* The heap's size (low 16 bits) and the offset at which its last bucket's
 * room ends (high 16 bits): the heap cannot grow past that without a new
 * bucket, which takes a glue_malloc (ctx->mallocs). 0 before restore. */
uint32_t glue_heap_extent(GlueContext* ctx) {
  REQUIRE_VM(ctx, 0);
  mvm_VM* vm = ctx->vm;
  TsBucket* last = vm->pLastBucket;
  if (!last) return 0;
  uint16_t end = (uint16_t)(last->offsetStart
    + ((uint8_t*)vm->pLastBucketEndCapacity - (uint8_t*)getBucketDataBegin(last)));
  return ((uint32_t)end << 16) | getHeapSize(vm);
}

/* Converts *inout (a string) to the engine's property-key form (an interned
 * string, or an integer for index-like strings), as getProperty expects. */
int glue_to_property_key(GlueContext* ctx, mvm_Value* inout) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = toPropertyName(ctx->vm, inout)));
  return err;
}

/* ------------------------------------------------------------------------ */
/* Property keys without allocation (src/keys.rs)                           */
/* ------------------------------------------------------------------------ */

/*
 * The interned string in ROM (the snapshot's string table) whose bytes are
 * `name` (size bytes including a terminating NUL, as the engine sizes
 * strings), searched as toInternedString searches it but never interning.
 * The RAM list of interned strings is searched by the host through its own
 * index (glue_intern_list; src/keys.rs): walking it on every read is slow.
 */
static bool find_rom_key_unguarded(VM* vm, const char* name, uint16_t size, Value* out) {
  LongPtr lpName = LongPtr_new((void*)name);
  LongPtr lpBytecode = vm->lpBytecode;
  uint16_t tableOffset = getSectionOffset(lpBytecode, BCS_STRING_TABLE);
  uint16_t tableSize = getSectionOffset(lpBytecode, vm_sectionAfter(vm, BCS_STRING_TABLE)) - tableOffset;
  int first = 0;
  int last = tableSize / 2 - 1;
  while (first <= last) {
    int middle = (first + last) / 2;
    uint16_t entryOffset = tableOffset + middle * 2;
    GLUE_REQUIRE(glue_check_string_table_entry(vm, entryOffset));
    Value vStr = LongPtr_read2_aligned(LongPtr_add(lpBytecode, entryOffset));
    LongPtr lpStr = DynamicPtr_decode_long(vm, vStr);
    uint16_t strSize = vm_getAllocationSizeExcludingHeaderFromHeaderWord(readAllocationHeaderWord_long(lpStr));
    int c = memcmp_long(lpName, lpStr, size < strSize ? size : strSize);
    if (c == 0) {
      if (size == strSize) { *out = vStr; return true; }
      c = size < strSize ? -1 : 1;
    }
    if (c > 0) first = middle + 1; else last = middle - 1;
  }
  return false;
}

int glue_find_rom_key(GlueContext* ctx, const char* name, size_t size, mvm_Value* out, bool* out_found) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  *out_found = false;
  if (size == 0 || size > 0xFFFF) return MVM_E_SUCCESS;
  bool found = false;
  Value key = VM_VALUE_UNDEFINED;
  GUARD(found = find_rom_key_unguarded(ctx->vm, name, (uint16_t)size, &key));
  *out_found = found;
  *out = key;
  return MVM_E_SUCCESS;
}

/* The first cell of the RAM list of interned strings (newest first;
 * toInternedString adds at the front), or undefined. */
mvm_Value glue_intern_head(GlueContext* ctx) {
  REQUIRE_VM(ctx, VM_VALUE_UNDEFINED);
  mvm_Value head = VM_VALUE_UNDEFINED;
  GUARD_OR(ctx, VM_VALUE_UNDEFINED, head = getBuiltin(ctx->vm, BIN_INTERNED_STRINGS));
  return head;
}

/*
 * The strings of the RAM list of interned strings, from its first cell up
 * to the cell `stop` (not included) or the end: at most `cap` of them into
 * out[]. *out_count says how many; *out_stopped whether `stop` was reached.
 * The list is checked as toInternedString checks it.
 */
static void intern_list_unguarded(VM* vm, Value stop, Value* out, size_t cap, size_t* out_count, bool* out_stopped) {
  Value spCell = getBuiltin(vm, BIN_INTERNED_STRINGS);
  size_t n = 0;
  while (spCell != VM_VALUE_UNDEFINED && n < cap) {
    if (spCell == stop) { *out_stopped = true; break; }
    GLUE_REQUIRE(glue_count_step());
    GLUE_REQUIRE(glue_check_intern_cell(vm, spCell));
    TsInternedStringCell* pCell = ShortPtr_decode(vm, spCell);
    out[n++] = pCell->str;
    spCell = pCell->spNext;
  }
  *out_count = n;
}

int glue_intern_list(GlueContext* ctx, mvm_Value stop, mvm_Value* out, size_t cap, size_t* out_count,
                     bool* out_stopped) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  *out_count = 0;
  *out_stopped = false;
  GUARD(intern_list_unguarded(ctx->vm, stop, out, cap, out_count, out_stopped));
  return MVM_E_SUCCESS;
}

/*
 * An own property of an object (a class: of its static members) by its key
 * in the engine's form (toPropertyName's), without building the list of
 * all keys: true with its value in *out, or false. The prototype is not
 * searched. Arrays are the host's business.
 */
static bool own_property_unguarded(VM* vm, Value object, Value key, Value* out) {
  TeTypeCode tc = deepTypeOf(vm, object);
  if (tc == TC_REF_CLASS) {
    object = READ_FIELD_2(DynamicPtr_decode_long(vm, object), TsClass, staticProps);
    tc = deepTypeOf(vm, object);
  }
  if (tc != TC_REF_PROPERTY_LIST) return false;
  Value list = object;
  while (list != VM_VALUE_NULL) {
    GLUE_REQUIRE(glue_count_step());
    GLUE_REQUIRE(glue_check_proplist_link(vm, list, false));
    LongPtr lpList = DynamicPtr_decode_long(vm, list);
    uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(readAllocationHeaderWord_long(lpList));
    GLUE_REQUIRE(size >= sizeof(TsPropertyList));
    uint16_t count = (size - sizeof(TsPropertyList)) / 4;
    LongPtr p = LongPtr_add(lpList, sizeof(TsPropertyList));
    while (count--) {
      if (LongPtr_read2_aligned(p) == key) {
        *out = LongPtr_read2_aligned(LongPtr_add(p, 2));
        return true;
      }
      p = LongPtr_add(p, 4);
    }
    list = READ_FIELD_2(lpList, TsPropertyList, dpNext);
  }
  return false;
}

int glue_own_property(GlueContext* ctx, mvm_Value object, mvm_Value key, mvm_Value* out, bool* out_found) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  *out_found = false;
  bool found = false;
  Value value = VM_VALUE_UNDEFINED;
  GUARD(found = own_property_unguarded(ctx->vm, object, key, &value));
  *out_found = found;
  *out = value;
  return MVM_E_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* What src/engine.rs declares again (see c/engine.h)                       */
/* ------------------------------------------------------------------------ */

typedef struct LayoutItem {
  const char* name;
  size_t value;
} LayoutItem;

#define LAYOUT_OF(type) { #type, sizeof(type) }, { "(align)", _Alignof(type) }
#define FIELD_OF(type, field) { #field, offsetof(type, field) }

static const LayoutItem context_layout[] = {
  LAYOUT_OF(GlueContext),
  FIELD_OF(GlueContext, vm),
  FIELD_OF(GlueContext, host),
  FIELD_OF(GlueContext, spare_stack),
  FIELD_OF(GlueContext, gc_epoch),
  FIELD_OF(GlueContext, blocks),
  FIELD_OF(GlueContext, poll_count),
  FIELD_OF(GlueContext, bytes),
  FIELD_OF(GlueContext, fatal_code),
  FIELD_OF(GlueContext, host_function),
  FIELD_OF(GlueContext, breakpoint_callback),
  FIELD_OF(GlueContext, checked_epoch),
  FIELD_OF(GlueContext, checked_bits),
  FIELD_OF(GlueContext, fatal_reason),
  FIELD_OF(GlueContext, verified),
  FIELD_OF(GlueContext, time_limit_ms),
  FIELD_OF(GlueContext, deadline_ns),
  FIELD_OF(GlueContext, interrupt),
  FIELD_OF(GlueContext, saved_gas),
  FIELD_OF(GlueContext, stop_reason),
  FIELD_OF(GlueContext, heap_limit),
  FIELD_OF(GlueContext, mallocs),
};

static const LayoutItem memory_stats_layout[] = {
  LAYOUT_OF(mvm_TsMemoryStats),
  FIELD_OF(mvm_TsMemoryStats, totalSize),
  FIELD_OF(mvm_TsMemoryStats, fragmentCount),
  FIELD_OF(mvm_TsMemoryStats, coreSize),
  FIELD_OF(mvm_TsMemoryStats, importTableSize),
  FIELD_OF(mvm_TsMemoryStats, globalVariablesSize),
  FIELD_OF(mvm_TsMemoryStats, registersSize),
  FIELD_OF(mvm_TsMemoryStats, stackHeight),
  FIELD_OF(mvm_TsMemoryStats, stackAllocatedCapacity),
  FIELD_OF(mvm_TsMemoryStats, stackHighWaterMark),
  FIELD_OF(mvm_TsMemoryStats, virtualHeapUsed),
  FIELD_OF(mvm_TsMemoryStats, virtualHeapHighWaterMark),
  FIELD_OF(mvm_TsMemoryStats, virtualHeapAllocatedCapacity),
};

static const LayoutItem handle_layout[] = {
  LAYOUT_OF(mvm_Handle),
  FIELD_OF(mvm_Handle, _value),
  FIELD_OF(mvm_Handle, _next),
};

bool glue_layout(int which, size_t item, const char** out_name, size_t* out_value) {
  const LayoutItem* items;
  size_t count;
  switch (which) {
    case GLUE_LAYOUT_CONTEXT: items = context_layout; count = sizeof context_layout / sizeof *items; break;
    case GLUE_LAYOUT_MEMORY_STATS: items = memory_stats_layout; count = sizeof memory_stats_layout / sizeof *items; break;
    case GLUE_LAYOUT_HANDLE: items = handle_layout; count = sizeof handle_layout / sizeof *items; break;
    default: return false;
  }
  if (item >= count) return false;
  *out_name = items[item].name;
  *out_value = items[item].value;
  return true;
}

static const struct { const char* name; mvm_Value value; } well_known_values[] = {
  { "UNDEFINED", VM_VALUE_UNDEFINED },
  { "NULL", VM_VALUE_NULL },
  { "TRUE", VM_VALUE_TRUE },
  { "FALSE", VM_VALUE_FALSE },
  { "DELETED", VM_VALUE_DELETED },
  { "STR_LENGTH", VM_VALUE_STR_LENGTH },
  { "STR_PROTO", VM_VALUE_STR_PROTO },
};

bool glue_well_known_value(size_t item, const char** out_name, mvm_Value* out_value) {
  if (item >= sizeof well_known_values / sizeof *well_known_values) return false;
  *out_name = well_known_values[item].name;
  *out_value = well_known_values[item].value;
  return true;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * For the tests of the fault net (__test__/hostile-snapshots.test.js): a
 * read of an unmapped address as engine code, inside a boundary. Returns
 * GLUE_FATAL_BASE + MVM_E_INVALID_BYTECODE when the net caught the fault;
 * without the net the process ends, so callers first ask
 * glue_fault_net_installed.
 */
int glue_fault_net_self_test(void) {
  volatile uint16_t* volatile unmapped = (volatile uint16_t*)(uintptr_t)16;
  int value = 0;
  GUARD(value = *unmapped);
  return value;
}
