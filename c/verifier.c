/*
 * The restore-time verifier.
 *
 * A snapshot with a valid CRC can say anything, and the engine trusts much
 * of it: stack-relative variable indexes, jump targets, global indexes,
 * function headers (frame sizes), heap pointers and allocation headers. As
 * the JVM verifier and WebAssembly validation do, this checks once, before
 * the engine sees the snapshot, everything that can be checked once, so that
 * the interpreter can run with only the checks whose values are made at run
 * time (c/bytecode_checks.h).
 *
 * Included by c/engine.c after the engine (it uses the engine's opcode and
 * type enums, which exist only in that translation unit); it reads nothing
 * but the snapshot bytes, and runs before mvm_restore, so the engine never
 * touches a snapshot that failed it (mvm_restore itself walks the heap to
 * relocate its pointers, trusting every header).
 *
 * What it proves, and the invariant the engine then keeps:
 *
 *   1. Every value in the snapshot (globals, heap containers, exports,
 *      builtins, LOAD_LITERAL operands) is valid: an int14, a well-known
 *      value, a heap pointer to the start of an allocation in the heap
 *      section (only in the heap and the globals, which the collector
 *      updates), a pointer to a verified allocation in ROM, or a handle (a
 *      pointer into the globals section) whose slot holds a heap pointer.
 *      Every heap allocation has a type and size the engine's structs allow
 *      (no tombstones, no functions), and the fields the engine reads
 *      without a type check have the type it assumes: a property list's
 *      dpNext and dpProto, an array's data (a fixed-length array of at least
 *      its length, owned by that array alone), a host function's import
 *      index, the list of interned strings. Property-list and prototype
 *      chains are acyclic. The engine only ever stores values it was given or
 *      made, so every value stays valid: the guest cannot forge a pointer,
 *      and the per-decode pointer checks are redundant.
 *   2. Every function reachable from a value (and from the short-call
 *      table, CALL_5 targets, builtins, resume points) decodes to known
 *      instructions with in-bounds operands, and by data flow over branches,
 *      exception handlers and await/resume points, every instruction has one
 *      stack height and one stack of open try blocks: pops never reach below
 *      the frame or into a catch target, LOAD_VAR/STORE_VAR never leave the
 *      frame or touch a catch target, END_TRY closes a try of the same frame,
 *      RETURN leaves no try open, the height never exceeds the header's
 *      maxStackDepth (which sizes the frame), jumps land on instructions of
 *      the same function, catch blocks and resume points carry the headers
 *      the engine reads. So the stack pointer, frame base, arguments and
 *      catch target stay where the engine expects without a check per
 *      instruction.
 *
 * What it leaves to run-time checks (c/bytecode_checks.h): anything that
 * depends on values the program makes, e.g. which closure is current when a
 * scoped variable is read (its chain links are slots the guest can write),
 * promise and class-prototype internal slots (writable through negative
 * integer keys), the stack saved in an async function's closure (its catch
 * targets are checked against the table built here when it resumes).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "verifier.h"

/* ---- Failure reporting --------------------------------------------------- */

/* The descriptions of the last failure on this thread. In a block made on
 * the thread's first failure (verifier_thread_cleanup frees it), not in
 * thread-local arrays: the glue's initial-exec thread-locals put this
 * module's whole thread-local block in the process's small static TLS
 * reserve, where every byte counts (two copies of the addon, two versions
 * of the package, must both load in one process). */
#define DETAIL_SIZE 200
#define HEADER_DETAIL_SIZE 160
typedef struct { char detail[DETAIL_SIZE]; char header[HEADER_DETAIL_SIZE]; } VerifierMessages;
static _Thread_local VerifierMessages* verifier_messages;
/* Where a failure is described when no block could be made. */
static _Thread_local char verifier_fallback[2];

static VerifierMessages* messages(void) {
  if (!verifier_messages) verifier_messages = calloc(1, sizeof *verifier_messages);
  return verifier_messages;
}

void verifier_thread_cleanup(void) {
  free(verifier_messages);
  verifier_messages = NULL;
}

#define verifier_detail (messages() ? messages()->detail : verifier_fallback)
#define verifier_detail_size (messages() ? (size_t)DETAIL_SIZE : sizeof verifier_fallback)

const char* verifier_last_detail(void) { return verifier_detail; }

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static bool vfail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(verifier_detail, verifier_detail_size, fmt, ap);
  va_end(ap);
  return false;
}

/* ---- Snapshot layout ------------------------------------------------------ */

#define V_HEADER_SIZE 28      /* 12 bytes + BCS_SECTION_COUNT offsets */
#define V_ASYNC_RESUME_BYTE ((VM_OP_EXTENDED_3 << 4) | VM_OP3_ASYNC_RESUME)
#define V_FUNC_HEADER(back) ((uint16_t)((TC_REF_FUNCTION << 12) | VM_FUNCTION_HEADER_CONTINUATION_FLAG | (back)))

static uint16_t rd16(const uint8_t* b, uint32_t at) { return (uint16_t)(b[at] | (b[at + 1] << 8)); }

int verifier_check_header(const uint8_t* b, size_t n, bool check_crc, const char** detail) {
  char* msg = messages() ? messages()->header : verifier_fallback;
  size_t msg_size = messages() ? (size_t)HEADER_DETAIL_SIZE : sizeof verifier_fallback;
  *detail = msg;
  msg[0] = 0;
#define HFAIL(code, ...) do { snprintf(msg, msg_size, __VA_ARGS__); return code; } while (0)
  if (n == 0) HFAIL(MVM_E_INVALID_BYTECODE, "the snapshot is empty");
  if (n < V_HEADER_SIZE) {
    HFAIL(MVM_E_INVALID_BYTECODE, "the snapshot is %zu bytes, shorter than its %d-byte header", n, V_HEADER_SIZE);
  }
  if (b[0] != MVM_ENGINE_MAJOR_VERSION || b[2] > MVM_ENGINE_MINOR_VERSION) {
    HFAIL(MVM_E_WRONG_BYTECODE_VERSION, "the snapshot requires engine version %d.%d.0 but this engine is %d.%d.0",
          b[0], b[2], MVM_ENGINE_MAJOR_VERSION, MVM_ENGINE_MINOR_VERSION);
  }
  if (b[1] != V_HEADER_SIZE) HFAIL(MVM_E_INVALID_BYTECODE, "unexpected header size %d", b[1]);
  uint32_t size = rd16(b, 4);
  if (size != n) HFAIL(MVM_E_INVALID_BYTECODE, "the header says %u bytes but the snapshot has %zu", size, n);
  /* Every section holds whole 16-bit words; an odd size leaves the heap
   * section (the last) odd, and the engine then starts its next heap
   * bucket at an odd offset, so the pointers it encodes there decode as
   * other kinds of values. */
  if (size % 2 != 0) {
    HFAIL(MVM_E_INVALID_BYTECODE, "the snapshot is %u bytes, an odd number: its sections hold 16-bit words", size);
  }
  if (check_crc && default_crc16((MVM_LONG_PTR_TYPE)(b + 8), (uint16_t)(size - 8)) != rd16(b, 6)) {
    HFAIL(MVM_E_BYTECODE_CRC_FAIL, "the snapshot's checksum does not match its contents");
  }
  uint32_t previous = V_HEADER_SIZE;
  for (int i = 0; i < BCS_SECTION_COUNT; i++) {
    uint32_t o = rd16(b, 12 + 2 * i);
    if (o < previous || o > size || o % 2 != 0) {
      HFAIL(MVM_E_INVALID_BYTECODE, "section %d offset %u is out of order or out of bounds", i, o);
    }
    previous = o;
  }
  uint32_t exports = rd16(b, 12 + 2 * BCS_EXPORT_TABLE);
  uint32_t exports_end = rd16(b, 12 + 2 * (BCS_EXPORT_TABLE + 1));
  if ((exports_end - exports) % 4 != 0) HFAIL(MVM_E_INVALID_BYTECODE, "malformed export table");
#undef HFAIL
  return 0;
}

/* ---- Verifier state ------------------------------------------------------- */

/* A try block open at an instruction: the stack height at its START_TRY
 * (its catch target is that slot and the next), its handler value, and the
 * try block it is nested in. Node 0 is "none"; the async root catch target
 * of an async function (frame slots 1-2) is a node with handler 0. */
typedef struct TryNode {
  uint16_t parent;
  uint8_t base;
  uint16_t handler;
} TryNode;

#define MAX_TRY_NODES 4096
#define V_DEPTH_SLACK 2
#define MAX_RESUME_POINTS 4096

