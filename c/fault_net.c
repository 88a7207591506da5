/*
 * The fault net: the last line of defence against a snapshot whose bytes
 * pass every check but still send the engine outside its memory.
 *
 * Microvium trusts much of what a snapshot says (heap pointers, variable and
 * global indexes, function headers); the host validates the snapshot, and
 * c/bytecode_checks.h adds checks where the fuzzer found the engine going
 * astray, but neither can prove that arbitrary bytecode stays in bounds. If
 * a read or write still faults, this SIGSEGV/SIGBUS handler ends the engine
 * call as a fatal error (MVM_E_INVALID_BYTECODE), exactly like the engine's
 * own fatal errors: glue_fatal_error longjmps to the innermost boundary of
 * this thread and the VM concerned is poisoned, then freed through its block
 * list without the engine walking its (corrupt) structures.
 *
 * It only acts when the faulting thread is running engine code
 * (glue_fault_is_recoverable: inside a boundary and not calling out to the
 * host or the allocator), since only then does jumping out skip nothing but
 * engine frames. Any other fault goes to the handler that was installed
 * before (Node's, V8's WebAssembly trap handler), or to the default action.
 *
 * SA_NODEFER: the handler leaves by longjmp, not by returning, so the
 * signal must not stay blocked afterwards. SA_ONSTACK: if the thread has an
 * alternate signal stack, use it.
 *
 * Not installed in sanitizer builds (AddressSanitizer reports faults itself,
 * and hiding them would defeat `npm run test:asan` and the fuzzer), nor on
 * Windows, where there is no sigaction (the README says so).
 */
#include <stdbool.h>
#include <stddef.h>
#include "engine.h"
#include "boundary.h"

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define GLUE_NO_FAULT_NET 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(_WIN32)
#  define GLUE_NO_FAULT_NET 1
#endif

#ifdef GLUE_NO_FAULT_NET

void glue_install_fault_net(void) {}
bool glue_fault_net_installed(void) { return false; }

#else

#include <signal.h>
#include <string.h>
#include <pthread.h>

static struct sigaction previous_segv;
static struct sigaction previous_bus;

static void pass_on(int sig, siginfo_t* info, void* ucontext) {
  struct sigaction* previous = sig == SIGBUS ? &previous_bus : &previous_segv;
  if (previous->sa_flags & SA_SIGINFO) {
    if (previous->sa_sigaction) {
      previous->sa_sigaction(sig, info, ucontext);
      return;
    }
  } else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN) {
    previous->sa_handler(sig);
    return;
  }
  /* Default action: reinstate it and raise the signal again, which ends
   * the process as it would have without us (also for a signal sent with
   * kill, where returning would not re-execute a faulting instruction). */
  signal(sig, SIG_DFL);
  raise(sig);
}

static void on_fault(int sig, siginfo_t* info, void* ucontext) {
  if (glue_fault_is_recoverable()) {
    glue_fatal_error(NULL, MVM_E_INVALID_BYTECODE);
  }
  pass_on(sig, info, ucontext);
}

static void install(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
}

static pthread_once_t installed = PTHREAD_ONCE_INIT;

void glue_install_fault_net(void) {
  pthread_once(&installed, install);
}

bool glue_fault_net_installed(void) {
  struct sigaction current;
  return sigaction(SIGSEGV, NULL, &current) == 0 &&
         (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_fault;
}

#endif
