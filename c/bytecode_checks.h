/*
 * Checks on what a snapshot says, at the places in the engine where the
 * fuzzer (npm run fuzz) found it acting on unchecked bytecode or heap data:
 * global and import indexes, call targets, stack-relative variable
 * indexes, heap and bytecode pointers. A failed check is a fatal error
 * (MVM_E_INVALID_BYTECODE): the VM is poisoned and the process goes on.
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
 * c/engine.c (they need the engine's internal types).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Defined in c/engine.c. Each returns true if the value is acceptable. */
static bool glue_check_global_index(void* vm, uint16_t index);
static bool glue_check_import_index(void* vm, uint16_t index);
static bool glue_check_function_offset(void* vm, uint16_t offset);
static bool glue_check_stack_slot(void* vm, const uint16_t* slot);
static bool glue_check_stack_pointer(void* vm, const uint16_t* sp, const uint16_t* frame);
static bool glue_check_short_ptr(void* vm, uint16_t value);
static bool glue_check_heap_offset(void* vm, uint16_t value);
static bool glue_check_gc_child(void* vm, uint16_t value);
static bool glue_check_rom_offset(void* vm, uint16_t offset);
static bool glue_check_global_handle(void* vm, uint16_t offset);
static bool glue_check_allocation(void* vm, const uint16_t* payload, uint16_t header);
static bool glue_check_concat(void* vm, uint16_t left, uint16_t right);
static bool glue_count_step(void);
static bool glue_check_builtin(void* vm, unsigned id);
static bool glue_check_scoped(void* vm, uint16_t index);
static bool glue_check_intern_cell(void* vm, uint16_t cell);
static bool glue_check_continuation(void* vm, void* pc, uint16_t back);
static bool glue_check_async_resume(void* vm, uint16_t closure, uint16_t count, const uint16_t* sp);
static bool glue_check_await(void* vm, uint16_t closure, const uint16_t* frame, const uint16_t* sp);
static bool glue_check_gc_array(void* vm, uint16_t data, uint16_t length);
static bool glue_check_short_call(void* vm, uint16_t index);
static bool glue_check_promise(void* vm, uint16_t promise);
static bool glue_check_proplist_link(void* vm, uint16_t link, bool undefined_ends);
static bool glue_check_handle_slot(void* vm, uint16_t value);
static bool glue_check_closure_slot(void* vm, uint16_t closure, uint16_t index);
static bool glue_check_slot_template(void* vm, uint16_t prototype, uint16_t slots);
static bool glue_check_string_table_entry(void* vm, uint16_t offset);
static void glue_reset_steps(void);

#define GLUE_REQUIRE(condition) \
  ((condition) ? (void)0 : glue_fatal_error(NULL, MVM_E_INVALID_BYTECODE))

/* GLUE_SECOND, GLUE_CAT and glue_fatal_error come from c/microvium_port.h. */
#define GLUE_NO_CHECK() ((void)0)
#define GLUE_SITE(id) GLUE_SECOND(GLUE_CAT(GLUE_SITE_, id), GLUE_NO_CHECK)()

#define CODE_COVERAGE(id) GLUE_SITE(id)
#define CODE_COVERAGE_UNTESTED(id) GLUE_SITE(id)
#define CODE_COVERAGE_UNIMPLEMENTED(id) GLUE_SITE(id)
#define CODE_COVERAGE_ERROR_PATH(id) GLUE_SITE(id)
/* The engine's table markers name sites the same way. */
#define TABLE_COVERAGE(indexInTable, tableSize, id) GLUE_SITE(id)

/* mvm_call, VM_OP3_LOAD_GLOBAL_3 / VM_OP3_STORE_GLOBAL_3: globals[reg1]. */
#define GLUE_SITE_155 ~, GLUE_CHECK_GLOBAL_REG1
#define GLUE_SITE_157 ~, GLUE_CHECK_GLOBAL_REG1
#define GLUE_CHECK_GLOBAL_REG1() GLUE_REQUIRE(glue_check_global_index(vm, reg1))

/* mvm_call, SUB_CALL_HOST_COMMON: resolvedImports[reg2] is then called. */
#define GLUE_SITE_162 ~, GLUE_CHECK_IMPORT_REG2
#define GLUE_CHECK_IMPORT_REG2() GLUE_REQUIRE(glue_check_import_index(vm, reg2))