/* Per byte of ROM: whether an instruction starts there and with which
 * state. `owner` is the function (main entry offset) the instruction
 * belongs to. */
typedef struct InsnState {
  uint16_t owner;
  uint16_t tries;
  uint16_t height;
  uint8_t flags;
} InsnState;

enum {
  IS_VISITED = 1,        /* an instruction with this state starts here */
  IS_RESUME_ENTRY = 2,   /* a resume point (ASYNC_RESUME, entered by call) */
  IS_CATCH_ENTRY = 4,    /* a catch block */
  IS_FUNCTION = 8,       /* a function's main entry (queued or verified) */
  IS_ASYNC_CATCH = 16,   /* the builtin async catch block's entry */
  IS_DATA = 32,          /* a verified ROM allocation (not a function) */
};

typedef struct ResumeSlot { uint16_t index; uint16_t value; } ResumeSlot;

typedef struct ResumePoint {
  uint16_t offset;       /* of the ASYNC_RESUME instruction */
  uint16_t first;        /* index into slots */
  uint16_t count;        /* catch-target slots to check */
} ResumePoint;

struct VerifierResult {
  uint16_t resume_count;
  uint16_t slot_count;
  ResumePoint* resumes;  /* sorted by offset */
  ResumeSlot* slots;
};

typedef struct V {
  const uint8_t* b;
  uint32_t size;
  uint32_t sec[BCS_SECTION_COUNT + 1];   /* offsets, sec[COUNT] = size */

  /* Heap: bit per even offset, set where an allocation's payload starts. */
  uint8_t* heap_start;
  uint8_t* heap_owned;    /* fixed-length arrays already the data of an array */
  uint32_t heap_count;    /* allocations */

  /* Globals: handles (slots referenced by bytecode-mapped pointers) and
   * the slots LOAD_GLOBAL/STORE_GLOBAL use; the two must not meet. */
  uint8_t* global_handle;
  uint8_t* global_used;
  uint16_t intern_handle; /* the BIN_INTERNED_STRINGS slot + 1, or 0 */

  /* ROM. */
  InsnState* rom;         /* indexed by offset - sec[BCS_ROM] */
  uint16_t* work;         /* instruction offsets to visit (current function) */
  uint32_t work_count, work_cap;
  uint16_t* funcs;        /* function main entries to verify */
  uint32_t func_count, func_cap;
  uint16_t* conts;        /* continuation-headed ROM values to check at the end */
  uint32_t cont_count, cont_cap;
  uint16_t* rom_containers; /* ROM classes and closures whose values to check */
  uint32_t rc_count, rc_cap, rc_done;

  TryNode* tries;         /* grown as needed, up to MAX_TRY_NODES */
  uint32_t try_count, try_cap;

  ResumePoint* resumes;   /* grown as needed, up to MAX_RESUME_POINTS */
  uint32_t resume_count, resume_cap;
  ResumeSlot* rslots;
  uint32_t rslot_count, rslot_cap;

  uint16_t async_catch;   /* BIN_ASYNC_CATCH_BLOCK's offset, or 0 */
  uint16_t import_count;
  uint16_t short_call_count;
} V;

static uint32_t sec_end(const V* v, int s) { return v->sec[s + 1]; }
static uint32_t sec_size(const V* v, int s) { return v->sec[s + 1] - v->sec[s]; }

static bool bit_get(const uint8_t* bits, uint32_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }
static void bit_set(uint8_t* bits, uint32_t i) { bits[i >> 3] |= (uint8_t)(1u << (i & 7)); }

static bool push16(uint16_t** arr, uint32_t* count, uint32_t* cap, uint16_t x) {
  if (*count == *cap) {
    uint32_t ncap = *cap ? *cap * 2 : 64;
    uint16_t* p = (uint16_t*)realloc(*arr, ncap * sizeof **arr);
    if (!p) return vfail("out of memory");
    *arr = p;
    *cap = ncap;
  }
  (*arr)[(*count)++] = x;
  return true;
}

static uint16_t hdr_size(uint16_t h) { return h & 0xFFF; }
static uint16_t hdr_type(uint16_t h) { return h >> 12; }

/* ---- Values ---------------------------------------------------------------- */

/* Heap allocation at short pointer p (its payload start), or false. */
static bool heap_alloc_at(const V* v, uint16_t p, uint16_t* header) {
  if (p & 1) return false;
  /* p may be the heap's size: a zero-length Uint8Array last in the heap has
   * its payload there (c/patches/zero-size-allocations.patch gives it a
   * filler word at restore). */
  if ((uint32_t)p > sec_size(v, BCS_HEAP) || !bit_get(v->heap_start, p >> 1)) return false;
  *header = rd16(v->b, v->sec[BCS_HEAP] + p - 2);
  return true;
}

static bool rom_alloc(V* v, uint16_t offset, bool as_value);

/* Where a value was found, for the message when it is rejected (formatted
 * only then: a restore checks every value). */
typedef struct Where { const char* fmt; unsigned arg; } Where;
#define WHERE(fmt, arg) ((Where){ (fmt), (unsigned)(arg) })

/* What a value resolves to, for the typed fields: the allocation type (a
 * TC_REF_*), or the TC_VAL_* of a non-pointer. Valid values only. */
static int value_type(const V* v, uint16_t value) {
  uint16_t h;
  if ((value & 1) == 0) return heap_alloc_at(v, value, &h) ? hdr_type(h) : -1;
  if ((value & 3) == 3) return TC_VAL_INT14;
  if (value < VM_VALUE_WELLKNOWN_END) return (value >> 2) + 0x11;
  uint16_t offset = value & 0xFFFC;
  if (offset >= v->sec[BCS_GLOBALS] && offset < sec_end(v, BCS_GLOBALS)) {
    uint16_t target = rd16(v->b, offset);
    return heap_alloc_at(v, target, &h) ? hdr_type(h) : -1;
  }
  return hdr_type(rd16(v->b, offset - 2));
}

/* A value anywhere in the snapshot (not a builtin slot, which has its own
 * rules): see point 1 at the top of this file. A value stored in ROM
 * (`in_rom`: bytecode literals, exports, builtins, ROM allocations) may not
 * be a heap pointer: the collector moves heap allocations and updates the
 * pointers in the heap, globals and stack, never those in the snapshot, so
 * after a collection such a pointer would lead anywhere. ROM reaches the
 * heap through handles (slots of the globals section) instead. */
static bool check_value(V* v, uint16_t value, Where at, bool in_rom) {
  uint16_t h;
  char where[48];
#define WHERE_TEXT() snprintf(where, sizeof where, at.fmt, at.arg)
  if ((value & 1) == 0) {
    if (in_rom) return WHERE_TEXT(), vfail("%s: 0x%04x is a heap pointer in ROM (the collector would leave it stale)", where, value);
    if (!heap_alloc_at(v, value, &h)) return WHERE_TEXT(), vfail("%s: 0x%04x does not point to a heap allocation", where, value);
    return true;
  }
  if ((value & 3) == 3) return true;
  if (value < VM_VALUE_WELLKNOWN_END) return true;
  uint16_t offset = value & 0xFFFC;
  if (offset >= v->sec[BCS_GLOBALS] && offset < sec_end(v, BCS_GLOBALS)) {
    uint16_t slot = (offset - v->sec[BCS_GLOBALS]) / 2;
    if (v->intern_handle && slot == v->intern_handle - 1) {
      return WHERE_TEXT(), vfail("%s: 0x%04x is the handle of the interned strings", where, value);
    }
    uint16_t target = rd16(v->b, offset);
    if (!heap_alloc_at(v, target, &h)) {
      return WHERE_TEXT(), vfail("%s: handle 0x%04x does not hold a heap pointer", where, value);
    }
    bit_set(v->global_handle, slot);
    return true;
  }
  if (offset >= v->sec[BCS_ROM] && offset < sec_end(v, BCS_ROM)) {
    if (!rom_alloc(v, offset, true)) {
      char why[DETAIL_SIZE];
      snprintf(why, sizeof why, "%s", verifier_detail);
      WHERE_TEXT();
      return vfail("%s: 0x%04x: %s", where, value, why);
    }
    return true;
  }
  return WHERE_TEXT(), vfail("%s: 0x%04x points outside ROM and globals", where, value);
#undef WHERE_TEXT
}

