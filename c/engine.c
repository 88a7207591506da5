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
#include <signal.h>
#include <stdatomic.h>
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

static void* block_alloc(GlueContext* ctx, size_t size, size_t front);

/*
 * Room before the virtual stack. Some instructions address the stack at an
 * offset taken from the bytecode without a check the host can add (SUB_NEW
 * reaches up to 256 words below the stack pointer); this keeps such reads
 * and writes inside the VM's own allocation.
 */
#define STACK_FRONT_SLACK 1024

/* ------------------------------------------------------------------------ */
/* The checks of c/bytecode_checks.h                                        */
/* ------------------------------------------------------------------------ */

/* These run only where a value the program made is read as a given type
 * (see the top of c/bytecode_checks.h); the rest was proved at restore by
 * c/verifier.c. They check each pointer fully (glue_check_short_ptr), as a
 * second line behind the verifier: none of them runs per instruction. */
static inline bool glue_check_short_ptr(void* vm, uint16_t value);

/* What vm_findScopedVariable will walk for variable `index`: closures,
 * linked through their last slot, until the one holding the variable. The
 * links are values (the verifier's invariant), so each decodes to some
 * allocation; what the program can change is their type. This runs on
 * every scoped variable access, so it decodes as the engine's walk does,
 * without deepTypeOf's dispatch. A walk that runs out of closures is what
 * the 8.0.0 compiler's scope defect looks like (see GLUE_REASON_NO_SCOPE),
 * so it says so. */
static inline bool glue_check_scoped(void* vm, uint16_t index) {
  VM* v = (VM*)vm;
  uint32_t offset = (uint32_t)index * 2;
  Value scope = v->stack->reg.closure;
  for (int depth = 0; depth < 4096; depth++) {
    LongPtr lp;
    if (Value_isShortPtr(scope)) {
      lp = LongPtr_new(ShortPtr_decode(v, scope));
    } else if ((scope & 3) == 1 && scope >= VM_VALUE_WELLKNOWN_END) {
      lp = BytecodeMappedPtr_decode_long(v, scope);
    } else {
      ((GlueContext*)v->context)->fatal_reason = GLUE_REASON_NO_SCOPE;
      return false;
    }
    uint16_t header = readAllocationHeaderWord_long(lp);
    if (vm_getTypeCodeFromHeaderWord(header) != TC_REF_CLOSURE) {
      ((GlueContext*)v->context)->fatal_reason = GLUE_REASON_NO_SCOPE;
      return false;
    }
    uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(header);
    if (offset < size) return true;
    offset -= size;
    scope = LongPtr_read2_aligned(LongPtr_add(lp, (int16_t)(size - 2)));
  }
  return false;
}

/* The payload of the heap allocation `value` leads to, if it is a heap
 * pointer that passes glue_check_short_ptr; else NULL. */
static const uint16_t* checked_heap_payload(VM* vm, Value value) {
  if (!Value_isShortPtr(value) || !glue_check_short_ptr(vm, value)) return NULL;
  return (const uint16_t*)ShortPtr_decode(vm, value);
}

/* A cell of the list of interned strings in RAM (TsInternedStringCell:
 * spNext, str), and its string in the heap. */
static bool glue_check_intern_cell(void* vm, uint16_t cell) {
  const uint16_t* p = checked_heap_payload((VM*)vm, cell);
  if (!p || vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) < 4) return false;
  Value str = ((const TsInternedStringCell*)p)->str;
  if (!checked_heap_payload((VM*)vm, str)) return false;
  TeTypeCode tc = deepTypeOf((VM*)vm, str);
  return tc == TC_REF_STRING || tc == TC_REF_INTERNED_STRING;
}


/* VM_OP3_ASYNC_RESUME (its 3 bytes end at `pc`) copies `count` saved stack
 * slots from the current closure (after its continuation and callback
 * slots) onto the stack; the catch targets among them must be those its
 * AWAIT saved (the verifier's table, see verifier_check_resume). */
