/*
 * Run-time checks on what a program does with values it makes, at the
 * places in the engine that trust them. What a snapshot says is checked
 * once, at restore, by the verifier (c/verifier.c): stack-relative variable
 * indexes, global, import and short-call indexes, jump and call targets,
 * stack heights, every heap and ROM pointer. What is left here depends on
 * run time: which closure is current, what the program stored in slots the
 * engine later reads as a given type (closure chains, promise and prototype
 * internal slots, an async function's saved stack). A failed check is a
 * fatal error (MVM_E_INVALID_BYTECODE): the VM is poisoned and the process
 * goes on. Each check below says why the verifier cannot make it.
 *
 * How it reaches into the engine without changing it: every interesting
 * spot in microvium.c carries a coverage marker, CODE_COVERAGE(id) with an
 * id unique in the file (stable for the pinned 8.0.0), which the port may
 * define. Here each marker expands to GLUE_SITE_<id> when that macro is
 * defined below, and to nothing otherwise; a site's check is an expression
 * over the engine's locals at that point (reg1, pStackPointer, ...).
 * The comment on each site says which engine code follows the marker.
 *
 * Included by c/microvium_port.h; the check functions are defined in
 * c/checks.c (they need the engine's internal types, so they come after the
 * engine in c/engine.c's translation unit, and the engine's sites see only
 * the declarations below).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Defined in c/checks.c. Each returns true if the value is acceptable. */
static bool glue_check_heap_offset(void* vm, uint16_t value);
static bool glue_check_gc_child(void* vm, uint16_t value);
static bool glue_check_allocation(void* vm, const uint16_t* payload, uint16_t header);
static inline bool glue_check_scoped(void* vm, uint16_t index);
static bool glue_check_intern_cell(void* vm, uint16_t cell);
static bool glue_check_async_resume(void* vm, const void* pc, uint16_t closure, uint16_t count,
                                    const uint16_t* sp);
static bool glue_check_await(void* vm, uint16_t closure, const uint16_t* frame, const uint16_t* sp);
static bool glue_check_gc_array(void* vm, uint16_t data, uint16_t length);
static bool glue_check_promise(void* vm, uint16_t promise);
static bool glue_check_closure_slot(void* vm, uint16_t closure, uint16_t index);
static bool glue_check_slot_template(void* vm, uint16_t prototype, uint16_t slots);
static bool glue_check_type(void* vm, uint16_t value, int type);
/* Reset at every call the engine makes: initial-exec, so that each access is
 * one instruction in the addon (a shared object) too, not a call to
 * __tls_get_addr. */
#if defined(__GNUC__) || defined(__clang__)
static _Thread_local __attribute__((tls_model("initial-exec"))) uint32_t glue_closure_chain;  /* see GLUE_SITE_598 */
#else
static _Thread_local uint32_t glue_closure_chain;  /* see GLUE_SITE_598 */
#endif

#ifdef GLUE_UNCHECKED
/* The unchecked floor of the bench (benches/README.md): the same engine, port
 * and glue with every check of this file compiled out, so the cost of the
 * checks stays measurable. Never for the addon: build.rs does not define it. */
#define GLUE_SITE(id) ((void)0)
#else
#define GLUE_SITE(id) GLUE_SECOND(GLUE_CAT(GLUE_SITE_, id), GLUE_NO_CHECK)()
#endif

#define GLUE_REQUIRE(condition) \
  ((condition) ? (void)0 : glue_fatal_error(NULL, MVM_E_INVALID_BYTECODE))

/* GLUE_SECOND, GLUE_CAT and glue_fatal_error (c/boundary.h) come from
 * c/microvium_port.h. */
#define GLUE_NO_CHECK() ((void)0)

#define CODE_COVERAGE(id) GLUE_SITE(id)
#define CODE_COVERAGE_UNTESTED(id) GLUE_SITE(id)
#define CODE_COVERAGE_UNIMPLEMENTED(id) GLUE_SITE(id)
#define CODE_COVERAGE_ERROR_PATH(id) GLUE_SITE(id)
/* The engine's table markers name sites the same way. */
#define TABLE_COVERAGE(indexInTable, tableSize, id) GLUE_SITE(id)

