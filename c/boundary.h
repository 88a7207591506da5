/*
 * The fatal-error boundary (c/boundary.c) as the C code outside it sees it:
 * the engine, through c/microvium_port.h (MVM_FATAL_ERROR, GLUE_POLL), and
 * the fault net (c/fault_net.c), which is compiled on its own and so cannot
 * use c/boundary.c's thread-locals and macros directly.
 *
 * C, because the boundary is setjmp/longjmp, which must not cross Rust
 * frames (see c/boundary.c).
 */
#pragma once
#include <stdbool.h>

/* Ends the current engine call with the fatal error `e`: longjmps to this
 * thread's innermost boundary (`vm` is not needed: the boundary knows). */
_Noreturn void glue_fatal_error(void* vm, int e);

/* Whether this thread is running engine code inside a boundary right now:
 * the fault net turns a memory fault into a fatal error only then. */
bool glue_fault_is_recoverable(void);

/* GLUE_POLL's slow path (`ctx` is the VM's GlueContext, c/engine.h):
 * stops the guest call when a sandbox limit says so (the time limit, an
 * interrupt from another thread), and now and then asks the host whether
 * the thread is being torn down, ending the engine call if it is. */
struct GlueContext;
void glue_poll_slow(struct GlueContext* ctx);