static bool glue_check_async_resume(void* vm, const void* pc, Value closure, uint16_t count,
                                    const uint16_t* sp) {
  VM* v = (VM*)vm;
  const uint16_t* p = checked_heap_payload(v, closure);
  if (!p || vm_getTypeCodeFromHeaderWord(p[-1]) != TC_REF_CLOSURE) return false;
  uint16_t slots = vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) / 2;
  if (slots < 2u + count) return false;
  const uint16_t* top = (const uint16_t*)(v->stack + 1) + MVM_STACK_SIZE / 2;
  if (sp + count > top) return false;
  uint16_t offset = (uint16_t)((const uint8_t*)pc - (const uint8_t*)v->lpBytecode - 3);
  return verifier_check_resume((const VerifierResult*)((GlueContext*)v->context)->verified, offset, p, slots);
}

/* A value of the given allocation type (any valid value may be asked). */
static bool glue_check_type(void* vm, Value value, int type) {
  return deepTypeOf((VM*)vm, value) == (TeTypeCode)type;
}

/* SUB_AWAIT (before its pop): the stack above the frame's first three slots,
 * less the awaited value, is saved into the current closure after its two
 * first slots. */
static bool glue_check_await(void* vm, Value closure, const uint16_t* frame, const uint16_t* sp) {
  VM* v = (VM*)vm;
  const uint16_t* p = checked_heap_payload(v, closure);
  if (!p || vm_getTypeCodeFromHeaderWord(p[-1]) != TC_REF_CLOSURE) return false;
  const uint16_t* bottom = (const uint16_t*)(v->stack + 1);
  if (frame < bottom || sp < bottom + 1) return false;
  size_t words = sp - 1 > frame + 3 ? (size_t)(sp - 1 - (frame + 3)) : 0;
  return vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) >= (words + 2) * 2;
}

/* Slot `index` of a closure in the heap. */
static bool glue_check_closure_slot(void* vm, Value closure, uint16_t index) {
  const uint16_t* p = checked_heap_payload((VM*)vm, closure);
  return p && vm_getTypeCodeFromHeaderWord(p[-1]) == TC_REF_CLOSURE &&
         vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) >= (index + 1u) * 2;
}

/* A class's prototype (already checked as a heap property list) holds its
 * instances' internal-slot template: dpNext, dpProto, a magic key, the slot
 * count, then `slots` values. */
static bool glue_check_slot_template(void* vm, Value prototype, uint16_t slots) {
  const uint16_t* p = checked_heap_payload((VM*)vm, prototype);
  return p && vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) >= (4u + slots) * 2;
}

/* The collector, compacting a dynamic array: its data (which it truncates to
 * the length by rewriting the header) is a fixed-length array in the heap
 * being collected, at least as long as the length. */
static const uint16_t* heap_allocation_at(VM* v, uint16_t value);

static bool glue_check_gc_array(void* vm, Value data, Value length) {
  VM* v = (VM*)vm;
  if (!Value_isVirtualInt14(length) || VirtualInt14_decode(v, length) < 0) return false;
  const uint16_t* p = heap_allocation_at(v, data);
  if (!p || vm_getTypeCodeFromHeaderWord(p[-1]) != TC_REF_FIXED_LENGTH_ARRAY) return false;
  return (uint32_t)VirtualInt14_decode(v, length) * 2 <= vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]);
}

/* SUB_ASYNC_COMPLETE settling the promise an async function returned: the
 * engine writes its status and result slots through a heap pointer. */
static bool glue_check_promise(void* vm, Value promise) {
  const uint16_t* p = checked_heap_payload((VM*)vm, promise);
  return p && vm_getTypeCodeFromHeaderWord(p[-1]) == TC_REF_PROPERTY_LIST &&
         vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]) >= 4 * sizeof(Value);
}

/* The glue's own walks (own_property_unguarded, below) check what they
 * follow as getProperty's checks did before the verifier: getProperty walks
 * an object's property lists and then its prototype chain, reading each link as a property list whatever its type. A chain of
 * lists ends only at null; a prototype chain also at undefined (which
 * decodes to a null pointer, the loop's end there, but would be read
 * through as a list in the middle of a chain). */
static bool glue_check_proplist_link(void* vm, Value link, bool undefined_ends) {
  if (link == VM_VALUE_NULL || (undefined_ends && link == VM_VALUE_UNDEFINED)) return true;
  return deepTypeOf((VM*)vm, link) == TC_REF_PROPERTY_LIST;
}

/* An entry of the string table (the offset is inside the section: the
 * binary search stays within its count) leads to a string. The compiler
 * lists every string literal there, numeric-looking ones ('1', '1.5') as
 * plain strings (TC_REF_STRING), which the search reads the same way. */