/* The checks the verifier made redundant, and why each is safe without a
 * check at run time (the ids are the sites that carried them):
 *   59   before every instruction, the stack pointer, frame base, arguments
 *        and catch target in the stack: the verifier proves every height
 *        (and so the stack pointer) within the frame the header sizes, and
 *        that no instruction pops, loads or stores into a frame's saved
 *        registers or a catch target, so the saved frame base and catch
 *        links stay as the engine wrote them;
 *   61 147 73 133  LOAD_VAR/STORE_VAR slots: indexes checked against the
 *        height at that instruction;
 *   155 157  global indexes: checked against the globals section;
 *   162 163 173  import indexes, call targets, short-call indexes: every
 *        operand, table entry and host-function allocation is checked, and
 *        function values are pointers to verified functions;
 *   0 218 215 216 531  heap, ROM and handle pointers: every value in the
 *        snapshot is valid and the program cannot make an invalid one (it
 *        only moves values the engine gave it);
 *   217 388  the step counter against cycles within one instruction:
 *        property-list, prototype and interned-string chains are acyclic
 *        in the snapshot, and the engine only adds objects at their heads;
 *        scope-chain walks are bounded by the variable index;
 *   536 537 542 640 643  property-list and prototype links: checked in the
 *        snapshot, written only by the engine afterwards;
 *   553  string sizes: every string in the snapshot has its terminator;
 *   526 381  builtins and string table entries: checked sections;
 *   75 76  ARRAY_GET_1/ARRAY_SET_1: rejected by the verifier;
 *   207  END_TRY inside a try: proved per instruction;
 *   64 131  LOAD_ARG/STORE_ARG slots below the frame: the arguments pointer
 *        is derived from the frame base and the saved argument count, both
 *        in frame slots no instruction can reach, and the engine bounds the
 *        index by that count. */

/* mvm_call, VM_OP_LOAD_SCOPED_1/2/3 and VM_OP_STORE_SCOPED_1/2/3:
 * vm_findScopedVariable(vm, reg1) walks the closure chain, trusting each
 * link, then reads or writes the slot. The links are closure slots the
 * program can write (STORE_SCOPED reaches any slot of the chain, the last
 * one included), so each link's type is checked. */
#define GLUE_SITE_62 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_146 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_600 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_74 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_132 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_601 ~, GLUE_CHECK_SCOPED
#define GLUE_CHECK_SCOPED() GLUE_REQUIRE(glue_check_scoped(vm, reg1))

/* mvm_call, SUB_CALL: calling a closure calls its target (slot 0), which
 * may be a closure in turn. Slot 0 is the program's to write (STORE_SCOPED
 * reaches it), so a closure can be made its own target: the engine would
 * follow the chain for ever inside one instruction, where the gas counter
 * and the termination poll never run. The chain is counted (224 starts a
 * call); a heap holds at most about 16,000 allocations, so a longer chain
 * is a cycle. */
#define GLUE_MAX_CLOSURE_CHAIN (1u << 16)
#define GLUE_SITE_224 ~, GLUE_START_CALL
#define GLUE_START_CALL() ((void)(glue_closure_chain = 0))
#define GLUE_SITE_598 ~, GLUE_CHECK_CLOSURE_CHAIN
#define GLUE_CHECK_CLOSURE_CHAIN() GLUE_REQUIRE(++glue_closure_chain <= GLUE_MAX_CLOSURE_CHAIN)

/* mvm_allocate: a closure scope of zero slots, which vm_scopePushOrNew would
 * then fill with 65,535 slots (its loop counts down from zero). The
 * verifier rejects such SCOPE_NEW/SCOPE_PUSH operands; this stays as the
 * one check on every closure the engine allocates (one compare). */
#define GLUE_SITE_184 ~, GLUE_CHECK_ALLOCATION_REQUEST
#define GLUE_CHECK_ALLOCATION_REQUEST() GLUE_REQUIRE(typeCode != TC_REF_CLOSURE || sizeBytes > 0)

/* The collector (gc_processShortPtrValue, mvm_runGC): the values it follows
 * lie in the heap being collected (407), the allocations there lie inside
 * it (465), chained property lists it merges are property lists (478, 490),
 * array data it truncates is long enough (469), frames it walks lie in the
 * stack (499). The verifier's invariants make these hold; they run once per
 * object per collection, not per instruction, and stay as a second line
 * where a mistake would corrupt the whole heap. */