/* A function's main entry at `offset`: its header, and queue it. */
static bool queue_function(V* v, uint16_t offset, bool callable) {
  uint32_t rom = v->sec[BCS_ROM];
  /* The async catch block runs only in the frame of an async function that
   * threw (see verify_function): no call may enter it. */
  if (callable && offset == v->async_catch) return vfail("the async catch block is not a function value");
  if (offset < rom + 2 || offset >= sec_end(v, BCS_ROM)) return vfail("function 0x%04x outside ROM", offset);
  uint16_t h = rd16(v->b, offset - 2);
  if (hdr_type(h) != TC_REF_FUNCTION || (h & VM_FUNCTION_HEADER_CONTINUATION_FLAG)) {
    return vfail("0x%04x is not a function's entry", offset);
  }
  InsnState* s = &v->rom[offset - rom];
  if (s->flags & IS_FUNCTION) return true;
  if (s->flags & (IS_VISITED | IS_DATA)) return vfail("function 0x%04x overlaps other code or data", offset);
  s->flags |= IS_FUNCTION;
  return push16(&v->funcs, &v->func_count, &v->func_cap, offset);
}

/* A TsHostFunc's index: an import, or the engine's own push
 * (c/patches/array-push.patch), which SUB_CALL runs without the table. */
static bool host_index_ok(const V* v, uint16_t index) {
#ifdef VM_IMPORT_INDEX_ARRAY_PUSH
  if (index == VM_IMPORT_INDEX_ARRAY_PUSH) return true;
#endif
  return index < v->import_count;
}

/* An allocation in ROM that a value points to. */
static bool rom_alloc(V* v, uint16_t offset, bool as_value) {
  uint32_t rom = v->sec[BCS_ROM], rom_end = sec_end(v, BCS_ROM);
  if (offset < rom + 2 || offset >= rom_end) return vfail("outside ROM");
  InsnState* s = &v->rom[offset - rom];
  if (s->flags & IS_DATA) return true;
  uint16_t h = rd16(v->b, offset - 2);
  uint16_t size = hdr_size(h);
  switch (hdr_type(h)) {
    case TC_REF_FUNCTION:
      if (h & VM_FUNCTION_HEADER_CONTINUATION_FLAG) {
        /* A resume point or a catch block: checked once every reachable
         * function has been verified (the back pointer leads to the
         * function that must contain it). */
        uint32_t back = (uint32_t)(h & VM_FUNCTION_HEADER_BACK_POINTER_MASK) * 4;
        if (back > offset) return vfail("continuation back pointer out of range");
        if (!queue_function(v, (uint16_t)(offset - back), false)) return false;
        return push16(&v->conts, &v->cont_count, &v->cont_cap, offset);
      }
      return queue_function(v, offset, as_value);
    case TC_REF_STRING: case TC_REF_INTERNED_STRING:
      if (size < 1) return vfail("empty string allocation");
      break;
    case TC_REF_INT32: if (size != 4) return vfail("int32 of %u bytes", size); break;
    case TC_REF_FLOAT64: if (size != 8) return vfail("float64 of %u bytes", size); break;
    case TC_REF_HOST_FUNC:
      if (size != 2 || (uint32_t)offset + 2 > rom_end) return vfail("host function of %u bytes", size);
      if (!host_index_ok(v, rd16(v->b, offset))) return vfail("host function import index out of range");
      break;
    case TC_REF_CLASS: case TC_REF_CLOSURE:
      /* Read-only containers: the engine writes neither in place (a class's
       * properties live in its staticProps object; a closure slot in ROM is
       * a fatal error to STORE_SCOPED and fails the checks of
       * c/bytecode_checks.h elsewhere). Their values are checked later
       * (check_rom_containers), without recursion. */
      if (size < 2 || size % 2 || (hdr_type(h) == TC_REF_CLASS && size != 4)) return vfail("ROM container of %u bytes", size);
      if ((uint32_t)offset + size > rom_end) return vfail("ROM allocation overruns ROM");
      if (s->flags & (IS_VISITED | IS_FUNCTION)) return vfail("ROM data overlaps code");
      s->flags |= IS_DATA;
      return push16(&v->rom_containers, &v->rc_count, &v->rc_cap, offset);
    default:
      /* The engine writes property lists and arrays in place through their
       * pointer, which for one in ROM is the snapshot itself; the 8.0.0
       * compiler puts none there. */
      return vfail("a ROM allocation of type %u", hdr_type(h));
  }
  if ((uint32_t)offset + size > rom_end) return vfail("ROM allocation overruns ROM");
  if (s->flags & (IS_VISITED | IS_FUNCTION)) return vfail("ROM data overlaps code");
  s->flags |= IS_DATA;
  return true;
}

/* ---- Heap ------------------------------------------------------------------ */

static bool heap_layout_ok(uint16_t type, uint16_t size) {
  switch (type) {
    case TC_REF_INT32: return size == 4;
    case TC_REF_FLOAT64: return size == 8;
    case TC_REF_STRING: case TC_REF_INTERNED_STRING: return size >= 1;
    case TC_REF_HOST_FUNC: return size == sizeof(TsHostFunc);
    case TC_REF_UINT8_ARRAY: return true;
    case TC_REF_CLASS: return size == sizeof(TsClass);
    case TC_REF_PROPERTY_LIST: return size >= sizeof(TsPropertyList) && (size - sizeof(TsPropertyList)) % 4 == 0;
    case TC_REF_ARRAY: return size == sizeof(TsArray);
    /* Any size: vm_objectKeys allocates an empty one with 1 byte. */
    case TC_REF_FIXED_LENGTH_ARRAY: return true;
    case TC_REF_CLOSURE: return size >= 2 && size % 2 == 0;
    default: return false;  /* tombstones, functions, reserved types */
  }
}

static bool parse_heap(V* v) {
  uint32_t base = v->sec[BCS_HEAP], n = sec_size(v, BCS_HEAP);
  uint32_t at = 0;
  while (at < n) {
    if (at + 2 > n) return vfail("heap: truncated allocation header at 0x%04x", at);
    uint16_t h = rd16(v->b, base + at);
    uint16_t size = hdr_size(h);
    /* A filler word (c/patches/zero-size-allocations.patch puts one after a
     * zero-length allocation): an empty allocation nothing may point to. */
    if (h == 0) { at += 2; continue; }
    if (!heap_layout_ok(hdr_type(h), size)) {
      return vfail("heap: allocation at 0x%04x has type %u and size %u", at + 2, hdr_type(h), size);
    }
    uint32_t payload = at + 2;
    if (payload + size > n) return vfail("heap: allocation at 0x%04x overruns the heap", payload);
    bit_set(v->heap_start, payload >> 1);
    v->heap_count++;
    at = payload + ((size + 1u) & ~1u);
  }
  return true;
}

static uint16_t size_of_heap_alloc(const V* v, uint16_t p) {
  return hdr_size(rd16(v->b, v->sec[BCS_HEAP] + p - 2));
}

/* A link the engine follows as a property list without checking: null, or
 * a property list in the heap. */
static bool proplist_link_ok(const V* v, uint16_t link) {
  uint16_t h;
  if (link == VM_VALUE_NULL) return true;
  return heap_alloc_at(v, link, &h) && hdr_type(h) == TC_REF_PROPERTY_LIST;
}

/* A prototype: null (or undefined, which ends a chain too), or a property
 * list, through a handle or not. */
static bool proto_ok(const V* v, uint16_t proto) {
  if (proto == VM_VALUE_NULL || proto == VM_VALUE_UNDEFINED) return true;
  return value_type(v, proto) == TC_REF_PROPERTY_LIST;
}

static uint16_t resolve_handle(const V* v, uint16_t value) {
  if ((value & 3) == 1 && value >= VM_VALUE_WELLKNOWN_END) {
    uint16_t offset = value & 0xFFFC;
    if (offset >= v->sec[BCS_GLOBALS] && offset < sec_end(v, BCS_GLOBALS)) return rd16(v->b, offset);
  }
  return value;
}

/* Chains that the engine walks inside one instruction (next property
 * lists, prototypes) must end: the engine only ever adds new objects at
 * their heads, and never writes a link of an existing object (dpNext is
 * the engine's, and `__proto__` is read-only), so a chain acyclic now stays
 * acyclic. Each list has one link of each kind, so marking each list
 * in-progress (1) then done (2) finds a cycle in linear time. Runs after
 * check_heap, which has checked every link's target. */