/* mvm_call, SUB_CALL_BYTECODE_FUNC: reg2 is the callee's offset in the
 * bytecode; the function header just before it is read next. */
#define GLUE_SITE_163 ~, GLUE_CHECK_CALL_TARGET
#define GLUE_CHECK_CALL_TARGET() GLUE_REQUIRE(glue_check_function_offset(vm, reg2))

/* mvm_call, VM_OP_LOAD_VAR_1 / VM_OP2_LOAD_VAR_2 / VM_OP_STORE_VAR_1 /
 * VM_OP2_STORE_VAR_2: pStackPointer[-reg1 - 1] is read or written. */
#define GLUE_SITE_61 ~, GLUE_CHECK_VAR_SLOT
#define GLUE_SITE_147 ~, GLUE_CHECK_VAR_SLOT
#define GLUE_SITE_73 ~, GLUE_CHECK_VAR_SLOT
#define GLUE_SITE_133 ~, GLUE_CHECK_VAR_SLOT
#define GLUE_CHECK_VAR_SLOT() GLUE_REQUIRE(glue_check_stack_slot(vm, pStackPointer - reg1 - 1))

/* deepTypeOf and DynamicPtr_decode_long: a heap pointer is decoded and the
 * allocation it leads to is used; it must lie in the heap, with the layout
 * its type needs (a property list of 4 + 4n bytes, an array of 4, ...). */
#define GLUE_SITE_0 ~, GLUE_CHECK_DEEP_TYPE_PTR
#define GLUE_CHECK_DEEP_TYPE_PTR() GLUE_REQUIRE(glue_check_short_ptr(vm, value))

#define GLUE_SITE_218 ~, GLUE_CHECK_DYNAMIC_PTR
#define GLUE_CHECK_DYNAMIC_PTR() GLUE_REQUIRE(glue_check_short_ptr(vm, ptr))

/* BytecodeMappedPtr_decode_long: the ROM case (an allocation in the ROM
 * section, checked as above), and the case of a handle in the globals
 * section (whose value is then decoded as a heap pointer). */
#define GLUE_SITE_215 ~, GLUE_CHECK_ROM_PTR
#define GLUE_CHECK_ROM_PTR() GLUE_REQUIRE(glue_check_rom_offset(vm, offsetInBytecode))
#define GLUE_SITE_216 ~, GLUE_CHECK_HANDLE_PTR
#define GLUE_CHECK_HANDLE_PTR() GLUE_REQUIRE(glue_check_global_handle(vm, offsetInBytecode))

/* mvm_call, SUB_DO_NEXT_INSTRUCTION, before every instruction: the stack
 * pointer is still inside the stack (bytecode whose function header
 * understates its stack use, or that pops more than it pushed, would
 * otherwise run it off either end; the stack block has slack for the few
 * words one instruction can push before the next check), and so are the
 * frame base, arguments and catch target (see glue_check_stack_pointer). */
#define GLUE_SITE_59 ~, GLUE_NEXT_INSTRUCTION
#define GLUE_NEXT_INSTRUCTION() \
  (glue_reset_steps(), GLUE_REQUIRE(glue_check_stack_pointer(vm, pStackPointer, pFrameBase)))

/*
 * Loops inside one instruction. A heap whose links form a cycle (a scope
 * chain, a property list's next pointers, a prototype chain, the list of
 * interned strings) would keep the engine in one instruction for ever,
 * where the gas counter and the worker-termination poll never run. Each
 * pass of those loops decodes a pointer (DynamicPtr_decode_long) or is
 * marked (toInternedString's list walk); more than GLUE_MAX_STEPS of them
 * within one instruction (or one host entry) is taken as a cycle. A 64 kB
 * heap holds at most about 16,000 allocations, so real walks stay far
 * below. The count restarts at every instruction and every entry.
 */
#define GLUE_MAX_STEPS (1u << 20)
#define GLUE_SITE_217 ~, GLUE_STEP
#define GLUE_STEP() GLUE_REQUIRE(glue_count_step())

/* toInternedString, walking the interned strings in RAM: each cell and its
 * string are decoded without the engine's checks (and counted as steps). */