#define GLUE_SITE_407 ~, GLUE_CHECK_GC_VALUE
#define GLUE_CHECK_GC_VALUE() GLUE_REQUIRE(glue_check_heap_offset(gc->vm, *pValue))
#define GLUE_SITE_465 ~, GLUE_CHECK_GC_ALLOCATION
#define GLUE_CHECK_GC_ALLOCATION() GLUE_REQUIRE(glue_check_allocation(vm, pSrc, headerWord))
#define GLUE_SITE_478 ~, GLUE_CHECK_GC_CHILD
#define GLUE_SITE_490 ~, GLUE_CHECK_GC_CHILD
#define GLUE_CHECK_GC_CHILD() GLUE_REQUIRE(glue_check_gc_child(vm, dpNext))
#define GLUE_SITE_469 ~, GLUE_CHECK_GC_ARRAY
#define GLUE_CHECK_GC_ARRAY() GLUE_REQUIRE(glue_check_gc_array(vm, dpData, arr->viLength))
#define GLUE_SITE_499 ~, GLUE_CHECK_GC_FRAME
#define GLUE_CHECK_GC_FRAME() GLUE_REQUIRE(beginningOfFrame >= beginningOfStack && \
  beginningOfFrame <= endOfFrame && ((*endOfFrame) & 1) == 0)

/* mvm_runGC (c/patches/weak-intern-table.patch), before the collection
 * moves anything: each cell of the list of interned strings, which the
 * collector then walks in the heap being collected. */
#ifndef GLUE_UNCHECKED
#define MVM_GC_CHECK_INTERN_CELL(vm, spCell) GLUE_REQUIRE(glue_check_intern_cell(vm, spCell))
#endif

/* mvm_call, SUB_CALL_BYTECODE_FUNC on a continuation (a function value
 * whose header has the continuation flag): the program can hold two kinds,
 * resume points and catch blocks (a catch target's handler is a value on
 * the stack, saved with an async function's stack). Only a resume point may
 * be called; the verifier proved that every resume point starts with
 * ASYNC_RESUME and no catch block does. */
#define GLUE_SITE_737 ~, GLUE_CHECK_CONTINUATION
#define GLUE_CHECK_CONTINUATION() \
  GLUE_REQUIRE(LongPtr_read1(lpProgramCounter) == ((VM_OP_EXTENDED_3 << 4) | VM_OP3_ASYNC_RESUME))

/* mvm_call, VM_OP3_ASYNC_RESUME: reg1 saved stack slots are copied from the
 * current closure onto the stack, catch targets included, and the
 * arguments (this, isSuccess, result) are read. The closure's slots are
 * the program's to write (STORE_SCOPED), and a continuation can be called
 * with any arguments (or without a closure): so the argument count and the
 * closure are checked first (668, before the engine offsets its pointer),
 * then its size and the catch targets it holds against the verifier's
 * table (685). */
#define GLUE_SITE_668 ~, GLUE_CHECK_RESUME_CLOSURE
#define GLUE_CHECK_RESUME_CLOSURE() GLUE_REQUIRE( \
  (reg->argCountAndFlags & AF_ARG_COUNT_MASK) >= 3 && glue_check_closure_slot(vm, reg->closure, 1))
#define GLUE_SITE_685 ~, GLUE_CHECK_ASYNC_RESUME
#define GLUE_CHECK_ASYNC_RESUME() GLUE_REQUIRE( \
  glue_check_async_resume(vm, lpProgramCounter, reg->closure, reg1, pStackPointer))

/* mvm_call, SUB_AWAIT: the stack is saved into the current closure, which
 * the program chooses (SCOPE_POP and friends). */
#define GLUE_SITE_666 ~, GLUE_CHECK_AWAIT
#define GLUE_CHECK_AWAIT() \
  GLUE_REQUIRE(glue_check_await(vm, reg->closure, pFrameBase, pStackPointer))

/* mvm_call, VM_OP3_AWAIT_CALL: the current closure is written through a
 * heap pointer (its first slot becomes the resume point). */
#define GLUE_SITE_667 ~, GLUE_CHECK_CURRENT_CLOSURE
#define GLUE_CHECK_CURRENT_CLOSURE() GLUE_REQUIRE(glue_check_closure_slot(vm, reg->closure, 0))

/* vm_readScopedFromThisClosure / vm_writeScopedToThisClosure: slot
 * varIndex of the current closure, decoded as a heap pointer. */
#define GLUE_SITE_700 ~, GLUE_CHECK_THIS_CLOSURE_SLOT
#define GLUE_SITE_701 ~, GLUE_CHECK_THIS_CLOSURE_SLOT
#define GLUE_CHECK_THIS_CLOSURE_SLOT() \
  GLUE_REQUIRE(glue_check_closure_slot(vm, vm->stack->reg.closure, varIndex))

/* mvm_call, VM_OP3_SCOPE_CLONE and VM_OP4_SCOPE_POP: the current scope is
 * read as a closure (its size, its parent slot). */