static bool chains_end(V* v, uint8_t* mark, bool proto) {
  uint32_t base = v->sec[BCS_HEAP], n = sec_size(v, BCS_HEAP);
  memset(mark, 0, n / 2 + 1);
  for (uint32_t at = 0; at < n;) {
    uint16_t h = rd16(v->b, base + at);
    uint16_t start = (uint16_t)(at + 2);
    at = start + ((hdr_size(h) + 1u) & ~1u);
    if (hdr_type(h) != TC_REF_PROPERTY_LIST || mark[start >> 1]) continue;
    for (int pass = 1; pass <= 2; pass++) {
      uint16_t p = start;
      while (p != VM_VALUE_NULL && p != VM_VALUE_UNDEFINED) {
        p = resolve_handle(v, p);
        if (mark[p >> 1] == 2) break;
        if (mark[p >> 1] == 1 && pass == 1) return vfail("a cycle of %s", proto ? "prototypes" : "property lists");
        mark[p >> 1] = (uint8_t)pass;
        p = rd16(v->b, base + p + (proto ? 2 : 0));
      }
    }
  }
  return true;
}

/* getProperty, setProperty and vm_objectKeys follow a class to its
 * staticProps, and on while that is a class: a class is never written after
 * CLASS_CREATE made it (from values that existed before it), so chains
 * acyclic in the snapshot stay acyclic. Classes are in the heap or in ROM;
 * each has one link, so marking finds a cycle in linear time. Runs after
 * every value has been checked. */
static bool class_at(const V* v, uint16_t value, uint32_t* at) {
  uint16_t h;
  value = resolve_handle(v, value);
  if ((value & 1) == 0) {
    if (!heap_alloc_at(v, value, &h) || hdr_type(h) != TC_REF_CLASS) return false;
    *at = v->sec[BCS_HEAP] + value;
    return true;
  }
  if ((value & 3) != 1 || value < VM_VALUE_WELLKNOWN_END) return false;
  uint16_t offset = value & 0xFFFC;
  if (offset < v->sec[BCS_ROM] + 2 || offset >= sec_end(v, BCS_ROM)) return false;
  if (hdr_type(rd16(v->b, offset - 2)) != TC_REF_CLASS) return false;
  *at = offset;
  return true;
}

/* Follows the chain of classes from `start`: the first pass marks it 1
 * and fails on a class already marked 1 (a cycle), the second marks it 2;
 * a chain that reaches a class marked 2 joins one already checked. */
static bool class_chain_ends(const V* v, uint8_t* mark, uint32_t start) {
  for (int pass = 1; pass <= 2; pass++) {
    uint32_t c = start;
    for (;;) {
      if (mark[c >> 1] == 2) break;
      if (mark[c >> 1] == 1 && pass == 1) return vfail("a cycle of classes (staticProps)");
      mark[c >> 1] = (uint8_t)pass;
      if (!class_at(v, rd16(v->b, c + 2), &c)) break;
    }
  }
  return true;
}

static bool class_chains_end(V* v) {
  /* A mark per even byte offset of the snapshot (classes in ROM and heap
   * alike are addressed by their offset in it). */
  uint8_t* mark = (uint8_t*)calloc(v->size / 2 + 1, 1);
  if (!mark) return vfail("out of memory");
  bool ok = true;
  uint32_t base = v->sec[BCS_HEAP], n = sec_size(v, BCS_HEAP);
  for (uint32_t at = 0; ok && at < n;) {
    uint16_t h = rd16(v->b, base + at);
    uint32_t start = base + at + 2;
    at += 2 + ((hdr_size(h) + 1u) & ~1u);
    if (hdr_type(h) != TC_REF_CLASS || mark[start >> 1]) continue;
    ok = class_chain_ends(v, mark, start);
  }
  /* ROM classes reached only from ROM or bytecode: the same walk. */
  for (uint32_t i = 0; ok && i < v->rc_count; i++) {
    uint32_t start = v->rom_containers[i];
    if (hdr_type(rd16(v->b, start - 2)) != TC_REF_CLASS || mark[start >> 1]) continue;
    ok = class_chain_ends(v, mark, start);
  }
  free(mark);
  return ok;
}

static bool check_heap(V* v) {
  uint32_t base = v->sec[BCS_HEAP], n = sec_size(v, BCS_HEAP);
  for (uint32_t at = 0; at < n;) {
    uint16_t h = rd16(v->b, base + at);
    uint16_t size = hdr_size(h), type = hdr_type(h);
    uint32_t p = at + 2;
    if (type >= TC_REF_DIVIDER_CONTAINER_TYPES) {
      for (uint32_t i = 0; i + 2 <= size; i += 2) {
        if (!check_value(v, rd16(v->b, base + p + i), WHERE("heap allocation 0x%04x", p), false)) return false;
      }
    }
    switch (type) {
      case TC_REF_HOST_FUNC:
        if (!host_index_ok(v, rd16(v->b, base + p))) return vfail("heap allocation 0x%04x: import index out of range", p);
        break;
      case TC_REF_PROPERTY_LIST: {
        uint16_t next = rd16(v->b, base + p), proto = rd16(v->b, base + p + 2);
        if (!proplist_link_ok(v, next)) return vfail("heap allocation 0x%04x: its next list is not a property list", p);
        /* Internal slots (pairs keyed by a negative int14) lead the first
         * list of an object: vm_objectKeys counts the keys skipping only a
         * leading run of them in each list, and fills the array skipping
         * them anywhere, so one after an ordinary key would leave a slot of
         * the new array uninitialized. The program cannot make such a key
         * (toPropertyName rejects negative integers), and instances copy
         * their internal slots from a prototype's, in order. */
        bool leading = true;
        for (uint32_t i = 4; i + 4 <= size; i += 4) {
          uint16_t key = rd16(v->b, base + p + i);
          bool internal = (key & 0x8003) == 0x8003;
          if (internal && !leading) return vfail("heap allocation 0x%04x: an internal slot after a property", p);
          if (!internal) leading = false;
        }
        if (next != VM_VALUE_NULL && size_of_heap_alloc(v, next) >= 8 &&
            (rd16(v->b, base + next + 4) & 0x8003) == 0x8003) {
          return vfail("heap allocation 0x%04x: its next list starts with an internal slot", p);
        }
        if (!proto_ok(v, proto)) return vfail("heap allocation 0x%04x: its prototype is not an object", p);
        break;
      }
      case TC_REF_ARRAY: {
        uint16_t data = rd16(v->b, base + p), length = rd16(v->b, base + p + 2);
        if ((length & 3) != 3 || (int16_t)length < 0) return vfail("heap allocation 0x%04x: bad length", p);
        uint16_t len = (uint16_t)(length >> 2);
        uint16_t dh;
        if (data == VM_VALUE_NULL) {
          if (len != 0) return vfail("heap allocation 0x%04x: length without data", p);
        } else {
          if (!heap_alloc_at(v, data, &dh) || hdr_type(dh) != TC_REF_FIXED_LENGTH_ARRAY) {
            return vfail("heap allocation 0x%04x: its data is not a fixed-length array in the heap", p);
          }
          if ((uint32_t)len * 2 > hdr_size(dh)) return vfail("heap allocation 0x%04x: length beyond its data", p);
          /* The collector truncates an array's data to its length, which
           * another array sharing it would then overrun. */
          if (bit_get(v->heap_owned, data >> 1)) return vfail("heap allocation 0x%04x: its data belongs to another array", p);
          bit_set(v->heap_owned, data >> 1);
        }
        break;
      }
      default: break;
    }
    at = p + ((size + 1u) & ~1u);
  }
  return true;
}

/* The list of interned strings in RAM (BIN_INTERNED_STRINGS): cells
 * {spNext, str} the engine walks without checks. */
static bool check_intern_list(V* v, uint16_t head) {
  uint32_t steps = 0;
  uint16_t cell = head;
  while (cell != VM_VALUE_UNDEFINED) {
    uint16_t h;
    if (++steps > v->heap_count) return vfail("interned strings: the list is cyclic");
    if (!heap_alloc_at(v, cell, &h) || hdr_type(h) != TC_REF_FIXED_LENGTH_ARRAY || hdr_size(h) != 4) {
      return vfail("interned strings: 0x%04x is not a list cell", cell);
    }
    uint16_t str = rd16(v->b, v->sec[BCS_HEAP] + cell + 2);
    if (!heap_alloc_at(v, str, &h) || (hdr_type(h) != TC_REF_STRING && hdr_type(h) != TC_REF_INTERNED_STRING)) {
      return vfail("interned strings: a cell does not hold a heap string");
    }
    cell = rd16(v->b, v->sec[BCS_HEAP] + cell);
  }
  return true;
}

/* ---- Bytecode --------------------------------------------------------------- */

