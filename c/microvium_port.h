/*
 * Port configuration of the Microvium engine for this Node.js addon.
 *
 * The engine source is not part of this repository: build.rs compiles it from
 * the pinned npm package (node_modules/microvium/dist-c) by way of c/engine.c,
 * and the engine finds this file through the include path.
 *
 * Every option below is a deliberate choice for a 64-bit desktop host that
 * runs guest programs it may not trust. See microvium_port_example.h in the
 * engine package for the meaning of each option.
 */
#pragma once

#include <stdbool.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <math.h>

/* The port interface version that microvium 8.0.0 expects. */
#define MVM_PORT_VERSION 1

/*
 * Virtual stack, in bytes. Allocated per active call, not per VM, so a
 * generous size costs nothing while a VM is idle. 4 kB lets guests recurse a
 * few hundred frames deep before MVM_E_STACK_OVERFLOW; the engine reports the
 * overflow as an error, not a native stack overflow.
 */
#define MVM_STACK_SIZE 4096

/*
 * Heap buckets of 4 kB. On a 64-bit host every 16-bit guest pointer is
 * decoded by walking the bucket list; fewer, larger buckets make that walk
 * short (measured from C: 26 ms vs 282 ms for the objects workload with the
 * example's 256 B buckets), while keeping the full 64 kB heap that the
 * single-RAM-page mode cannot offer.
 */
#define MVM_ALLOCATION_BUCKET_SIZE 4096

/*
 * The guest heap limit. Guest pointers are 16-bit offsets into a virtual heap,
 * so 64 kB is the ceiling; the engine keeps a few addresses for itself and
 * the largest value that fits its uint16 arithmetic is 0xFFFE (even, since
 * allocations are 2-byte aligned).
 */
#define MVM_MAX_HEAP_SIZE 0xFFFE

/*
 * This VM's own heap cap (opts.maxHeapSize, src/limits.rs), where the engine
 * would use MVM_MAX_HEAP_SIZE (c/patches/heap-limit-per-vm.patch): 0 in the
 * VM's GlueContext means the engine's. The context is set before the
 * snapshot's heap is loaded. Read only when the heap grows or is collected.
 */
#define MVM_HEAP_LIMIT(vm) \
  (((GlueContext*)(vm)->context)->heap_limit ? ((GlueContext*)(vm)->context)->heap_limit : MVM_MAX_HEAP_SIZE)

/* 64-bit host: native pointers do not fit a 16-bit value slot. */
#define MVM_NATIVE_POINTER_IS_16_BIT 0

/* Full IEEE-754 doubles, so guest arithmetic matches JavaScript's. */
#define MVM_SUPPORT_FLOAT 1
#define MVM_FLOAT64 double
#define MVM_FLOAT64_NAN ((MVM_FLOAT64)(INFINITY * 0.0))

/*
 * The engine's internal consistency checks (safe mode) are off. Besides
 * their cost (call 39 -> 51 ns, objects 21 -> 26 ms from C), they are
 * assertions for the engine's own development: with them on, legitimate
 * programs fail with MVM_E_ASSERTION_FAILED (a heap filling up fails in the
 * collector instead of giving MVM_E_OUT_OF_MEMORY). Untrusted snapshots are
 * handled by MVM_DONT_TRUST_BYTECODE below, the checks of
 * c/bytecode_checks.h, and the fault net (c/fault_net.c). Building with
 * -DMVM_SAFE_MODE=1 still works (the glue copes with its conventions), for
 * diagnosing a finding.
 */
#ifndef MVM_SAFE_MODE
#define MVM_SAFE_MODE 0
#endif

/*
 * Snapshots may come from anywhere, so the engine validates bytecode it
 * executes beyond the header, version and CRC checks done at restore.
 */
#define MVM_DONT_TRUST_BYTECODE 1

#define MVM_VERY_EXPENSIVE_MEMORY_CHECKS 0

/* Bytecode lives in ordinary host memory: long pointers are plain pointers. */
#define MVM_LONG_PTR_TYPE void*
#define MVM_LONG_PTR_NEW(p) ((MVM_LONG_PTR_TYPE)p)
#define MVM_LONG_PTR_TRUNCATE(p) ((void*)p)
#define MVM_LONG_PTR_ADD(p, s) ((MVM_LONG_PTR_TYPE)((uint8_t*)p + (intptr_t)s))
#define MVM_LONG_PTR_SUB(p2, p1) ((int16_t)((uint8_t*)p2 - (uint8_t*)p1))
#define MVM_READ_LONG_PTR_1(lpSource) (*((uint8_t *)lpSource))
/* memcpy, not a cast: snapshot bytes may sit at an odd address. */
static inline uint16_t mvm_port_read2(const void* p) { uint16_t v; memcpy(&v, p, 2); return v; }
#define MVM_READ_LONG_PTR_2(lpSource) mvm_port_read2(lpSource)
#define MVM_LONG_MEM_CMP(p1, p2, size) memcmp(p1, p2, size)
#define MVM_LONG_MEM_CPY(target, source, size) memcpy(target, source, size)

/*
 * A fatal engine error must not return (error 45) and must not end the
 * Node.js process. glue_fatal_error (c/boundary.c) longjmps to the innermost
 * entry boundary of the current thread; the VM concerned is poisoned there.
 */
#include "boundary.h"
#define MVM_FATAL_ERROR(vm, e) glue_fatal_error(vm, e)
#define MVM_ALL_ERRORS_FATAL 0