#define GLUE_SITE_635 ~, GLUE_CHECK_CURRENT_SCOPE
#define GLUE_SITE_649 ~, GLUE_CHECK_CURRENT_SCOPE
#define GLUE_CHECK_CURRENT_SCOPE() GLUE_REQUIRE(deepTypeOf(vm, reg->closure) == TC_REF_CLOSURE)

/* mvm_call, VM_OP4_ENQUEUE_JOB: the current scope joins the job queue,
 * whose nodes the engine reads as closures and queue cells. */
#define GLUE_SITE_671 ~, GLUE_CHECK_JOB
#define GLUE_CHECK_JOB() GLUE_REQUIRE(deepTypeOf(vm, reg->closure) == TC_REF_CLOSURE)

/* mvm_call, SUB_ASYNC_COMPLETE: the callback slot (slot 1 of the current
 * closure, which the program can write) holds the promise to settle: its
 * status and result slots are written through a heap pointer; a promise's
 * subscriber list (its result slot, writable through a negative integer
 * key) must be an array when it is not a closure. */
#define GLUE_SITE_699 ~, GLUE_CHECK_PROMISE
#define GLUE_CHECK_PROMISE() GLUE_REQUIRE(glue_check_promise(vm, reg1))
#define GLUE_SITE_721 ~, GLUE_CHECK_SUBSCRIBERS
#define GLUE_CHECK_SUBSCRIBERS() GLUE_REQUIRE(glue_check_type(vm, callbackList, TC_REF_ARRAY))

/* mvm_call, SUB_AWAIT: an awaited object is decoded as a heap pointer for
 * its brand check (one in ROM would be decoded as some other address);
 * mvm_subscribeToPromise then reads and writes the promise's slots. */
#define GLUE_SITE_689 ~, GLUE_CHECK_AWAITED
#define GLUE_CHECK_AWAITED() \
  GLUE_REQUIRE(deepTypeOf(vm, reg1) != TC_REF_PROPERTY_LIST || Value_isShortPtr(reg1))
#define GLUE_SITE_747 ~, GLUE_CHECK_SUBSCRIBED_PROMISE
#define GLUE_CHECK_SUBSCRIBED_PROMISE() GLUE_REQUIRE(glue_check_promise(vm, vPromise))

/* mvm_call, SUB_NEW on a class: the prototype (any value the program set
 * as `prototype`), if an object, is decoded as a heap pointer (723), and the
 * instance's internal slots are copied from the prototype's slot template,
 * as many as the template says (726; the count is writable through a
 * negative integer key). */
#define GLUE_SITE_723 ~, GLUE_CHECK_CLASS_PROTOTYPE
#define GLUE_CHECK_CLASS_PROTOTYPE() GLUE_REQUIRE(Value_isShortPtr(regP1[1]))
#define GLUE_SITE_726 ~, GLUE_CHECK_SLOT_TEMPLATE
#define GLUE_CHECK_SLOT_TEMPLATE() GLUE_REQUIRE(glue_check_slot_template(vm, regP1[1], reg2))

/* setProperty on a Uint8Array reached through a handle (an exported one):
 * c/patches/uint8array-write-through-handle.patch resolves the handle, so
 * no check is needed there (the handle slot itself is checked at 531). */

/* mvm_call, VM_OP1_TYPEOF: the type indexes a table of type names. Every
 * value has a known type once verified; one compare on a rare opcode. */
#define GLUE_SITE_167 ~, GLUE_CHECK_TYPEOF
#define GLUE_CHECK_TYPEOF() \
  GLUE_REQUIRE(mvm_typeOf(vm, pStackPointer[-1]) < sizeof typeStringOffsetByType)

#ifdef GLUE_DEBUG_POINTERS
/* A debugging aid, never built by default: with -DGLUE_DEBUG_POINTERS the
 * fuzzer's harness aborts with a stack trace where the engine first decodes
 * an invalid heap pointer (the per-decode check the verifier made
 * redundant), which is how a verifier gap shows itself. */
static inline bool glue_check_short_ptr(void* vm, uint16_t value);
#undef GLUE_SITE_0
#define GLUE_SITE_0 ~, GLUE_DBG0
#define GLUE_DBG0() ((void)(glue_check_short_ptr(vm, value) || (fprintf(stderr, "bad ptr %04x\n", value), abort(), 0)))
#define GLUE_SITE_218 ~, GLUE_DBG218
#define GLUE_DBG218() ((void)(glue_check_short_ptr(vm, ptr) || (fprintf(stderr, "bad ptr %04x\n", ptr), abort(), 0)))
#endif