static uint16_t try_node(V* v, uint16_t parent, uint8_t base, uint16_t handler) {
  for (uint32_t i = 1; i < v->try_count; i++) {
    const TryNode* t = &v->tries[i];
    if (t->parent == parent && t->base == base && t->handler == handler) return (uint16_t)i;
  }
  if (v->try_count >= MAX_TRY_NODES) return 0;
  if (v->try_count == v->try_cap) {
    uint32_t ncap = v->try_cap * 2;
    TryNode* p = (TryNode*)realloc(v->tries, ncap * sizeof *p);
    if (!p) return 0;
    v->tries = p;
    v->try_cap = ncap;
  }
  v->tries[v->try_count] = (TryNode){ parent, base, handler };
  return (uint16_t)v->try_count++;
}

/* Whether stack slot `slot` (from the frame base) is part of an open catch
 * target. */
static bool is_catch_slot(const V* v, uint16_t tries, int slot) {
  for (uint16_t t = tries; t; t = v->tries[t].parent) {
    int base = v->tries[t].base;
    if (slot == base || slot == base + 1) return true;
  }
  return false;
}

/* The lowest height pops may leave: above the innermost catch target. */
static int pop_floor(const V* v, uint16_t tries) {
  return tries ? v->tries[tries].base + 2 : 0;
}

/* The root of a try stack (the async catch target, in an async function). */
static bool async_rooted(const V* v, uint16_t tries) {
  if (!tries) return false;
  while (v->tries[tries].parent) tries = v->tries[tries].parent;
  return v->tries[tries].handler == 0 && v->tries[tries].base == 1;
}

typedef struct Fn {
  uint16_t entry;
  uint8_t max;           /* the header's maxStackDepth */
} Fn;

/* Records that the instruction at `offset` runs with (height, tries) in
 * function fn, and queues it if new; a second, different state is an
 * error (the engine has one frame layout per instruction). */
static bool reach(V* v, const Fn* fn, uint32_t offset, int height, uint16_t tries, uint8_t extra_flags) {
  uint32_t rom = v->sec[BCS_ROM];
  if (offset < rom || offset >= sec_end(v, BCS_ROM)) return vfail("function 0x%04x: a jump leaves ROM (0x%04x)", fn->entry, offset);
  /* The header's maxStackDepth sizes the frame: the engine requires room for
   * maxStackDepth + 5 words when it calls (vm_requireStackSpace), the 5 for
   * the temporaries instructions push (at most 3: the catch target and the
   * scope of ASYNC_START). The 8.0.0 compiler understates the depth of some
   * functions by one (its "not available" stub for a vmImport at run time
   * pushes a string and throws with maxStackDepth 0), so heights up to
   * maxStackDepth + 2 are accepted: with the temporaries, still within the
   * room the engine checked. */
  if (height < 0 || height > fn->max + V_DEPTH_SLACK) {
    return vfail("function 0x%04x: stack height %d at 0x%04x outside 0..%d", fn->entry, height, offset, fn->max + V_DEPTH_SLACK);
  }
  InsnState* s = &v->rom[offset - rom];
  if (s->flags & IS_VISITED) {
    if (s->owner != fn->entry || s->height != height || s->tries != tries) {
      return vfail("function 0x%04x: inconsistent stack at 0x%04x (height %d vs %d)", fn->entry, offset, height, s->height);
    }
    /* A resume point runs ASYNC_RESUME, which only a call may enter. */
    if ((s->flags & IS_RESUME_ENTRY) != (extra_flags & IS_RESUME_ENTRY)) {
      return vfail("function 0x%04x: 0x%04x is entered in two ways", fn->entry, offset);
    }
    s->flags |= extra_flags;
    return true;
  }
  if ((s->flags & IS_FUNCTION) && offset != fn->entry) return vfail("function 0x%04x runs into function 0x%04x", fn->entry, offset);
  if (s->flags & IS_DATA) return vfail("function 0x%04x runs into data at 0x%04x", fn->entry, offset);
  s->owner = fn->entry;
  s->height = (uint16_t)height;
  s->tries = tries;
  s->flags |= IS_VISITED | extra_flags;
  return push16(&v->work, &v->work_count, &v->work_cap, (uint16_t)offset);
}

/* A continuation header at offset - 2 whose back pointer leads to fn. */
static bool continuation_header_ok(const V* v, const Fn* fn, uint32_t offset) {
  if (offset < v->sec[BCS_ROM] + 2 || offset >= sec_end(v, BCS_ROM) || offset <= fn->entry || (offset & 3)) return false;
  uint32_t back = offset - fn->entry;
  if (back % 4 || back / 4 > VM_FUNCTION_HEADER_BACK_POINTER_MASK) return false;
  return rd16(v->b, offset - 2) == V_FUNC_HEADER(back / 4);
}

static bool add_resume_point(V* v, uint16_t offset, uint16_t tries) {
  if (v->resume_count >= MAX_RESUME_POINTS) return vfail("too many await points");
  if (v->resume_count == v->resume_cap) {
    uint32_t ncap = v->resume_cap ? v->resume_cap * 2 : 16;
    ResumePoint* p = (ResumePoint*)realloc(v->resumes, ncap * sizeof *p);
    if (!p) return vfail("out of memory");
    v->resumes = p;
    v->resume_cap = ncap;
  }
  ResumePoint* r = &v->resumes[v->resume_count++];
  r->offset = offset;
  r->first = (uint16_t)v->rslot_count;
  r->count = 0;
  /* The user try blocks open at the await: their catch targets are saved in
   * the closure (slot 2 + (stack slot - 3)) and must come back unchanged. */
  for (uint16_t t = tries; t && v->tries[t].parent; t = v->tries[t].parent) {
    const TryNode* n = &v->tries[t];
    const TryNode* outer = &v->tries[n->parent];
    int16_t link = (int16_t)(outer->base - n->base);
    ResumeSlot pair[2] = {
      { (uint16_t)(2 + n->base - 3), VIRTUAL_INT14_ENCODE(link) },
      { (uint16_t)(2 + n->base + 1 - 3), n->handler },
    };
    for (int i = 0; i < 2; i++) {
      if (v->rslot_count == v->rslot_cap) {
        uint32_t ncap = v->rslot_cap ? v->rslot_cap * 2 : 32;
        ResumeSlot* p = (ResumeSlot*)realloc(v->rslots, ncap * sizeof *p);
        if (!p) return vfail("out of memory");
        v->rslots = p;
        v->rslot_cap = ncap;
      }
      v->rslots[v->rslot_count++] = pair[i];
      r->count++;
    }
  }
  return true;
}

#define NEED(n) do { if (h < (n) || h - (n) < pop_floor(v, T)) \
  return vfail("function 0x%04x: instruction at 0x%04x pops %d of %d slots", fn->entry, at, (int)(n), h); } while (0)
#define LEN(n) do { if (at + (n) > rom_end) return vfail("function 0x%04x: instruction at 0x%04x overruns ROM", fn->entry, at); } while (0)
#define BAD(what) return vfail("function 0x%04x: %s at 0x%04x", fn->entry, what, at)
#define NEXT(len, height) return reach(v, fn, at + (len), (height), T, 0)

static bool call_count_ok(uint16_t argc) { return (argc & AF_ARG_COUNT_MASK) >= 1; }