#define GLUE_SITE_388 ~, GLUE_CHECK_INTERN_CELL
#define GLUE_CHECK_INTERN_CELL() \
  (GLUE_REQUIRE(glue_count_step()), GLUE_REQUIRE(glue_check_intern_cell(vm, spCell)))

/* mvm_runGC (c/patches/weak-intern-table.patch), before the collection
 * moves anything: each cell of the list of interned strings, which the
 * collector then walks in the heap being collected without the engine's
 * checks (and counted as steps, for a cyclic list). */
#define MVM_GC_CHECK_INTERN_CELL(vm, spCell) \
  (GLUE_REQUIRE(glue_count_step()), GLUE_REQUIRE(glue_check_intern_cell(vm, spCell)))

/* mvm_allocate: a closure scope of zero slots, which vm_scopePushOrNew would
 * then fill with 65,535 slots (its loop counts down from zero). The slot
 * count comes from the bytecode; the compiler never emits zero. */
#define GLUE_SITE_184 ~, GLUE_CHECK_ALLOCATION_REQUEST
#define GLUE_CHECK_ALLOCATION_REQUEST() GLUE_REQUIRE(typeCode != TC_REF_CLOSURE || sizeBytes > 0)

/* gc_processShortPtrValue: the value the collector follows points into the
 * heap being collected (entry), and the allocation there, whose header the
 * collector trusts for the size it copies, lies inside that heap (after
 * the tombstone test). */
#define GLUE_SITE_407 ~, GLUE_CHECK_GC_VALUE
#define GLUE_CHECK_GC_VALUE() GLUE_REQUIRE(glue_check_heap_offset(gc->vm, *pValue))
#define GLUE_SITE_465 ~, GLUE_CHECK_GC_ALLOCATION
#define GLUE_CHECK_GC_ALLOCATION() GLUE_REQUIRE(glue_check_allocation(vm, pSrc, headerWord))

/* vm_concat: each string's size is its header's size less one (the
 * terminator); a header of size zero would make it 65,535 and the result
 * allocation wrap around to a few bytes. */
#define GLUE_SITE_553 ~, GLUE_CHECK_CONCAT
#define GLUE_CHECK_CONCAT() GLUE_REQUIRE(glue_check_concat(vm, *left, *right))

/* gc_processShortPtrValue, merging an object's chained property lists into
 * it: each chained list must be a property list in the heap before its
 * size (read from its header) decides how much is copied. */
#define GLUE_SITE_478 ~, GLUE_CHECK_GC_CHILD
#define GLUE_SITE_490 ~, GLUE_CHECK_GC_CHILD
#define GLUE_CHECK_GC_CHILD() GLUE_REQUIRE(glue_check_gc_child(vm, dpNext))

/* gc_processShortPtrValue, compacting a dynamic array: its data's header is
 * rewritten to the array's length. */
#define GLUE_SITE_469 ~, GLUE_CHECK_GC_ARRAY
#define GLUE_CHECK_GC_ARRAY() GLUE_REQUIRE(glue_check_gc_array(vm, dpData, arr->viLength))

/* getBuiltin: entry builtinID of the builtins section is read (a snapshot
 * may make that section short). */
#define GLUE_SITE_526 ~, GLUE_CHECK_BUILTIN
#define GLUE_CHECK_BUILTIN() GLUE_REQUIRE(glue_check_builtin(vm, builtinID))

/* vm_getHandleTargetOrNull: a pointer into the globals section, whose slot
 * is returned for reading or writing. */
#define GLUE_SITE_531 ~, GLUE_CHECK_HANDLE_SLOT
#define GLUE_CHECK_HANDLE_SLOT() GLUE_REQUIRE(glue_check_handle_slot(vm, value))

/* mvm_call, VM_OP_LOAD_SCOPED_1/2/3 and VM_OP_STORE_SCOPED_1/2/3:
 * vm_findScopedVariable(vm, reg1) walks the closure chain, trusting each
 * link, then reads or writes the slot. */
#define GLUE_SITE_62 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_146 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_600 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_74 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_132 ~, GLUE_CHECK_SCOPED
#define GLUE_SITE_601 ~, GLUE_CHECK_SCOPED
#define GLUE_CHECK_SCOPED() GLUE_REQUIRE(glue_check_scoped(vm, reg1))