static bool glue_check_string_table_entry(void* vm, uint16_t offset) {
  Value str = LongPtr_read2_aligned(LongPtr_add(((VM*)vm)->lpBytecode, offset));
  TeTypeCode tc = deepTypeOf((VM*)vm, str);
  return tc == TC_REF_INTERNED_STRING || tc == TC_REF_STRING;
}

/* A pointer past the ROM section names a slot of the globals section. */
static bool glue_check_handle_slot(void* vm, uint16_t value) {
  LongPtr lpBytecode = ((VM*)vm)->lpBytecode;
  uint16_t start = getSectionOffset(lpBytecode, BCS_GLOBALS);
  uint16_t end = getSectionOffset(lpBytecode, vm_sectionAfter((VM*)vm, BCS_GLOBALS));
  uint16_t offset = start + ((uint16_t)(value - start) / 2) * 2;
  return value >= start && offset + 2 <= end;
}

/* What the engine assumes of an allocation of each type, beyond its size
 * fitting in memory: the fixed layouts of its structs. */
static bool layout_ok(uint16_t header) {
  uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(header);
  switch (vm_getTypeCodeFromHeaderWord(header)) {
    case TC_REF_TOMBSTONE: return false;
    case TC_REF_INT32: return size == 4;
    case TC_REF_FLOAT64: return size == 8;
    case TC_REF_STRING: case TC_REF_INTERNED_STRING: return size >= 1;
    case TC_REF_HOST_FUNC: return size == sizeof(TsHostFunc);
    case TC_REF_CLASS: return size == sizeof(TsClass);
    case TC_REF_PROPERTY_LIST:
      return size >= sizeof(TsPropertyList) && (size - sizeof(TsPropertyList)) % 4 == 0;
    case TC_REF_ARRAY: return size == sizeof(TsArray);
    /* Any size: an empty one is allocated with 1 byte (vm_objectKeys). */
    case TC_REF_FIXED_LENGTH_ARRAY: return true;
    case TC_REF_CLOSURE: return size >= 2 && size % 2 == 0;
    default: return true;
  }
}

/* The payload of the allocation a heap pointer leads to, if its header and
 * size lie inside one bucket of the heap; else NULL. Bounds only: the type's
 * layout is the caller's to check. */
static const uint16_t* heap_allocation_at(VM* v, uint16_t value) {
  if (value & 1) return NULL;
  for (TsBucket* b = v->pLastBucket; b; b = b->prev) {
    if (value >= b->offsetStart) {
      const uint16_t* lo = (const uint16_t*)getBucketDataBegin(b);
      const uint16_t* hi = (const uint16_t*)b->pEndOfUsedSpace;
      const uint16_t* p = (const uint16_t*)((const uint8_t*)lo + (value - b->offsetStart));
      if (p < lo + 1 || p > hi) return NULL;
      uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(p[-1]);
      return size <= (size_t)((const uint8_t*)hi - (const uint8_t*)p) ? p : NULL;
    }
  }
  return NULL;
}

/* The header of the allocation at `offset` in the ROM section, if its header
 * and size lie inside that section. Bounds only, as above. */
static bool rom_allocation_at(VM* vm, uint16_t offset, uint16_t* header) {
  LongPtr lpBytecode = vm->lpBytecode;
  uint16_t start = getSectionOffset(lpBytecode, BCS_ROM);
  uint16_t end = getSectionOffset(lpBytecode, vm_sectionAfter(vm, BCS_ROM));
  if (offset < start + 2 || offset >= end) return false;
  *header = LongPtr_read2_aligned(LongPtr_add(lpBytecode, (int16_t)(offset - 2)));
  /* A function may also be a resume point inside an async function, whose
   * header holds a back pointer, not a size; calls check their target
   * (verified once, at restore) and the program counter stays in ROM. */
  if (vm_getTypeCodeFromHeaderWord(*header) == TC_REF_FUNCTION) return true;
  return vm_getAllocationSizeExcludingHeaderFromHeaderWord(*header) <= end - offset;
}

/* The header of a dynamic array's data, found with the bounds checks only:
 * the full pointer checks check an array's data in turn, so following the
 * data through them recursed without end on an array whose data was itself
 * (a mutant that overflowed the native stack). The data is a fixed-length
 * array, which has nothing further to follow. */