/* One instruction: its operands, and the state of each successor. */
static bool step(V* v, const Fn* fn, uint32_t at) {
  const uint8_t* b = v->b;
  uint32_t rom_end = sec_end(v, BCS_ROM);
  const InsnState* s = &v->rom[at - v->sec[BCS_ROM]];
  int h = s->height;
  uint16_t T = s->tries;
  uint8_t op = b[at] >> 4, p = b[at] & 0xF;

  if (s->flags & IS_RESUME_ENTRY) {
    /* Reached by a call: the engine's frame is empty here; the state
     * recorded is that of the instruction after it (see VM_OP3_AWAIT). */
    LEN(3);
    return reach(v, fn, at + 3, h, T, 0);
  }

  switch (op) {
    case VM_OP_LOAD_SMALL_LITERAL:
      if (p >= smallLiteralsSize) BAD("unknown small literal");
      NEXT(1, h + 1);
    case VM_OP_LOAD_VAR_1:
      if (p > h - 1 || is_catch_slot(v, T, h - p - 1)) BAD("LOAD_VAR outside the frame's values");
      NEXT(1, h + 1);
    case VM_OP_LOAD_SCOPED_1: case VM_OP_LOAD_ARG_1:
      NEXT(1, h + 1);
    case VM_OP_CALL_1: {
      if (p >= v->short_call_count) BAD("short call index out of range");
      uint16_t argc = b[v->sec[BCS_SHORT_CALL_TABLE] + p * 3 + 2];
      NEED(argc & AF_ARG_COUNT_MASK);
      NEXT(1, h - (argc & AF_ARG_COUNT_MASK) + ((argc & AF_VOID_CALLED) ? 0 : 1));
    }
    case VM_OP_FIXED_ARRAY_NEW_1:
      NEXT(1, h + 1);
    case VM_OP_CALL_5: {
      LEN(3);
      if (!call_count_ok(p)) BAD("call without a this argument");
      if (!queue_function(v, rd16(b, at + 1), true)) return vfail("function 0x%04x: CALL_5 at 0x%04x: %s", fn->entry, at, verifier_detail);
      NEED(p);
      NEXT(3, h - p + 1);
    }
    case VM_OP_STORE_VAR_1:
      NEED(1);
      if (p > h - 2 || is_catch_slot(v, T, (h - 1) - p - 1)) BAD("STORE_VAR outside the frame's values");
      NEXT(1, h - 1);
    case VM_OP_STORE_SCOPED_1:
      NEED(1);
      NEXT(1, h - 1);
    case VM_OP_ARRAY_GET_1: case VM_OP_ARRAY_SET_1:
      /* Never emitted by the compiler; the engine's versions index with the
       * wrong register. */
      BAD("ARRAY_GET_1/ARRAY_SET_1");
    case VM_OP_NUM_OP:
      if (p >= VM_NUM_OP_END) BAD("unknown number operation");
      if (p < VM_NUM_OP_DIVIDER) { NEED(2); NEXT(1, h - 1); }
      NEED(1);
      NEXT(1, h);
    case VM_OP_BIT_OP:
      if (p >= VM_BIT_OP_END) BAD("unknown bitwise operation");
      if (p < VM_BIT_OP_DIVIDER_2) { NEED(2); NEXT(1, h - 1); }
      NEED(1);
      NEXT(1, h);

    case VM_OP_EXTENDED_1:
      switch (p) {
        case VM_OP1_RETURN:
          NEED(1);
          /* An open try would leave the catch target in the dead frame. */
          if (T) BAD("RETURN inside a try block");
          return true;
        case VM_OP1_THROW:
          NEED(1);
          return true;
        case VM_OP1_CLOSURE_NEW: NEED(1); NEXT(1, h);
        case VM_OP1_NEW: {
          LEN(2);
          uint8_t argc = b[at + 1];
          if (argc > AF_ARG_COUNT_MASK || !call_count_ok(argc)) BAD("NEW argument count");
          NEED(argc + 1);
          NEXT(2, h - argc);
        }
        case VM_OP1_SCOPE_NEW:
          LEN(2);
          if (b[at + 1] == 0) BAD("a scope of no slots");
          NEXT(2, h);
        case VM_OP1_TYPE_CODE_OF: case VM_OP1_TYPEOF: case VM_OP1_LOGICAL_NOT:
          NEED(1); NEXT(1, h);
        case VM_OP1_POP: NEED(1); NEXT(1, h - 1);
        case VM_OP1_OBJECT_NEW: NEXT(1, h + 1);
        case VM_OP1_OBJECT_GET_1: case VM_OP1_ADD: case VM_OP1_EQUAL: case VM_OP1_NOT_EQUAL:
          NEED(2); NEXT(1, h - 1);
        case VM_OP1_OBJECT_SET_1: NEED(3); NEXT(1, h - 3);
        default: BAD("reserved Ex1 opcode");
      }

    case VM_OP_EXTENDED_2: {
      LEN(2);
      uint8_t x = b[at + 1];
      switch (p) {
        case VM_OP2_BRANCH_1:
          NEED(1);
          if (!reach(v, fn, at + 2 + (int8_t)x, h - 1, T, 0)) return false;
          NEXT(2, h - 1);
        case VM_OP2_STORE_ARG: case VM_OP2_STORE_SCOPED_2:
          NEED(1); NEXT(2, h - 1);
        case VM_OP2_STORE_VAR_2:
          NEED(1);
          if (x > h - 2 || is_catch_slot(v, T, (h - 1) - x - 1)) BAD("STORE_VAR outside the frame's values");
          NEXT(2, h - 1);
        case VM_OP2_JUMP_1:
          return reach(v, fn, at + 2 + (int8_t)x, h, T, 0);
        case VM_OP2_CALL_HOST: {
          LEN(3);
          if (b[at + 2] >= v->import_count) BAD("CALL_HOST import index out of range");
          if (!call_count_ok(x)) BAD("call without a this argument");
          NEED(x & AF_ARG_COUNT_MASK);
          NEXT(3, h - (x & AF_ARG_COUNT_MASK) + ((x & AF_VOID_CALLED) ? 0 : 1));
        }
        case VM_OP2_CALL_3: {
          uint8_t argc = x & AF_ARG_COUNT_MASK;
          if (!call_count_ok(argc)) BAD("call without a this argument");
          NEED(argc + 1);
          NEXT(2, h - argc - 1 + ((x & AF_VOID_CALLED) ? 0 : 1));
        }
        case VM_OP2_CALL_6: {
          if (x >= v->short_call_count) BAD("short call index out of range");
          uint16_t argc = b[v->sec[BCS_SHORT_CALL_TABLE] + x * 3 + 2];
          NEED(argc & AF_ARG_COUNT_MASK);
          NEXT(2, h - (argc & AF_ARG_COUNT_MASK) + ((argc & AF_VOID_CALLED) ? 0 : 1));
        }
        case VM_OP2_LOAD_SCOPED_2: case VM_OP2_LOAD_ARG_2: case VM_OP2_ARRAY_NEW: case VM_OP2_FIXED_ARRAY_NEW_2:
          NEXT(2, h + 1);
        case VM_OP2_LOAD_VAR_2:
          if (x > h - 1 || is_catch_slot(v, T, h - x - 1)) BAD("LOAD_VAR outside the frame's values");
          NEXT(2, h + 1);
        case VM_OP2_EXTENDED_4:
          switch (x) {
            case VM_OP4_START_TRY: {
              LEN(4);
              uint16_t handler = rd16(b, at + 2);
              uint16_t target = handler & 0xFFFE;
              /* The handler is pushed as a value (a pointer to a catch
               * block, which carries a continuation header like a resume
               * point): it must be one. */
              if ((handler & 3) != 1 || !continuation_header_ok(v, fn, target)) BAD("START_TRY handler");
              if (h + 2 > 255) BAD("stack too deep");
              uint16_t inner = try_node(v, T, (uint8_t)h, handler);
              if (!inner) BAD("too many try blocks");
              if (!reach(v, fn, target, h + 1, T, IS_CATCH_ENTRY)) return false;
              return reach(v, fn, at + 4, h + 2, inner, 0);
            }
            case VM_OP4_END_TRY:
              if (!T || v->tries[T].handler == 0) BAD("END_TRY outside a try block");
              return reach(v, fn, at + 2, v->tries[T].base, v->tries[T].parent, 0);
            case VM_OP4_OBJECT_KEYS: case VM_OP4_UINT8_ARRAY_NEW: case VM_OP4_TYPE_CODE_OF:
              NEED(1); NEXT(2, h);
            case VM_OP4_CLASS_CREATE: NEED(2); NEXT(2, h - 1);
            case VM_OP4_LOAD_REG_CLOSURE: case VM_OP4_SCOPE_SAVE: NEXT(2, h + 1);
            case VM_OP4_SCOPE_PUSH:
              LEN(3);
              if (b[at + 2] == 0) BAD("a scope of no slots");
              NEXT(3, h);
            case VM_OP4_SCOPE_POP: case VM_OP4_ENQUEUE_JOB: NEXT(2, h);
            case VM_OP4_ASYNC_START: {
              LEN(3);
              /* It sets up frame slots 0-2 (result, async catch target) and
               * writes slot 1 of a new closure. */
              if (h != 0 || T) BAD("ASYNC_START not at the start of a frame");
              if ((b[at + 2] & 0x7F) < 2) BAD("ASYNC_START closure too small");
              if (!v->async_catch) BAD("ASYNC_START without the async catch block");
              uint16_t root = try_node(v, 0, 1, 0);
              if (!root) BAD("too many try blocks");
              return reach(v, fn, at + 3, 3, root, 0);
            }
            case VM_OP4_ASYNC_RETURN:
              NEED(1);
              if (!async_rooted(v, T) || h < 4) BAD("ASYNC_RETURN outside an async frame");
              return true;
            case VM_OP4_ASYNC_COMPLETE:
              /* Pops isSuccess and the result, returns frame slot 0. */
              if (h != 3 || T) BAD("ASYNC_COMPLETE with the wrong frame");
              return true;
            default: BAD("unknown Ex4 opcode");
          }
        default: BAD("reserved Ex2 opcode");
      }
    }

    case VM_OP_EXTENDED_3: {
      uint16_t x = 0;
      if (p >= VM_OP3_DIVIDER_1) { LEN(3); x = rd16(b, at + 1); }
      switch (p) {
        case VM_OP3_POP_N: {
          LEN(2);
          NEED(b[at + 1]);
          NEXT(2, h - b[at + 1]);
        }
        case VM_OP3_SCOPE_DISCARD: case VM_OP3_SCOPE_CLONE: NEXT(1, h);
        case VM_OP3_AWAIT: {
          /* Saves frame slots 3.. into the closure, unwinds the async catch
           * target at slot 1, returns; the function resumes by a call to
           * the resume point after it, which restores the same stack. */
          NEED(1);
          if (!async_rooted(v, T) || h < 4) BAD("AWAIT outside an async frame");
          uint32_t r = (at + 1 + 2 + 3) & ~3u;
          if (r + 3 > rom_end || !continuation_header_ok(v, fn, r) || b[r] != V_ASYNC_RESUME_BYTE) {
            BAD("AWAIT without its resume point");
          }
          int saved = h - 1 - 3;
          int innermost = v->tries[T].base;
          if (b[r + 1] != saved || b[r + 2] != (h - 1) - innermost) BAD("ASYNC_RESUME does not restore the stack of its AWAIT");
          if (!reach(v, fn, r, h, T, IS_RESUME_ENTRY)) return false;
          return add_resume_point(v, (uint16_t)r, T);
        }
        case VM_OP3_AWAIT_CALL: {
          LEN(2);
          uint8_t argc = b[at + 1];
          if (argc > AF_ARG_COUNT_MASK || !call_count_ok(argc)) BAD("AWAIT_CALL argument count");
          NEED(argc + 1);
          NEXT(2, h - argc);
        }
        case VM_OP3_ASYNC_RESUME: BAD("ASYNC_RESUME that is not a resume point");
        case VM_OP3_JUMP_2: return reach(v, fn, at + 3 + (int16_t)x, h, T, 0);
        case VM_OP3_LOAD_LITERAL: {
          if (!check_value(v, x, WHERE("literal at 0x%04x", at), true)) return false;
          NEXT(3, h + 1);
        }
        case VM_OP3_LOAD_GLOBAL_3:
          if (x >= sec_size(v, BCS_GLOBALS) / 2) BAD("global index out of range");
          bit_set(v->global_used, x);
          NEXT(3, h + 1);
        case VM_OP3_LOAD_SCOPED_3: NEXT(3, h + 1);
        case VM_OP3_BRANCH_2:
          NEED(1);
          if (!reach(v, fn, at + 3 + (int16_t)x, h - 1, T, 0)) return false;
          NEXT(3, h - 1);
        case VM_OP3_STORE_GLOBAL_3:
          if (x >= sec_size(v, BCS_GLOBALS) / 2) BAD("global index out of range");
          bit_set(v->global_used, x);
          NEED(1);
          NEXT(3, h - 1);
        case VM_OP3_STORE_SCOPED_3: NEED(1); NEXT(3, h - 1);
        default: BAD("unsupported Ex3 opcode");
      }
    }
  }
  BAD("unknown opcode");
}