/*
 * Every instruction dispatch goes through MVM_SWITCH. Once in 2^14
 * dispatches (about every 50-100 us of guest compute), the glue checks the
 * VM's sandbox limits (its time limit, an interrupt from another thread:
 * src/limits.rs), and once in 2^20 it asks the host whether the thread is
 * being torn down (worker.terminate(), process exit): a guest stuck in a
 * loop without a gas limit would otherwise keep the thread, and the
 * process, from ever ending. The test is one increment and compare on the
 * VM's own context.
 */
#define GLUE_POLL(vm) \
  ((++((GlueContext*)(vm)->context)->poll_count & 0x3FFF) ? (void)0 \
   : glue_poll_slow((struct GlueContext*)(vm)->context))
#define MVM_SWITCH(tag, upper) switch ((GLUE_POLL(vm)), (tag))

/*
 * Integer fast path fixes. The engine evaluates number operations on two
 * int32 operands with C integer arithmetic, which (1) traps the process on
 * x86 for INT32_MIN / -1 and INT32_MIN % -1 (SIGFPE), and (2) gives 0 where
 * JavaScript gives -0 (-7 % 7, 0 * -1). MVM_CASE expands to `case value` for
 * every label except those three operations, which it selects by token.
 * There it adds a test that sends the cases that need it to the engine's own
 * float64 path (which gives JavaScript's results), followed by a unique
 * label that takes the engine's `:`. In the float64 switch, which uses the
 * same labels, `reg1I`/`reg2I` resolve to the zero constants c/engine.c
 * declares at file scope, so the test is false there.
 */
#define GLUE_CAT_(a, b) a##b
#define GLUE_CAT(a, b) GLUE_CAT_(a, b)
#define GLUE_SECOND_(a, b, ...) b
#define GLUE_SECOND(...) GLUE_SECOND_(__VA_ARGS__, 0, 0)
#define GLUE_FIX_VM_NUM_OP_REMAINDER ~, 1
#define GLUE_FIX_VM_NUM_OP_DIVIDE_AND_TRUNC ~, 2
#define GLUE_FIX_VM_NUM_OP_MULTIPLY ~, 3
#define GLUE_INT_FIX(value) GLUE_SECOND(GLUE_CAT(GLUE_FIX_, value))
#define GLUE_INT_NEEDS_FLOAT(kind, a, b) \
  ((kind) == 1 ? ((b) == -1 || ((a) < 0 && (b) != 0 && (a) % (b) == 0)) : \
   (kind) == 2 ? ((a) == INT32_MIN && (b) == -1) : \
   (((a) == 0 && (b) < 0) || ((b) == 0 && (a) < 0)))
#define GLUE_CASE_0(value) case value
#define GLUE_CASE_FIXED(kind, value) \
  case value: \
    if (GLUE_INT_NEEDS_FLOAT(kind, reg1I, reg2I)) goto SUB_NUM_OP_FLOAT64; \
    GLUE_CAT(glue_case_, __LINE__)
#define GLUE_CASE_1(value) GLUE_CASE_FIXED(1, value)
#define GLUE_CASE_2(value) GLUE_CASE_FIXED(2, value)
#define GLUE_CASE_3(value) GLUE_CASE_FIXED(3, value)
#define MVM_CASE(value) GLUE_CAT(GLUE_CASE_, GLUE_INT_FIX(value))(value)

/* The engine's own CRC16-CCITT check of the snapshot at restore. */
#define MVM_CHECK_CRC16_CCITT(lpData, size, expected) (default_crc16(lpData, size) == expected)

/* vm.createSnapshot() and the debugger API are part of the public contract. */
#define MVM_INCLUDE_SNAPSHOT_CAPABILITY 1
#define MVM_INCLUDE_DEBUG_CAPABILITY 1
#define MVM_CALC_CRC16_CCITT(pData, size) (default_crc16(pData, size))

/*
 * Default (multi-bucket) addressing. Single-RAM-page mode would need every
 * VM's heap inside one 64 kB-aligned arena and caps the heap near 32 kB
 * because the collector copies within the page.
 */
#define MVM_USE_SINGLE_RAM_PAGE 0

/*
 * Allocation goes through the glue so that the host can count memory per VM
 * and notice when the collector frees a heap bucket: objects only move in a
 * collection, so that is when the host's address-to-handle map goes stale.
 */
void* glue_malloc(size_t size, void* context);
void glue_free(void* ptr, void* context);
#define MVM_CONTEXTUAL_MALLOC(size, context) glue_malloc(size, context)
#define MVM_CONTEXTUAL_FREE(ptr, context) glue_free(ptr, context)

/* vm.stopAfterNInstructions() is part of the public contract. */
#define MVM_GAS_COUNTER

/*
 * Number-to-string: the engine formats non-integers with "%.15g", which loses
 * digits JavaScript keeps (0.1 + 0.2). Doubles go to the host's formatter,
 * which implements ECMAScript Number::toString; integers keep snprintf.
 */
int glue_format_number(char* buf, size_t size, const char* fmt, double x);
#define MVM_SNPRINTF(buf, size, fmt, x) \
  _Generic((x), double: glue_format_number, default: snprintf)(buf, size, fmt, x)

/*
 * Expose the engine's internal property and call functions (getProperty,
 * setProperty, vm_objectKeys, mvm_callEx, ...) to the glue (c/engine.c and
 * the parts it includes).
 */
#define MVM_EXPOSE_INTERNALS 1

/* Checks on untrusted snapshot data at chosen places in the engine. */
#include "bytecode_checks.h"