static bool array_data_header(VM* vm, Value data, uint16_t* header) {
  if (Value_isShortPtr(data)) {
    const uint16_t* p = heap_allocation_at(vm, data);
    if (!p) return false;
    *header = p[-1];
    return true;
  }
  if ((data & 3) != 1 || data < VM_VALUE_WELLKNOWN_END) return false;
  uint16_t offset = data & 0xFFFC;
  if (offset < getSectionOffset(vm->lpBytecode, BCS_GLOBALS)) return rom_allocation_at(vm, offset, header);
  if (!glue_check_handle_slot(vm, offset)) return false;
  Value handle = *(Value*)((intptr_t)vm->globals + (offset - getSectionOffset(vm->lpBytecode, BCS_GLOBALS)));
  return Value_isShortPtr(handle) && array_data_header(vm, handle, header);
}

/* A dynamic array's length fits in its data (a fixed-length array, or
 * none while the length is zero): the engine indexes the data by the
 * length and writes through it when the array shrinks or grows. */
static bool array_ok(VM* vm, LongPtr lpArray) {
  Value length = READ_FIELD_2(lpArray, TsArray, viLength);
  Value data = READ_FIELD_2(lpArray, TsArray, dpData);
  if (!Value_isVirtualInt14(length) || VirtualInt14_decode(vm, length) < 0) return false;
  uint16_t capacity = 0;
  if (data != VM_VALUE_NULL) {
    uint16_t header;
    if (!array_data_header(vm, data, &header)) return false;
    if (vm_getTypeCodeFromHeaderWord(header) != TC_REF_FIXED_LENGTH_ARRAY) return false;
    capacity = vm_getAllocationSizeExcludingHeaderFromHeaderWord(header) / 2;
  }
  return VirtualInt14_decode(vm, length) <= capacity;
}

/* Bytes of the record of checked heap offsets: one bit per even offset of
 * a heap of up to 64 kB. */
#define CHECKED_BITS_SIZE (65536 / 16)

/* What checked_epoch holds while the record of checked offsets is current:
 * gc_epoch + 1, never 0, so that a fresh (zeroed) context starts empty. */
static inline uint32_t checked_epoch_now(const GlueContext* ctx) {
  return ctx->gc_epoch + 1 ? ctx->gc_epoch + 1 : 1;
}

/* A short pointer leads to the payload of an allocation that lies inside one
 * heap bucket and has the layout its type needs. */
static bool check_short_ptr_slow(VM* v, uint16_t value) {
  const uint16_t* p = heap_allocation_at(v, value);
  if (!p || !layout_ok(p[-1])) return false;
  if (vm_getTypeCodeFromHeaderWord(p[-1]) == TC_REF_ARRAY && !array_ok(v, LongPtr_new((void*)p))) {
    return false;
  }

  /* Remember it: an allocation stays where it is, with its header, until
   * the collector moves everything (which bumps gc_epoch), and the engine
   * keeps the arrays it changes consistent. */
  GlueContext* ctx = (GlueContext*)v->context;
  uint32_t current = checked_epoch_now(ctx);
  if (!ctx->checked_bits) {
    ctx->checked_bits = (uint8_t*)block_alloc(ctx, CHECKED_BITS_SIZE, 0);
    if (!ctx->checked_bits) return true;   /* no record, checked each time */
    ctx->checked_epoch = 0;
  }
  if (ctx->checked_epoch != current) {
    memset(ctx->checked_bits, 0, CHECKED_BITS_SIZE);
    ctx->checked_epoch = current;
  }
  ctx->checked_bits[value >> 4] |= (uint8_t)(1u << ((value >> 1) & 7));
  return true;
}

/* A heap pointer a run-time check is about to follow (the values are valid
 * by the verifier's invariant; this is the second line). A pointer already
 * checked since the last collection is one bit test. */
static inline bool glue_check_short_ptr(void* vm, uint16_t value) {
  VM* v = (VM*)vm;
  GlueContext* ctx = (GlueContext*)v->context;
  if (ctx->checked_bits && !(value & 1) &&
      ctx->checked_epoch == checked_epoch_now(ctx) &&
      (ctx->checked_bits[value >> 4] >> ((value >> 1) & 7)) & 1) {
    return true;
  }
  return check_short_ptr_slow(v, value);
}

