/*
 * The engine's allocator: the port's MVM_CONTEXTUAL_MALLOC/FREE hooks
 * (glue_malloc, glue_free). Every allocation of a VM is recorded in its
 * context's block table, so that freeing the VM frees everything even after
 * a fatal error; one VM holds at most GLUE_MEMORY_CAP; blocks get slack
 * where the engine is known to write past them; the virtual stack, which the
 * engine allocates and frees around every outermost call, is kept as one
 * spare block; and a collection freeing old buckets bumps gc_epoch (the
 * host's and the checks' records of addresses go stale then).
 *
 * Why C, in the engine's translation unit (#included by c/engine.c after
 * c/boundary.c): the engine calls these hooks from engine code, inside a
 * boundary, where a fatal error may longjmp over them (no Rust frame may be
 * there); they bracket malloc/free with LEAVE_ENGINE/REENTER_ENGINE; and
 * they tell the engine's blocks apart by its internal layout (the VM
 * struct, its stack, vm_TsStack's size).
 */

#ifndef GLUE_ENGINE_UNIT
#error "c/allocator.c is part of c/engine.c's translation unit: compile c/engine.c, not this file"
#endif

/*
 * Room before the virtual stack. Some instructions address the stack at an
 * offset taken from the bytecode without a check the host can add (SUB_NEW
 * reaches up to 256 words below the stack pointer); this keeps such reads
 * and writes inside the VM's own allocation.
 */
#define STACK_FRONT_SLACK 1024

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
  /* Counted here, not for the spare: the host looks at the count only in or
   * after an engine call, which needs a stack. A heap bucket that happened
   * to be the stack's size and took the spare (only between calls: during
   * one the stack is out) makes that call allocate its stack here. */
  ctx->mallocs++;
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

/* The verifier's result (see glue_restore) is in the block table too. */
static void* verifier_alloc(void* ctx, size_t size) {
  return block_alloc((GlueContext*)ctx, size, 0);
}
