/*
 * The functions behind the run-time checks: those c/bytecode_checks.h calls
 * at the engine's markers (and declares, since the engine comes first in
 * the translation unit), and those the glue's own reads call (c/engine.c:
 * property keys, the intern list, strings and Uint8Arrays the host reads).
 * A check returns whether the value is acceptable; its caller turns false
 * into a fatal error (GLUE_REQUIRE) or an error code.
 *
 * These run only where a value the program made is read as a given type
 * (see the top of c/bytecode_checks.h); the rest was proved at restore by
 * c/verifier.c. They check each pointer fully (glue_check_short_ptr), as a
 * second line behind the verifier: none of them runs per instruction.
 *
 * Why C, in the engine's translation unit (#included by c/engine.c after
 * the engine, c/boundary.c and c/allocator.c): they decode the engine's
 * values and read its internal structures (VM, TsBucket, TsArray, allocation
 * headers), which exist only inside microvium.c, and the engine calls them
 * from inside its interpreter loop and collector, where they must be cheap
 * and inlinable.
 */

#ifndef GLUE_ENGINE_UNIT
#error "c/checks.c is part of c/engine.c's translation unit: compile c/engine.c, not this file"
#endif

/* ------------------------------------------------------------------------ */
/* Where an allocation lies (bounds only)                                   */
/* ------------------------------------------------------------------------ */

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

/* Only the range: during a collection the target may be a tombstone. */
static bool glue_check_heap_offset(void* vm, uint16_t value) {
  return value < getHeapSize((VM*)vm);
}

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
/* What an allocation holds                                                 */
/* ------------------------------------------------------------------------ */

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

/* A pointer past the ROM section names a slot of the globals section. */
static bool glue_check_handle_slot(void* vm, uint16_t value) {
  LongPtr lpBytecode = ((VM*)vm)->lpBytecode;
  uint16_t start = getSectionOffset(lpBytecode, BCS_GLOBALS);
  uint16_t end = getSectionOffset(lpBytecode, vm_sectionAfter((VM*)vm, BCS_GLOBALS));
  uint16_t offset = start + ((uint16_t)(value - start) / 2) * 2;
  return value >= start && offset + 2 <= end;
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

/* ------------------------------------------------------------------------ */
/* Heap pointers, checked once per collection                               */
/* ------------------------------------------------------------------------ */

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

/* The payload of the heap allocation `value` leads to, if it is a heap
 * pointer that passes glue_check_short_ptr; else NULL. */
static const uint16_t* checked_heap_payload(VM* vm, Value value) {
  if (!Value_isShortPtr(value) || !glue_check_short_ptr(vm, value)) return NULL;
  return (const uint16_t*)ShortPtr_decode(vm, value);
}

/* ------------------------------------------------------------------------ */
/* At the engine's markers (c/bytecode_checks.h)                            */
/* ------------------------------------------------------------------------ */

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

/* A property list chained to an object that the collector merges into it
 * (read from the heap being collected: not through the record of checked
 * pointers, which a collection invalidates). */
static bool glue_check_gc_child(void* vm, uint16_t value) {
  if (value == VM_VALUE_NULL) return true;
  const uint16_t* p = heap_allocation_at((VM*)vm, value);
  return p && layout_ok(p[-1]) && vm_getTypeCodeFromHeaderWord(p[-1]) == TC_REF_PROPERTY_LIST;
}

/* ------------------------------------------------------------------------ */
/* In the glue's own walks (c/engine.c)                                     */
/* ------------------------------------------------------------------------ */

/* The glue's own walks (own_property_unguarded in c/engine.c) check what they
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
