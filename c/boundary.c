/*
 * The fatal-error boundary: a fatal engine error ends the engine call it
 * happened in, with an error code, instead of ending the process.
 *
 * Every entry point (c/engine.c) runs the engine inside a boundary (BOUNDARY
 * and its forms GUARD and GUARD_OR, below): a setjmp, published in a
 * thread-local as this thread's innermost boundary. MVM_FATAL_ERROR (the
 * port, c/microvium_port.h), a failed check (GLUE_REQUIRE, c/checks.c) and
 * a memory fault in engine code (c/fault_net.c) all end in glue_fatal_error,
 * which longjmps there. Another thread-local says whether this thread is
 * running engine code right now, so that the fault net acts only on faults
 * in engine frames: every call out of the engine (host functions, the
 * allocator, number formatting, the termination poll) is bracketed by
 * LEAVE_ENGINE/REENTER_ENGINE. The bound on the glue's own walks is counted
 * per entry, so it is reset here too.
 *
 * Why C: a longjmp must not skip Rust frames (undefined behaviour), so the
 * setjmp is in the C function Rust calls, and only engine frames lie between
 * it and any fatal error. Why in the engine's translation unit (#included by
 * c/engine.c after the engine): the entry points expand these macros, and
 * the call-outs are the port's hooks. c/boundary.h declares what code
 * outside this unit (the fault net) and the port header need.
 */

#ifndef GLUE_ENGINE_UNIT
#error "c/boundary.c is part of c/engine.c's translation unit: compile c/engine.c, not this file"
#endif

#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#if defined(_WIN32)
#include <windows.h>
#endif
#include "boundary.h"

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

/* A bound on the glue's own walks of engine lists (own_property_unguarded,
 * intern_list_unguarded in c/engine.c): counted from each entry into the
 * engine (see BOUNDARY). The engine's walks need none: the verifier proves
 * the lists acyclic and the engine keeps them so. */
#define GLUE_MAX_STEPS (1u << 20)
static GLUE_TLS uint32_t glue_steps;

static bool glue_count_step(void) {
  return ++glue_steps <= GLUE_MAX_STEPS;
}

static void glue_reset_steps(void) {
  glue_steps = 0;
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

/* Calls out of the engine to the host (see engine_code_running). */

/* ------------------------------------------------------------------------ */
/* Sandbox limits: the time limit and the interrupt (src/limits.rs)          */
/* ------------------------------------------------------------------------ */

/*
 * A limit stops a guest call the way exhausted gas does: the glue sets the
 * engine's gas counter to 0, so that the engine itself ends the call at its
 * next instruction with MVM_E_INSTRUCTION_COUNT_REACHED, which the guest
 * cannot catch and after which the VM goes on; the host reports the limit
 * instead (stop_reason). The counter stays at 0 until the outermost entry
 * returns, so that a caller of a stopped nested call (a host function that
 * re-entered the VM) cannot go on either; the user's setting waits in
 * saved_gas (glue_stop_after and glue_instructions_remaining use it
 * meanwhile) and is given back by glue_limits_exit.
 */

/* Monotonic nanoseconds (never 0 in practice: 0 means "no deadline"). */
static uint64_t glue_now_ns(void) {
#if defined(_WIN32)
  static LARGE_INTEGER frequency;
  LARGE_INTEGER now;
  if (!frequency.QuadPart) QueryPerformanceFrequency(&frequency);
  QueryPerformanceCounter(&now);
  return (uint64_t)((double)now.QuadPart * 1e9 / (double)frequency.QuadPart);
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* Whether another thread asked to stop this VM's running call. The flag is
 * shared memory (a SharedArrayBuffer) that other threads write with
 * Atomics.store: read atomically. */
static bool glue_interrupt_requested(const GlueContext* ctx) {
  return ctx->interrupt &&
    atomic_load_explicit((const _Atomic int32_t*)ctx->interrupt, memory_order_relaxed) != 0;
}

static void glue_limits_stop(GlueContext* ctx, int reason) {
  mvm_VM* vm = ctx->vm;
  /* Gas that ran out at this very instruction is what the call reports. */
  if (!vm || ctx->stop_reason || vm->stopAfterNInstructions == 0) return;
  ctx->saved_gas = vm->stopAfterNInstructions;
  vm->stopAfterNInstructions = 0;
  ctx->stop_reason = reason;
}

/* Whether a limit says the running call must stop now; if so, stops it. */
static void glue_limits_check(GlueContext* ctx) {
  if (ctx->stop_reason) return;
  if (glue_interrupt_requested(ctx)) {
    glue_limits_stop(ctx, GLUE_STOP_INTERRUPTED);
  } else if (ctx->deadline_ns && glue_now_ns() >= ctx->deadline_ns) {
    glue_limits_stop(ctx, GLUE_STOP_TIME_LIMIT);
  }
}

void glue_limits_enter(GlueContext* ctx, bool outermost) {
  if (!outermost) {
    /* A deadline that passed in the host function making this nested call,
     * or an interrupt: the call stops before it runs. */
    glue_limits_check(ctx);
    return;
  }
  ctx->stop_reason = 0;
  ctx->deadline_ns = 0;
  if (ctx->time_limit_ms >= 0) {
    /* Saturating: a limit of centuries is no limit, not an overflow. */
    double ns = ctx->time_limit_ms * 1e6;
    uint64_t now = glue_now_ns();
    ctx->deadline_ns = ns >= (double)(UINT64_MAX - now) ? UINT64_MAX : now + (uint64_t)ns;
    /* A limit of 0 leaves no time at all. */
    if (ctx->deadline_ns <= now) glue_limits_stop(ctx, GLUE_STOP_TIME_LIMIT);
  }
  /* An interrupt requested while the VM was idle: the call stops before it
   * runs. */
  if (glue_interrupt_requested(ctx)) glue_limits_stop(ctx, GLUE_STOP_INTERRUPTED);
}

int glue_limits_exit(GlueContext* ctx) {
  int reason = ctx->stop_reason;
  ctx->deadline_ns = 0;
  ctx->stop_reason = 0;
  if (reason) {
    if (ctx->vm) ctx->vm->stopAfterNInstructions = ctx->saved_gas;
    /* The request is answered: the next call runs. */
    if (reason == GLUE_STOP_INTERRUPTED && ctx->interrupt) {
      atomic_store_explicit((_Atomic int32_t*)ctx->interrupt, 0, memory_order_relaxed);
    }
  }
  return reason;
}

uint32_t glue_engine_heap_limit(void) { return MVM_MAX_HEAP_SIZE; }

/* After a host function returns to the guest: time spent in it counts, so
 * a call that overran in the host stops at once, not a poll later. */
static void glue_limits_after_host_call(GlueContext* ctx) {
  if (ctx->deadline_ns || ctx->interrupt) glue_limits_check(ctx);
}

/* GLUE_POLL (c/microvium_port.h), once in 2^14 dispatches: the limits each
 * time (a clock read, tens of nanoseconds, per ~16k instructions), the
 * host's teardown question once in 2^20 (it is a call into V8). */
void glue_poll_slow(GlueContext* ctx) {
  if (!innermost_boundary) return;
  glue_limits_check(ctx);
  if (ctx->poll_count & 0xFFFFF) return;
  LEAVE_ENGINE();
  bool abort_now = host_should_abort();
  REENTER_ENGINE();
  if (abort_now) glue_fatal_error(NULL, MVM_E_HOST_ERROR);
}

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
