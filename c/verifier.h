/*
 * The restore-time verifier (c/verifier.c): checks a snapshot once, before
 * the engine restores it, so that the interpreter can run without a check
 * per instruction or per pointer decode. See c/verifier.c for what it
 * proves and c/bytecode_checks.h for what stays checked at run time.
 */
#pragma once
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* What a verified snapshot leaves for the run-time checks: per resume point
 * of an async function, the values its saved catch targets must still have
 * when it resumes (see verifier_check_resume). Allocated by the caller's
 * allocator (`alloc`), freed with the VM. */
typedef struct VerifierResult VerifierResult;

/* The checks of the 28-byte header and the section table that the host
 * also needs before a restore (src/snapshot.rs calls this): returns 0 or an
 * mvm_TeError, with a description in *detail (a thread-local string). The
 * checksum too if `check_crc` (MVM_E_BYTECODE_CRC_FAIL), in the order the
 * host has always reported them. */
int verifier_check_header(const uint8_t* bytes, size_t size, bool check_crc, const char** detail);

/* Verifies a whole snapshot (header included). Returns 0 and sets *out
 * (allocated with `alloc(ctx, size)`, may be NULL when there is nothing to
 * keep), or MVM_E_INVALID_BYTECODE / another header error with *detail. */
int verifier_verify(const uint8_t* bytes, size_t size, void* (*alloc)(void* ctx, size_t size),
                    void* alloc_ctx, VerifierResult** out, const char** detail);

/* The detail of the last failure on this thread (for the host). */
const char* verifier_last_detail(void);

/* Frees what the verifier keeps for the calling thread (its failure
 * descriptions); call when the thread is done with the verifier. */
void verifier_thread_cleanup(void);
