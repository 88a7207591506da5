/*
 * Interface between the Rust engine binding (src/engine.rs) and c/engine.c.
 * Keep in sync with the #[repr(C)] mirror in src/engine.rs.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "microvium.h"

/* Fatal engine errors come back from glue_* calls as this plus the code. */
#define GLUE_FATAL_BASE 1000

/* Per-VM state the C side needs; owned (and kept at a fixed address) by Rust. */
typedef struct GlueContext {
  mvm_VM* vm;              /* NULL until restored and after free */
  void* host;              /* the Rust VM state, for host-function callbacks */
  void* spare_stack;       /* one cached virtual-stack block */
  uint32_t gc_epoch;       /* bumped whenever the collector frees old buckets */
  void* blocks;            /* every live engine allocation (see glue_malloc) */
  uint32_t poll_count;     /* instruction dispatches, see GLUE_POLL */
  size_t bytes;            /* engine memory held (see GLUE_MEMORY_CAP) */
} GlueContext;

enum {
  GLUE_KIND_UNDEFINED = 0,
  GLUE_KIND_NULL = 1,
  GLUE_KIND_BOOLEAN = 2,
  GLUE_KIND_NUMBER = 3,
  GLUE_KIND_STRING = 4,
  GLUE_KIND_FUNCTION = 5,
  GLUE_KIND_OBJECT = 6,
  GLUE_KIND_ARRAY = 7,
  GLUE_KIND_UINT8_ARRAY = 8,
  GLUE_KIND_CLASS = 9,
  GLUE_KIND_FIXED_ARRAY = 10,
  GLUE_KIND_HOST_FUNCTION = 11,
  GLUE_KIND_PROMISE = 12,
  GLUE_KIND_OTHER = 13,
};