/* mvm_call, SUB_CALL_BYTECODE_FUNC on a resume point: reg2 is the back
 * pointer to the containing function's header. */
#define GLUE_SITE_737 ~, GLUE_CHECK_CONTINUATION
#define GLUE_CHECK_CONTINUATION() GLUE_REQUIRE(glue_check_continuation( \
  vm, lpProgramCounter, reg2 & VM_FUNCTION_HEADER_BACK_POINTER_MASK))

/* mvm_call, VM_OP_ARRAY_GET_1 / VM_OP_ARRAY_SET_1: the compiler of 8.0.0
 * never emits them, and the engine's versions index with the wrong
 * register (an array reference, or the opcode), so bytecode using them is
 * rejected. */
#define GLUE_SITE_75 ~, GLUE_REJECT
#define GLUE_SITE_76 ~, GLUE_REJECT
#define GLUE_REJECT() GLUE_REQUIRE(false)

/* mvm_call, VM_OP3_ASYNC_RESUME: reg1 (from the bytecode) saved stack slots
 * are copied from the current closure onto the stack. */
#define GLUE_SITE_685 ~, GLUE_CHECK_ASYNC_RESUME
#define GLUE_CHECK_ASYNC_RESUME() \
  GLUE_REQUIRE(glue_check_async_resume(vm, reg->closure, reg1, pStackPointer))

/* mvm_call, SUB_AWAIT: the stack is saved into the current closure. */
#define GLUE_SITE_666 ~, GLUE_CHECK_AWAIT
#define GLUE_CHECK_AWAIT() \
  GLUE_REQUIRE(glue_check_await(vm, reg->closure, pFrameBase, pStackPointer))

/* mvm_call, SUB_CALL_SHORT: entry reg1 of the short-call table is read. */
#define GLUE_SITE_173 ~, GLUE_CHECK_SHORT_CALL
#define GLUE_CHECK_SHORT_CALL() GLUE_REQUIRE(glue_check_short_call(vm, reg1))

/* mvm_call, SUB_ASYNC_COMPLETE: the callback slot holds the promise to
 * settle (its status and result slots are written through a heap
 * pointer), and a promise's subscriber list, if an array, is in the heap. */
#define GLUE_SITE_699 ~, GLUE_CHECK_PROMISE
#define GLUE_CHECK_PROMISE() GLUE_REQUIRE(glue_check_promise(vm, reg1))
#define GLUE_SITE_721 ~, GLUE_CHECK_SUBSCRIBERS
#define GLUE_CHECK_SUBSCRIBERS() GLUE_REQUIRE(Value_isShortPtr(callbackList))

/* getProperty: the next property list of an object, and its prototype,
 * are read as property lists (a link to a 1-byte string would be read 3
 * bytes past it). */
#define GLUE_SITE_536 ~, GLUE_CHECK_NEXT_LINK
#define GLUE_CHECK_NEXT_LINK() GLUE_REQUIRE(glue_check_proplist_link(vm, dpNext, false))
#define GLUE_SITE_537 ~, GLUE_CHECK_PROTO_LINK
#define GLUE_CHECK_PROTO_LINK() GLUE_REQUIRE(glue_check_proplist_link(vm, dpProto, true))

/* setProperty (542) and vm_objectKeys (640, 643) walk the same links. */
#define GLUE_SITE_542 ~, GLUE_CHECK_NEXT_LINK
#define GLUE_SITE_640 ~, GLUE_CHECK_KEYS_LINK
#define GLUE_SITE_643 ~, GLUE_CHECK_KEYS_LINK
#define GLUE_CHECK_KEYS_LINK() GLUE_REQUIRE(glue_check_proplist_link(vm, propList, false))

/* mvm_call, VM_OP3_AWAIT_CALL: the current closure is written through a
 * heap pointer (its first slot becomes the resume point). */
#define GLUE_SITE_667 ~, GLUE_CHECK_CURRENT_CLOSURE
#define GLUE_CHECK_CURRENT_CLOSURE() GLUE_REQUIRE(glue_check_closure_slot(vm, reg->closure, 0))