static bool verify_function(V* v, uint16_t entry) {
  uint16_t header = rd16(v->b, entry - 2);
  Fn fn = { entry, (uint8_t)(header & VM_FUNCTION_HEADER_STACK_HEIGHT_MASK) };
  bool async_catch = entry == v->async_catch;
  /* The async catch block runs in the frame of an async function that
   * threw: its result slot, then the exception. */
  if (!reach(v, &fn, entry, async_catch ? 2 : 0, 0, async_catch ? IS_ASYNC_CATCH : 0)) return false;
  while (v->work_count) {
    uint16_t at = v->work[--v->work_count];
    if (!step(v, &fn, at)) return false;
  }
  return true;
}

/* ---- Tables ------------------------------------------------------------------- */

static bool check_builtins(V* v) {
  uint32_t at = v->sec[BCS_BUILTINS];
  if (sec_size(v, BCS_BUILTINS) != BIN_BUILTIN_COUNT * 2) return vfail("the builtins section has the wrong size");
  for (int i = 0; i < BIN_BUILTIN_COUNT; i++) {
    uint16_t value = rd16(v->b, at + 2 * i);
    if (i == BIN_INTERNED_STRINGS) continue;
    if (value == VM_VALUE_UNDEFINED) continue;
    if (i == BIN_ASYNC_CATCH_BLOCK) {
      if ((value & 3) != 1 || value < VM_VALUE_WELLKNOWN_END || !rom_alloc(v, value & 0xFFFC, false)) {
        return vfail("builtin %d: not a function", i);
      }
      continue;
    }
    if (!check_value(v, value, WHERE("builtin %u", i), true)) return false;
    int type = value_type(v, value);
    switch (i) {
      case BIN_ARRAY_PROTO: case BIN_PROMISE_PROTOTYPE:
        if (type != TC_REF_PROPERTY_LIST && value != VM_VALUE_NULL) return vfail("builtin %d: not an object", i);
        break;
      case BIN_STR_PROTOTYPE:
        if (type != TC_REF_INTERNED_STRING) return vfail("builtin %d: not an interned string", i);
        break;
      case BIN_ASYNC_CONTINUE: case BIN_ASYNC_HOST_CALLBACK:
        if (type != TC_REF_FUNCTION) return vfail("builtin %d: not a function", i);
        break;
      default: break;
    }
  }
  return true;
}

/* BIN_INTERNED_STRINGS: the engine writes it (setBuiltin), so it must be a
 * handle to a global (else the write lands in the snapshot's ROM). */
static bool check_intern_builtin(V* v) {
  uint16_t value = rd16(v->b, v->sec[BCS_BUILTINS] + 2 * BIN_INTERNED_STRINGS);
  uint16_t offset = value & 0xFFFC;
  if ((value & 3) != 1 || value < VM_VALUE_WELLKNOWN_END ||
      offset < v->sec[BCS_GLOBALS] || offset >= sec_end(v, BCS_GLOBALS)) {
    return vfail("the interned-strings builtin is not a handle");
  }
  uint16_t slot = (offset - v->sec[BCS_GLOBALS]) / 2;
  v->intern_handle = slot + 1;
  bit_set(v->global_handle, slot);
  return check_intern_list(v, rd16(v->b, offset));
}

static bool check_tables(V* v) {
  /* Exports. */
  for (uint32_t at = v->sec[BCS_EXPORT_TABLE]; at < sec_end(v, BCS_EXPORT_TABLE); at += 4) {
    if (!check_value(v, rd16(v->b, at + 2), WHERE("export %u", rd16(v->b, at)), true)) return false;
  }
  /* Globals (handles are checked as values point to them). */
  for (uint32_t at = v->sec[BCS_GLOBALS]; at < sec_end(v, BCS_GLOBALS); at += 2) {
    uint16_t slot = (at - v->sec[BCS_GLOBALS]) / 2;
    if (v->intern_handle && slot == v->intern_handle - 1) continue;
    if (!check_value(v, rd16(v->b, at), WHERE("global %u", slot), false)) return false;
  }
  /* The string table: strings in ROM, which toInternedString reads
   * without checks (the compiler lists index-like strings such as '2' there
   * too, as plain strings). */
  for (uint32_t at = v->sec[BCS_STRING_TABLE]; at < sec_end(v, BCS_STRING_TABLE); at += 2) {
    uint16_t value = rd16(v->b, at);
    uint16_t type = 0;
    if ((value & 3) == 1 && value >= VM_VALUE_WELLKNOWN_END && (value & 0xFFFC) >= v->sec[BCS_ROM] &&
        (value & 0xFFFC) < sec_end(v, BCS_ROM) && rom_alloc(v, value & 0xFFFC, true)) {
      type = hdr_type(rd16(v->b, (value & 0xFFFC) - 2));
    }
    if (type != TC_REF_INTERNED_STRING && type != TC_REF_STRING) {
      return vfail("string table entry 0x%04x is not a string in ROM", value);
    }
  }
  /* The short-call table: {function (a host function's import index if
   * odd, else a bytecode offset * 2), argument count}. */
  for (uint16_t i = 0; i < v->short_call_count; i++) {
    uint32_t at = v->sec[BCS_SHORT_CALL_TABLE] + i * 3;
    uint16_t target = (uint16_t)(v->b[at] | (v->b[at + 1] << 8));
    uint8_t argc = v->b[at + 2];
    if (!call_count_ok(argc)) return vfail("short call %u: no this argument", i);
    if (target & 1) {
      if (target >= v->import_count) return vfail("short call %u: import index out of range", i);
    } else if (!queue_function(v, target >> 1, true)) {
      return vfail("short call %u: %s", i, verifier_detail);
    }
  }
  return true;
}