/* Only the range: during a collection the target may be a tombstone. */
static bool glue_check_heap_offset(void* vm, uint16_t value) {
  return value < getHeapSize((VM*)vm);
}

/* A property list chained to an object that the collector merges into it
 * (read from the heap being collected: not through the record of checked
 * pointers, which a collection invalidates). */
static bool glue_check_gc_child(void* vm, uint16_t value) {
  if (value == VM_VALUE_NULL) return true;
  const uint16_t* p = heap_allocation_at((VM*)vm, value);
  return p && layout_ok(p[-1]) && vm_getTypeCodeFromHeaderWord(p[-1]) == TC_REF_PROPERTY_LIST;
}



static mvm_TeError glue_construct_unguarded(mvm_VM* vm, mvm_Value* target,
                                            mvm_Value* ctor, mvm_Value* proto);

/* ------------------------------------------------------------------------ */
/* The fatal-error boundary                                                 */
/* ------------------------------------------------------------------------ */

typedef struct Boundary {
  jmp_buf jump;
  struct Boundary* outer;
  int fatal_code;
  sig_atomic_t was_running;   /* engine_code_running when it was entered */
} Boundary;

/* Thread-locals the fault net's signal handler reads: initial-exec, so that
 * reading them never allocates (lazily allocated TLS of a dlopen'ed module
 * may, and a signal handler must not). */
#if defined(__GNUC__) || defined(__clang__)
#define GLUE_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define GLUE_TLS _Thread_local
#endif

/* Innermost active boundary of this thread (each Node.js thread runs its own
 * VMs, so boundaries never cross threads). GUARD publishes it with a signal
 * fence, so that the fault net's handler sees it before the statement it
 * guards runs. */
static GLUE_TLS Boundary* innermost_boundary = NULL;

/*
 * Whether this thread is running engine code right now: set inside a
 * boundary, cleared while the engine calls out (host functions, the
 * allocator, number formatting...). The fault net (c/fault_net.c) turns a
 * memory fault into a fatal error only when this is set: a fault anywhere
 * else (V8, libc holding a lock) is not ours to recover from.
 */
static GLUE_TLS volatile sig_atomic_t engine_code_running = 0;

/* Brackets a call out of the engine. */
#define LEAVE_ENGINE() sig_atomic_t outer_running = engine_code_running; engine_code_running = 0
#define REENTER_ENGINE() engine_code_running = outer_running

bool glue_fault_is_recoverable(void) {
  return engine_code_running && innermost_boundary;
}

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
 * BOUNDARY runs `statement` inside a boundary; after a fatal error (a
 * longjmp from glue_fatal_error), `on_fatal` runs, with boundary.fatal_code
 * holding the engine's code, and must leave the function. Locals written
 * inside `statement` are not read after a longjmp, so none needs to be
 * volatile. The signal fence publishes the boundary to the fault net's
 * handler before the statement runs.
 */
#define BOUNDARY(on_fatal, statement)                             \
  Boundary boundary;                                              \
  boundary.outer = innermost_boundary;                            \
  boundary.fatal_code = 0;                                        \
  boundary.was_running = engine_code_running;                     \
  if (setjmp(boundary.jump)) {                                    \
    innermost_boundary = boundary.outer;                          \
    engine_code_running = boundary.was_running;                   \
    on_fatal;                                                     \
  }                                                               \
  innermost_boundary = &boundary;                                 \
  engine_code_running = 1;                                        \
  glue_reset_steps();                                             \
  atomic_signal_fence(memory_order_seq_cst);                      \
  statement;                                                      \
  engine_code_running = boundary.was_running;                     \
  innermost_boundary = boundary.outer;

/* For functions that return a status: a fatal error returns
 * GLUE_FATAL_BASE + code. */
#define GUARD(statement) BOUNDARY(return GLUE_FATAL_BASE + boundary.fatal_code, statement)

/*
 * For the inspection functions (value kinds, lengths, numbers...), which
 * return a value rather than a status: the code of a fatal error (a check
 * of c/bytecode_checks.h, or the fault net) is kept in ctx->fatal_code,
 * where the host finds it and poisons the VM, and the function returns
 * `fallback`.
 */