/* mvm_call, SUB_AWAIT: an awaited object is decoded as a heap pointer for
 * its brand check (one in ROM would be decoded as some other address);
 * mvm_subscribeToPromise then reads and writes the promise's slots. */
#define GLUE_SITE_689 ~, GLUE_CHECK_AWAITED
#define GLUE_CHECK_AWAITED() \
  GLUE_REQUIRE(deepTypeOf(vm, reg1) != TC_REF_PROPERTY_LIST || Value_isShortPtr(reg1))
#define GLUE_SITE_747 ~, GLUE_CHECK_SUBSCRIBED_PROMISE
#define GLUE_CHECK_SUBSCRIBED_PROMISE() GLUE_REQUIRE(glue_check_promise(vm, vPromise))

/* mvm_call, SUB_NEW on a class: the prototype, if an object, is decoded as
 * a heap pointer (723), and the instance's internal slots are copied from
 * the prototype's slot template, as many as the template says (726). */
#define GLUE_SITE_723 ~, GLUE_CHECK_CLASS_PROTOTYPE
#define GLUE_CHECK_CLASS_PROTOTYPE() GLUE_REQUIRE(Value_isShortPtr(regP1[1]))
#define GLUE_SITE_726 ~, GLUE_CHECK_SLOT_TEMPLATE
#define GLUE_CHECK_SLOT_TEMPLATE() GLUE_REQUIRE(glue_check_slot_template(vm, regP1[1], reg2))

/* vm_readScopedFromThisClosure / vm_writeScopedToThisClosure: slot
 * varIndex of the current closure, decoded as a heap pointer. */
#define GLUE_SITE_700 ~, GLUE_CHECK_THIS_CLOSURE_SLOT
#define GLUE_SITE_701 ~, GLUE_CHECK_THIS_CLOSURE_SLOT
#define GLUE_CHECK_THIS_CLOSURE_SLOT() \
  GLUE_REQUIRE(glue_check_closure_slot(vm, vm->stack->reg.closure, varIndex))

/* mvm_call, VM_OP4_END_TRY: the catch target is unwound through (read as
 * a stack slot), so there must be one. */
#define GLUE_SITE_207 ~, GLUE_CHECK_IN_TRY
#define GLUE_CHECK_IN_TRY() GLUE_REQUIRE(reg->pCatchTarget != NULL)

/* toInternedString, binary search of the string table: the entry it reads
 * next is decoded and read as an interned string. */
#define GLUE_SITE_381 ~, GLUE_CHECK_STRING_TABLE_ENTRY
#define GLUE_CHECK_STRING_TABLE_ENTRY() \
  GLUE_REQUIRE(glue_check_string_table_entry(vm, stringTableOffset + ((first + last) / 2) * 2))

/* mvm_call, VM_OP3_SCOPE_CLONE and VM_OP4_SCOPE_POP: the current scope is
 * read as a closure (its size, its parent slot). */
#define GLUE_SITE_635 ~, GLUE_CHECK_CURRENT_SCOPE
#define GLUE_SITE_649 ~, GLUE_CHECK_CURRENT_SCOPE
#define GLUE_CHECK_CURRENT_SCOPE() GLUE_REQUIRE(deepTypeOf(vm, reg->closure) == TC_REF_CLOSURE)

/* mvm_runGC, walking the saved frames of the call stack: each frame's start
 * comes from a size word saved on the stack (which bytecode can overwrite);
 * it must lie between the bottom of the stack and the frame's end, whole
 * words away, or the walk leaves the stack. */
#define GLUE_SITE_499 ~, GLUE_CHECK_GC_FRAME
#define GLUE_CHECK_GC_FRAME() GLUE_REQUIRE(beginningOfFrame >= beginningOfStack && \
  beginningOfFrame <= endOfFrame && ((*endOfFrame) & 1) == 0)

/* mvm_call, VM_OP1_TYPEOF: the type indexes a table of type names (a value
 * of a type no program makes reads past it). */
#define GLUE_SITE_167 ~, GLUE_CHECK_TYPEOF
#define GLUE_CHECK_TYPEOF() \
  GLUE_REQUIRE(mvm_typeOf(vm, pStackPointer[-1]) < sizeof typeStringOffsetByType)