/* Every continuation-headed value is a resume point or a catch block of a
 * verified function (its back pointer was followed to queue it). */
static bool check_continuations(V* v) {
  for (uint32_t i = 0; i < v->cont_count; i++) {
    uint16_t offset = v->conts[i];
    const InsnState* s = &v->rom[offset - v->sec[BCS_ROM]];
    uint16_t h = rd16(v->b, offset - 2);
    uint16_t entry = (uint16_t)(offset - (h & VM_FUNCTION_HEADER_BACK_POINTER_MASK) * 4);
    if (!(s->flags & (IS_RESUME_ENTRY | IS_CATCH_ENTRY)) || s->owner != entry) {
      return vfail("0x%04x is neither a resume point nor a catch block of function 0x%04x", offset, entry);
    }
  }
  /* The async catch block is entered only by a throw. */
  if (v->async_catch) {
    const InsnState* s = &v->rom[v->async_catch - v->sec[BCS_ROM]];
    if (!(s->flags & IS_ASYNC_CATCH)) return vfail("the async catch block is also a function");
  }
  /* Handles are read through, never assigned by bytecode. */
  for (uint32_t i = 0; i < sec_size(v, BCS_GLOBALS) / 2; i++) {
    if (bit_get(v->global_handle, i) && bit_get(v->global_used, i)) {
      return vfail("global %u is a handle but bytecode reads or writes it", i);
    }
  }
  return true;
}

static int cmp_resume(const void* a, const void* b) {
  return (int)((const ResumePoint*)a)->offset - (int)((const ResumePoint*)b)->offset;
}

static bool verify(V* v) {
  const uint8_t* b = v->b;
  for (int i = 0; i < BCS_SECTION_COUNT; i++) v->sec[i] = rd16(b, 12 + 2 * i);
  v->sec[BCS_SECTION_COUNT] = v->size;
  if (sec_size(v, BCS_IMPORT_TABLE) % 2) return vfail("malformed import table");
  if (sec_size(v, BCS_SHORT_CALL_TABLE) % 3) return vfail("malformed short-call table");
  if (sec_size(v, BCS_STRING_TABLE) % 2 || sec_size(v, BCS_GLOBALS) % 2 || sec_size(v, BCS_HEAP) % 2) {
    return vfail("a section of odd size");
  }
  v->import_count = (uint16_t)(sec_size(v, BCS_IMPORT_TABLE) / 2);
  v->short_call_count = (uint16_t)(sec_size(v, BCS_SHORT_CALL_TABLE) / 3);
  if (sec_size(v, BCS_HEAP) > MVM_MAX_HEAP_SIZE) return vfail("the heap is larger than the engine's");

  uint32_t globals = sec_size(v, BCS_GLOBALS) / 2;
  v->heap_start = (uint8_t*)calloc(sec_size(v, BCS_HEAP) / 16 + 1, 1);
  v->heap_owned = (uint8_t*)calloc(sec_size(v, BCS_HEAP) / 16 + 1, 1);
  v->global_handle = (uint8_t*)calloc(globals / 8 + 1, 1);
  v->global_used = (uint8_t*)calloc(globals / 8 + 1, 1);
  v->rom = (InsnState*)calloc(sec_size(v, BCS_ROM) + 1, sizeof(InsnState));
  if (!v->heap_start || !v->heap_owned || !v->global_handle || !v->global_used || !v->rom) {
    return vfail("out of memory");
  }
  v->tries = (TryNode*)calloc(16, sizeof(TryNode));
  if (!v->tries) return vfail("out of memory");
  v->try_cap = 16;
  v->try_count = 1;

  /* The async catch block first: values must not point to it. */
  if (sec_size(v, BCS_BUILTINS) != BIN_BUILTIN_COUNT * 2) return vfail("the builtins section has the wrong size");
  uint16_t ac = rd16(b, v->sec[BCS_BUILTINS] + 2 * BIN_ASYNC_CATCH_BLOCK);
  if (ac != VM_VALUE_UNDEFINED) v->async_catch = ac & 0xFFFC;

  if (!parse_heap(v)) return false;
  if (!check_intern_builtin(v)) return false;
  if (!check_builtins(v)) return false;
  if (!check_heap(v)) return false;
  uint8_t* mark = (uint8_t*)malloc(sec_size(v, BCS_HEAP) / 2 + 1);
  if (!mark) return vfail("out of memory");
  bool chains = chains_end(v, mark, false) && chains_end(v, mark, true);
  free(mark);
  if (!chains) return false;
  if (!check_tables(v)) return false;
  /* Functions and ROM containers lead to more of each. */
  uint32_t f = 0;
  while (f < v->func_count || v->rc_done < v->rc_count) {
    if (f < v->func_count) {
      if (!verify_function(v, v->funcs[f++])) return false;
    } else {
      uint16_t offset = v->rom_containers[v->rc_done++];
      uint16_t size = hdr_size(rd16(b, offset - 2));
      for (uint32_t i = 0; i < size; i += 2) {
        if (!check_value(v, rd16(b, offset + i), WHERE("ROM allocation 0x%04x", offset), true)) return false;
      }
    }
  }
  if (!check_continuations(v)) return false;
  if (!class_chains_end(v)) return false;
  if (v->resume_count) qsort(v->resumes, v->resume_count, sizeof v->resumes[0], cmp_resume);
  return true;
}

int verifier_verify(const uint8_t* bytes, size_t size, void* (*alloc)(void* ctx, size_t size),
                    void* alloc_ctx, VerifierResult** out, const char** detail) {
  *out = NULL;
  /* The engine checks the CRC itself, next. */
  int err = verifier_check_header(bytes, size, false, detail);
  if (err) {
    snprintf(verifier_detail, verifier_detail_size, "%s", *detail);
    *detail = verifier_detail;
    return err;
  }
  V* v = (V*)calloc(1, sizeof(V));
  if (!v) { *detail = "out of memory"; return MVM_E_MALLOC_FAIL; }
  v->b = bytes;
  v->size = (uint32_t)size;
  verifier_detail[0] = 0;
  bool ok = verify(v);
  if (ok && v->resume_count) {
    size_t n = sizeof(VerifierResult) + v->resume_count * sizeof(ResumePoint) + v->rslot_count * sizeof(ResumeSlot);
    VerifierResult* r = (VerifierResult*)alloc(alloc_ctx, n);
    if (!r) {
      ok = vfail("out of memory");
    } else {
      r->resume_count = (uint16_t)v->resume_count;
      r->slot_count = (uint16_t)v->rslot_count;
      r->resumes = (ResumePoint*)(r + 1);
      r->slots = (ResumeSlot*)(r->resumes + v->resume_count);
      memcpy(r->resumes, v->resumes, v->resume_count * sizeof(ResumePoint));
      if (v->rslot_count) memcpy(r->slots, v->rslots, v->rslot_count * sizeof(ResumeSlot));
      *out = r;
    }
  }
  free(v->heap_start); free(v->heap_owned); free(v->global_handle); free(v->global_used);
  free(v->rom); free(v->work); free(v->funcs); free(v->conts); free(v->rslots); free(v->rom_containers);
  free(v->tries); free(v->resumes);
  free(v);
  *detail = verifier_detail;
  return ok ? 0 : MVM_E_INVALID_BYTECODE;
}

/* At VM_OP3_ASYNC_RESUME (c/bytecode_checks.h): the catch targets that
 * `closure` (its payload) holds for resume point `offset` are those its
 * AWAIT saved. A resume point the verifier did not see is rejected. */
static bool verifier_check_resume(const VerifierResult* r, uint16_t offset, const uint16_t* closure,
                                  uint16_t closure_slots) {
  if (!r) return false;
  size_t lo = 0, hi = r->resume_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r->resumes[mid].offset < offset) lo = mid + 1; else hi = mid;
  }
  if (lo == r->resume_count || r->resumes[lo].offset != offset) return false;
  const ResumePoint* p = &r->resumes[lo];
  for (uint16_t i = 0; i < p->count; i++) {
    const ResumeSlot* s = &r->slots[p->first + i];
    if (s->index >= closure_slots || closure[s->index] != s->value) return false;
  }
  return true;
}