#define GUARD_OR(ctx, fallback, statement)                                         \
  BOUNDARY({ if (!(ctx)->fatal_code) (ctx)->fatal_code = boundary.fatal_code;      \
             return fallback; }, statement)

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

void glue_poll_slow(void) {
  if (!innermost_boundary) return;
  LEAVE_ENGINE();
  bool abort_now = host_should_abort();
  REENTER_ENGINE();
  if (abort_now) glue_fatal_error(NULL, MVM_E_HOST_ERROR);
}

/* Calls out of the engine to the host (see engine_code_running). */

double glue_pow(double x, double y) {
  LEAVE_ENGINE();
  double r = host_pow(x, y);
  REENTER_ENGINE();
  return r;
}

int glue_format_number(char* buf, size_t size, const char* fmt, double x) {
  LEAVE_ENGINE();
  int r = host_format_number(buf, size, fmt, x);
  REENTER_ENGINE();
  return r;
}

/* Every import resolves to the host's one host-function callback, which the
 * engine reaches through this wrapper (see glue_restore). */
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
  mvm_TeError err = ((mvm_TfHostFunction)ctx->host_function)(vm, id, result, args, arg_count);
  REENTER_ENGINE();
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
  if (!Value_isShortPtr(value) && value < VM_VALUE_WELLKNOWN_END) {
    /* "length" and "__proto__": the engine's own constant strings. */
    return n <= MAX_ALLOCATION_SIZE;
  }
  /* In the heap: a short pointer, or a value in the snapshot that reaches
   * the heap through a handle in the globals section. */
  for (TsBucket* b = vm->pLastBucket; b; b = b->prev) {
    lo = (uintptr_t)getBucketDataBegin(b);
    hi = (uintptr_t)b->pEndOfUsedSpace;
    if (q >= lo && q <= hi) return n <= hi - q;
  }
  /* In the snapshot's read-only data. */
  lo = (uintptr_t)vm->lpBytecode;
  hi = lo + getBytecodeSize(vm);
  return q >= lo && q <= hi && n <= hi - q;
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
 * pointer), and the slack keeps the write inside the allocation. The stack
 * block has room in front and behind (see block_alloc).
 */
#define ALLOCATION_SLACK 64


/* Most memory one VM may hold: a 64 kB heap, a to-space as large during a
 * collection, the stack, and a VM struct with up to 32k resolved imports.
 * A corrupted heap can make the collector allocate buckets without end. */
#define GLUE_MEMORY_CAP (1u << 20)

/*
 * Every engine allocation of a VM is recorded in its context's block table,
 * so that freeing the VM frees everything: a fatal error can leave blocks
 * the engine no longer knows about (a collection cut short holds its new
 * buckets only in locals), and mvm_free does not free breakpoints. The
 * table lives apart from the blocks, in memory the engine never addresses:
 * a write past either end of a block (which the slack and the checks make
 * unlikely, not impossible) cannot corrupt the bookkeeping.
 */
typedef struct BlockEntry {
  void* payload;           /* what the engine got */
  void* raw;               /* what malloc returned */
  size_t size;
} BlockEntry;

typedef struct BlockTable {
  size_t count;
  size_t capacity;
  BlockEntry entries[];
} BlockTable;

static bool block_table_reserve(GlueContext* ctx) {
  BlockTable* t = (BlockTable*)ctx->blocks;
  if (t && t->count < t->capacity) return true;
  size_t capacity = t ? t->capacity * 2 : 8;
  LEAVE_ENGINE();
  BlockTable* grown = (BlockTable*)realloc(t, sizeof(BlockTable) + capacity * sizeof(BlockEntry));
  REENTER_ENGINE();
  if (!grown) return false;
  if (!t) grown->count = 0;
  grown->capacity = capacity;
  ctx->blocks = grown;
  return true;
}

static void* block_alloc(GlueContext* ctx, size_t size, size_t front) {
  if (!ctx) {
    /* Only a standalone C host restoring without a context gets here. */
    return malloc(size + ALLOCATION_SLACK);
  }
  if (size > GLUE_MEMORY_CAP - ctx->bytes) return NULL;  /* engine: MVM_E_MALLOC_FAIL */
  if (!block_table_reserve(ctx)) return NULL;
  LEAVE_ENGINE();
  /* A block with room in front (the stack) gets as much behind it: the
   * engine pushes a call's arguments before it checks the callee's frame. */
  uint8_t* raw = (uint8_t*)malloc(front + size + ALLOCATION_SLACK + front);
  if (raw && front) memset(raw, 0, front);
  REENTER_ENGINE();
  if (!raw) return NULL;
  BlockTable* t = (BlockTable*)ctx->blocks;
  t->entries[t->count++] = (BlockEntry){ raw + front, raw, size };
  ctx->bytes += size;
  return raw + front;
}

/* Frees a block of ctx; false if ptr is not one. */
static bool block_free(GlueContext* ctx, void* ptr) {
  BlockTable* t = (BlockTable*)ctx->blocks;
  if (!t) return false;
  for (size_t i = t->count; i-- > 0;) {
    if (t->entries[i].payload == ptr) {
      void* raw = t->entries[i].raw;
      ctx->bytes -= t->entries[i].size;
      t->entries[i] = t->entries[--t->count];
      LEAVE_ENGINE();
      free(raw);
      REENTER_ENGINE();
      return true;
    }
  }
  return false;
}

/* Frees every block of ctx, and the table. */
static void block_free_all(GlueContext* ctx) {
  BlockTable* t = (BlockTable*)ctx->blocks;
  if (!t) return;
  for (size_t i = 0; i < t->count; i++) free(t->entries[i].raw);
  free(t);
  ctx->blocks = NULL;
  ctx->bytes = 0;
}

void* glue_malloc(size_t size, void* context) {
  GlueContext* ctx = (GlueContext*)context;
  if (!ctx) return block_alloc(NULL, size, 0);
  /* The engine mallocs and frees its virtual stack around every outermost
   * call; keeping the last block saves two allocator round trips per call. */
  if (size == STACK_BLOCK_SIZE && ctx->spare_stack) {
    void* p = ctx->spare_stack;
    ctx->spare_stack = NULL;
    return p;
  }
  return block_alloc(ctx, size, size == STACK_BLOCK_SIZE ? STACK_FRONT_SLACK : 0);
}

void glue_free(void* ptr, void* context) {
  GlueContext* ctx = (GlueContext*)context;
  if (!ptr) return;
  if (!ctx) {
    /* In safe mode, mvm_free clears the VM struct (its context included)
     * before freeing it: the block stays in the table, and glue_free_vm,
     * which always follows, frees it. */
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

static void* verifier_alloc(void* ctx, size_t size) {
  return block_alloc((GlueContext*)ctx, size, 0);
}

/* The detail of the last restore the verifier rejected on this thread. */
const char* glue_verify_detail(void) { return verifier_last_detail(); }

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
int glue_construct(GlueContext* ctx, mvm_Value* target, mvm_Value* ctor, mvm_Value* proto) {
  REQUIRE_VM(ctx, MVM_E_INVALID_HANDLE);
  mvm_TeError err = MVM_E_SUCCESS;
  GUARD(WITH_STACK(ctx->vm, err, err = glue_construct_unguarded(ctx->vm, target, ctor, proto)));
  return err;
}

/* The payload of an allocation (header word before it) lies inside one
 * bucket of the heap, as far as the used part of that bucket goes. */
static bool glue_check_allocation(void* vm, const uint16_t* payload, uint16_t header) {
  uintptr_t p = (uintptr_t)payload;
  uint16_t size = vm_getAllocationSizeExcludingHeaderFromHeaderWord(header);
  for (TsBucket* b = ((VM*)vm)->pLastBucket; b; b = b->prev) {
    uintptr_t lo = (uintptr_t)getBucketDataBegin(b);
    uintptr_t hi = (uintptr_t)b->pEndOfUsedSpace;
    if (p >= lo + 2 && p <= hi) return size <= hi - p;
  }
  return false;
}






/* A bound on the glue's own walks of engine lists (own_property_unguarded,
 * intern_list_unguarded): counted from each entry into the engine (see
 * BOUNDARY). The engine's walks need none: the verifier proves the lists
 * acyclic and the engine keeps them so. */
#define GLUE_MAX_STEPS (1u << 20)
static GLUE_TLS uint32_t glue_steps;

static bool glue_count_step(void) {
  return ++glue_steps <= GLUE_MAX_STEPS;
}

static void glue_reset_steps(void) {
  glue_steps = 0;
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
