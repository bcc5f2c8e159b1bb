#include "format/pickle.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep a hostile pickle from exhausting memory: state dicts
 * need a few entries of stack, a handful of nested marks and one memo slot
 * per object. */
#define MAX_STACK_DEPTH ((size_t)1 << 20)
#define MAX_MARK_DEPTH ((size_t)4096)
#define MAX_MEMO_INDEX ((size_t)1 << 20)
#define MAX_GLOBAL_PART 256
#define MAX_BIGINT_BYTES 1024

typedef struct vm {
    ww_pickle_heap *heap;
    const ww_pickle_options *options;
    const char *name;
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t op_pos; /* offset of the opcode being executed */
    uint8_t op;
    ww_pickle_value **stack;
    size_t stack_len, stack_cap;
    size_t *marks; /* stack lengths at each MARK */
    size_t mark_len, mark_cap;
    ww_pickle_value **memo; /* NULL = unset slot */
    size_t memo_cap, memo_count;
    wanwu_error *err;
} vm;

const char *ww_pickle_kind_name(ww_pickle_kind kind)
{
    switch (kind) {
    case WW_PICKLE_NONE: return "None";
    case WW_PICKLE_BOOL: return "bool";
    case WW_PICKLE_INT: return "int";
    case WW_PICKLE_BIGINT: return "int";
    case WW_PICKLE_FLOAT: return "float";
    case WW_PICKLE_STR: return "str";
    case WW_PICKLE_BYTES: return "bytes";
    case WW_PICKLE_TUPLE: return "tuple";
    case WW_PICKLE_LIST: return "list";
    case WW_PICKLE_DICT: return "dict";
    case WW_PICKLE_GLOBAL: return "global";
    case WW_PICKLE_CALL: return "object";
    case WW_PICKLE_PERSID: return "persistent id";
    }
    return "unknown";
}

static wanwu_status vm_fail(vm *m, wanwu_status status, const char *fmt, ...) WW_PRINTF(3, 4);

static wanwu_status vm_fail(vm *m, wanwu_status status, const char *fmt, ...)
{
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ww_error_set(m->err, status, "%s: byte %zu (pickle opcode 0x%02x): %s", m->name,
                 m->options->base_offset + m->op_pos, m->op, detail);
    return status; /* returned directly so the compiler sees it is never OK */
}

static wanwu_status vm_truncated(vm *m)
{
    ww_error_set(m->err, WANWU_ERR_FORMAT, "%s: pickle truncated at byte %zu", m->name,
                 m->options->base_offset + m->size);
    return WANWU_ERR_FORMAT;
}

static wanwu_status vm_no_memory(vm *m)
{
    return ww_error_set(m->err, WANWU_ERR_NO_MEMORY, "%s: out of memory while unpickling", m->name);
}

/* ---- input ----------------------------------------------------------- */

static wanwu_status read_bytes(vm *m, size_t n, const uint8_t **out)
{
    if (m->size - m->pos < n) return vm_truncated(m);
    *out = m->data + m->pos;
    m->pos += n;
    return WANWU_OK;
}

static uint64_t le_uint(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static wanwu_status read_le(vm *m, size_t n, uint64_t *out)
{
    const uint8_t *p = NULL;
    wanwu_status st = read_bytes(m, n, &p);
    if (st == WANWU_OK) *out = le_uint(p, n);
    return st;
}

/* ---- values ---------------------------------------------------------- */

static ww_pickle_value *new_value(vm *m, ww_pickle_kind kind)
{
    ww_pickle_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    v->next_allocated = m->heap->allocated;
    m->heap->allocated = v;
    m->heap->value_count++;
    return v;
}

static ww_pickle_value *new_bytes_value(vm *m, ww_pickle_kind kind, const void *bytes, size_t len)
{
    if (len == SIZE_MAX) return NULL;
    char *copy = malloc(len + 1);
    if (!copy) return NULL;
    if (len) memcpy(copy, bytes, len);
    copy[len] = '\0';
    ww_pickle_value *v = new_value(m, kind);
    if (!v) {
        free(copy);
        return NULL;
    }
    v->as.bytes.ptr = copy;
    v->as.bytes.len = len;
    return v;
}

static int seq_reserve(ww_pickle_value *v, size_t extra)
{
    size_t need = v->as.seq.count + extra;
    if (need < v->as.seq.count) return 0;
    if (need <= v->as.seq.capacity) return 1;
    size_t cap = v->as.seq.capacity ? v->as.seq.capacity : 4;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(ww_pickle_value *)) return 0;
        cap *= 2;
    }
    ww_pickle_value **items = realloc(v->as.seq.items, cap * sizeof *items);
    if (!items) return 0;
    v->as.seq.items = items;
    v->as.seq.capacity = cap;
    return 1;
}

static int seq_append(ww_pickle_value *v, ww_pickle_value *const *items, size_t n)
{
    if (n == 0) return 1;
    if (!seq_reserve(v, n)) return 0;
    memcpy(v->as.seq.items + v->as.seq.count, items, n * sizeof *items);
    v->as.seq.count += n;
    return 1;
}

void ww_pickle_heap_free(ww_pickle_heap *heap)
{
    if (!heap) return;
    ww_pickle_value *v = heap->allocated;
    while (v) {
        ww_pickle_value *next = v->next_allocated;
        switch (v->kind) {
        case WW_PICKLE_STR:
        case WW_PICKLE_BYTES:
        case WW_PICKLE_BIGINT:
        case WW_PICKLE_GLOBAL: free(v->as.bytes.ptr); break;
        case WW_PICKLE_TUPLE:
        case WW_PICKLE_LIST:
        case WW_PICKLE_DICT: free(v->as.seq.items); break;
        default: break;
        }
        free(v);
        v = next;
    }
    heap->allocated = NULL;
    heap->value_count = 0;
}

/* ---- stack, marks, memo ---------------------------------------------- */

static size_t stack_floor(const vm *m)
{
    return m->mark_len ? m->marks[m->mark_len - 1] : 0;
}

static wanwu_status push(vm *m, ww_pickle_value *v)
{
    if (!v) return vm_no_memory(m);
    if (m->stack_len == m->stack_cap) {
        if (m->stack_cap >= MAX_STACK_DEPTH)
            return vm_fail(m, WANWU_ERR_LIMIT, "pickle stack deeper than %zu", MAX_STACK_DEPTH);
        size_t cap = m->stack_cap ? m->stack_cap * 2 : 64;
        ww_pickle_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return vm_no_memory(m);
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->stack_len++] = v;
    return WANWU_OK;
}

/* Pops one value from above the innermost mark. */
static wanwu_status pop(vm *m, ww_pickle_value **out)
{
    if (m->stack_len <= stack_floor(m)) return vm_fail(m, WANWU_ERR_FORMAT, "stack underflow");
    *out = m->stack[--m->stack_len];
    return WANWU_OK;
}

static wanwu_status top(vm *m, ww_pickle_value **out)
{
    if (m->stack_len <= stack_floor(m)) return vm_fail(m, WANWU_ERR_FORMAT, "stack is empty");
    *out = m->stack[m->stack_len - 1];
    return WANWU_OK;
}

static wanwu_status push_mark(vm *m)
{
    if (m->mark_len == m->mark_cap) {
        if (m->mark_cap >= MAX_MARK_DEPTH)
            return vm_fail(m, WANWU_ERR_LIMIT, "more than %zu nested marks", MAX_MARK_DEPTH);
        size_t cap = m->mark_cap ? m->mark_cap * 2 : 16;
        size_t *marks = realloc(m->marks, cap * sizeof *marks);
        if (!marks) return vm_no_memory(m);
        m->marks = marks;
        m->mark_cap = cap;
    }
    m->marks[m->mark_len++] = m->stack_len;
    return WANWU_OK;
}

/* Removes the innermost mark; the values above it stay on the stack at
 * [*first, stack_len) for the caller to consume. */
static wanwu_status pop_mark(vm *m, size_t *first)
{
    if (m->mark_len == 0) return vm_fail(m, WANWU_ERR_FORMAT, "no MARK on the stack");
    *first = m->marks[--m->mark_len];
    return WANWU_OK;
}

static wanwu_status memo_put(vm *m, uint64_t index)
{
    ww_pickle_value *v;
    wanwu_status st = top(m, &v);
    if (st != WANWU_OK) return st;
    if (index >= MAX_MEMO_INDEX)
        return vm_fail(m, WANWU_ERR_LIMIT, "memo index %llu exceeds the limit of %zu",
                       (unsigned long long)index, MAX_MEMO_INDEX);
    if (index >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= index)
            cap *= 2;
        ww_pickle_value **memo = realloc(m->memo, cap * sizeof *memo);
        if (!memo) return vm_no_memory(m);
        memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
        m->memo = memo;
        m->memo_cap = cap;
    }
    if (!m->memo[index]) m->memo_count++;
    m->memo[index] = v;
    return WANWU_OK;
}

static wanwu_status memo_get(vm *m, uint64_t index)
{
    if (index >= m->memo_cap || !m->memo[index])
        return vm_fail(m, WANWU_ERR_FORMAT, "memo entry %llu was never stored",
                       (unsigned long long)index);
    return push(m, m->memo[index]);
}

/* ---- opcodes --------------------------------------------------------- */

static wanwu_status op_int(vm *m, size_t width, int is_signed)
{
    uint64_t raw;
    wanwu_status st = read_le(m, width, &raw);
    if (st != WANWU_OK) return st;
    ww_pickle_value *v = new_value(m, WW_PICKLE_INT);
    if (v) v->as.integer = is_signed ? (int64_t)(int32_t)(uint32_t)raw : (int64_t)raw;
    return push(m, v);
}

static wanwu_status op_long(vm *m, size_t len_width)
{
    uint64_t n;
    const uint8_t *p = NULL;
    wanwu_status st = read_le(m, len_width, &n);
    if (st != WANWU_OK) return st;
    if (n > MAX_BIGINT_BYTES)
        return vm_fail(m, WANWU_ERR_UNSUPPORTED, "integer of %llu bytes is too large",
                       (unsigned long long)n);
    if ((st = read_bytes(m, (size_t)n, &p)) != WANWU_OK) return st;
    if (n > 8) return push(m, new_bytes_value(m, WW_PICKLE_BIGINT, p, (size_t)n));
    uint64_t raw = le_uint(p, (size_t)n);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) raw |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    ww_pickle_value *v = new_value(m, WW_PICKLE_INT);
    if (v) v->as.integer = (int64_t)raw;
    return push(m, v);
}

static wanwu_status op_float(vm *m)
{
    const uint8_t *p = NULL;
    wanwu_status st = read_bytes(m, 8, &p);
    if (st != WANWU_OK) return st;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | p[i]; /* big-endian */
    ww_pickle_value *v = new_value(m, WW_PICKLE_FLOAT);
    if (v) memcpy(&v->as.real, &bits, sizeof bits);
    return push(m, v);
}

static wanwu_status op_string(vm *m, size_t len_width, ww_pickle_kind kind)
{
    uint64_t n;
    const uint8_t *p = NULL;
    wanwu_status st = read_le(m, len_width, &n);
    if (st != WANWU_OK) return st;
    if (n > m->size - m->pos) return vm_truncated(m);
    if ((st = read_bytes(m, (size_t)n, &p)) != WANWU_OK) return st;
    return push(m, new_bytes_value(m, kind, p, (size_t)n));
}

static wanwu_status op_tuple_n(vm *m, size_t n)
{
    if (m->stack_len - stack_floor(m) < n) return vm_fail(m, WANWU_ERR_FORMAT, "stack underflow");
    ww_pickle_value *t = new_value(m, WW_PICKLE_TUPLE);
    if (!t) return vm_no_memory(m);
    m->stack_len -= n;
    if (!seq_append(t, m->stack + m->stack_len, n)) return vm_no_memory(m);
    return push(m, t);
}

static wanwu_status op_tuple_mark(vm *m)
{
    size_t first = 0;
    wanwu_status st = pop_mark(m, &first);
    if (st != WANWU_OK) return st;
    ww_pickle_value *t = new_value(m, WW_PICKLE_TUPLE);
    if (!t) return vm_no_memory(m);
    if (!seq_append(t, m->stack + first, m->stack_len - first)) return vm_no_memory(m);
    m->stack_len = first;
    return push(m, t);
}

/* APPEND(S) and SETITEM(S): values [first, stack_len) go into the container
 * just below them. */
static wanwu_status fill_container(vm *m, size_t first, ww_pickle_kind kind)
{
    size_t n = m->stack_len - first;
    if (first == 0 || first - 1 < stack_floor(m))
        return vm_fail(m, WANWU_ERR_FORMAT, "no container below the items");
    ww_pickle_value *target = m->stack[first - 1];
    if (target->kind != kind)
        return vm_fail(m, WANWU_ERR_FORMAT, "cannot add items to a %s",
                       ww_pickle_kind_name(target->kind));
    if (kind == WW_PICKLE_DICT && n % 2 != 0)
        return vm_fail(m, WANWU_ERR_FORMAT, "odd number of items for a dict");
    if (!seq_append(target, m->stack + first, n)) return vm_no_memory(m);
    m->stack_len = first;
    return WANWU_OK;
}

static wanwu_status op_fill(vm *m, size_t n, int from_mark, ww_pickle_kind kind)
{
    size_t first = 0;
    if (from_mark) {
        wanwu_status st = pop_mark(m, &first);
        if (st != WANWU_OK) return st;
    } else {
        if (m->stack_len - stack_floor(m) < n)
            return vm_fail(m, WANWU_ERR_FORMAT, "stack underflow");
        first = m->stack_len - n;
    }
    return fill_container(m, first, kind);
}

static int printable_name(const uint8_t *s, size_t len)
{
    if (len == 0 || len > MAX_GLOBAL_PART) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return 0;
    return 1;
}

static wanwu_status push_global(vm *m, const uint8_t *module, size_t module_len,
                                const uint8_t *name, size_t name_len)
{
    if (!printable_name(module, module_len) || !printable_name(name, name_len)) {
        char shown[64];
        size_t n = module_len < sizeof shown - 1 ? module_len : sizeof shown - 1;
        for (size_t i = 0; i < n; i++)
            shown[i] = module[i] >= 0x20 && module[i] < 0x7f ? (char)module[i] : '?';
        shown[n] = '\0';
        return vm_fail(m, WANWU_ERR_FORMAT, "malformed global name (module '%s')", shown);
    }
    char qualified[2 * MAX_GLOBAL_PART + 2];
    memcpy(qualified, module, module_len);
    qualified[module_len] = '.';
    memcpy(qualified + module_len + 1, name, name_len);
    qualified[module_len + 1 + name_len] = '\0';
    int allowed = 0;
    for (const char *const *g = m->options->allowed_globals; g && *g; g++)
        if (strcmp(*g, qualified) == 0) allowed = 1;
    if (!allowed)
        return vm_fail(m, WANWU_ERR_UNSUPPORTED, "pickle references unsupported global '%s'",
                       qualified);
    return push(m, new_bytes_value(m, WW_PICKLE_GLOBAL, qualified, strlen(qualified)));
}

/* Reads one '\n'-terminated line of the text GLOBAL opcode. */
static wanwu_status read_line(vm *m, const uint8_t **line, size_t *len)
{
    const uint8_t *start = m->data + m->pos;
    const uint8_t *nl = memchr(start, '\n', m->size - m->pos);
    if (!nl) return vm_truncated(m);
    *line = start;
    *len = (size_t)(nl - start);
    m->pos += *len + 1;
    return WANWU_OK;
}

static wanwu_status op_global(vm *m)
{
    const uint8_t *module, *name;
    size_t module_len, name_len;
    wanwu_status st = read_line(m, &module, &module_len);
    if (st == WANWU_OK) st = read_line(m, &name, &name_len);
    if (st != WANWU_OK) return st;
    return push_global(m, module, module_len, name, name_len);
}

static wanwu_status op_stack_global(vm *m)
{
    ww_pickle_value *module, *name;
    wanwu_status st = pop(m, &name);
    if (st == WANWU_OK) st = pop(m, &module);
    if (st != WANWU_OK) return st;
    if (module->kind != WW_PICKLE_STR || name->kind != WW_PICKLE_STR)
        return vm_fail(m, WANWU_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return push_global(m, (const uint8_t *)module->as.bytes.ptr, module->as.bytes.len,
                       (const uint8_t *)name->as.bytes.ptr, name->as.bytes.len);
}

/* REDUCE and NEWOBJ: record the call; OrderedDict() becomes a dict. */
static wanwu_status op_call(vm *m)
{
    ww_pickle_value *callable = NULL, *args = NULL;
    wanwu_status st = pop(m, &args);
    if (st == WANWU_OK) st = pop(m, &callable);
    if (st != WANWU_OK) return st;
    if (callable->kind != WW_PICKLE_GLOBAL)
        return vm_fail(m, WANWU_ERR_FORMAT, "calling a %s", ww_pickle_kind_name(callable->kind));
    if (args->kind != WW_PICKLE_TUPLE)
        return vm_fail(m, WANWU_ERR_FORMAT, "call arguments are a %s, not a tuple",
                       ww_pickle_kind_name(args->kind));
    if (ww_pickle_is_global(callable, "collections.OrderedDict")) {
        if (args->as.seq.count != 0)
            return vm_fail(m, WANWU_ERR_UNSUPPORTED, "OrderedDict built from arguments");
        return push(m, new_value(m, WW_PICKLE_DICT));
    }
    ww_pickle_value *v = new_value(m, WW_PICKLE_CALL);
    if (v) {
        v->as.call.callable = callable;
        v->as.call.args = args;
    }
    return push(m, v);
}

static wanwu_status op_build(vm *m)
{
    ww_pickle_value *state, *target;
    wanwu_status st = pop(m, &state);
    if (st == WANWU_OK) st = top(m, &target);
    if (st != WANWU_OK) return st;
    /* A state dict's OrderedDict carries `_metadata` (module versions): not needed. */
    if (target->kind == WW_PICKLE_DICT) return WANWU_OK;
    if (target->kind != WW_PICKLE_CALL)
        return vm_fail(m, WANWU_ERR_FORMAT, "BUILD on a %s", ww_pickle_kind_name(target->kind));
    target->as.call.state = state;
    return WANWU_OK;
}

static wanwu_status op_persid(vm *m)
{
    ww_pickle_value *id;
    wanwu_status st = pop(m, &id);
    if (st != WANWU_OK) return st;
    if (!m->options->persistent_load)
        return vm_fail(m, WANWU_ERR_FORMAT, "unexpected persistent id");
    int64_t tag = 0;
    st = m->options->persistent_load(m->options->persistent_load_ctx, id, &tag, m->err);
    if (st != WANWU_OK) {
        char context[160];
        snprintf(context, sizeof context, "%s: byte %zu: ", m->name,
                 m->options->base_offset + m->op_pos);
        return ww_error_prefix(m->err, "%s", context);
    }
    ww_pickle_value *v = new_value(m, WW_PICKLE_PERSID);
    if (v) {
        v->as.persid.id = id;
        v->as.persid.tag = tag;
    }
    return push(m, v);
}

static int is_known_unimplemented(uint8_t op)
{
    /* Valid pickle opcodes that torch.save state dicts never use. */
    static const char names[] = "IFLSVPpgilodT\x82\x83\x84\x8f\x90\x91\x92\x96\x97\x98";
    return op != 0 && memchr(names, op, sizeof names - 1) != NULL;
}

static wanwu_status step(vm *m, int *stopped)
{
    uint64_t arg;
    ww_pickle_value *v;
    size_t first = 0;
    wanwu_status st;
    switch (m->op) {
    case 0x80: /* PROTO */
        if ((st = read_le(m, 1, &arg)) != WANWU_OK) return st;
        if (arg < 2 || arg > 5)
            return vm_fail(m, WANWU_ERR_UNSUPPORTED, "pickle protocol %llu (supported: 2 to 5)",
                           (unsigned long long)arg);
        return WANWU_OK;
    case 0x95: /* FRAME: only a read-ahead hint */
        if ((st = read_le(m, 8, &arg)) != WANWU_OK) return st;
        if (arg > m->size - m->pos) return vm_truncated(m);
        return WANWU_OK;
    case '.': /* STOP */
        if (m->stack_len == 0) return vm_fail(m, WANWU_ERR_FORMAT, "STOP with an empty stack");
        *stopped = 1;
        return WANWU_OK;
    case '(': return push_mark(m);
    case '0': /* POP: a value, or the innermost mark if nothing is above it */
        if (m->mark_len && m->stack_len == stack_floor(m)) return pop_mark(m, &first);
        return pop(m, &v);
    case '1': /* POP_MARK */
        if ((st = pop_mark(m, &first)) != WANWU_OK) return st;
        m->stack_len = first;
        return WANWU_OK;
    case '2': /* DUP */
        if ((st = top(m, &v)) != WANWU_OK) return st;
        return push(m, v);
    case 'N': return push(m, new_value(m, WW_PICKLE_NONE));
    case 0x88:
    case 0x89:
        v = new_value(m, WW_PICKLE_BOOL);
        if (v) v->as.integer = m->op == 0x88;
        return push(m, v);
    case 'J': return op_int(m, 4, 1);
    case 'K': return op_int(m, 1, 0);
    case 'M': return op_int(m, 2, 0);
    case 0x8a: return op_long(m, 1);
    case 0x8b: return op_long(m, 4);
    case 'G': return op_float(m);
    case 'X': return op_string(m, 4, WW_PICKLE_STR);
    case 0x8c: return op_string(m, 1, WW_PICKLE_STR);
    case 0x8d: return op_string(m, 8, WW_PICKLE_STR);
    case 'B': return op_string(m, 4, WW_PICKLE_BYTES);
    case 'C': return op_string(m, 1, WW_PICKLE_BYTES);
    case 0x8e: return op_string(m, 8, WW_PICKLE_BYTES);
    case 'U': return op_string(m, 1, WW_PICKLE_STR); /* SHORT_BINSTRING */
    case ')': return op_tuple_n(m, 0);
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case 't': return op_tuple_mark(m);
    case ']': return push(m, new_value(m, WW_PICKLE_LIST));
    case 'a': return op_fill(m, 1, 0, WW_PICKLE_LIST);
    case 'e': return op_fill(m, 0, 1, WW_PICKLE_LIST);
    case '}': return push(m, new_value(m, WW_PICKLE_DICT));
    case 's': return op_fill(m, 2, 0, WW_PICKLE_DICT);
    case 'u': return op_fill(m, 0, 1, WW_PICKLE_DICT);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R':
    case 0x81: return op_call(m);
    case 'b': return op_build(m);
    case 'q':
        if ((st = read_le(m, 1, &arg)) != WANWU_OK) return st;
        return memo_put(m, arg);
    case 'r':
        if ((st = read_le(m, 4, &arg)) != WANWU_OK) return st;
        return memo_put(m, arg);
    case 0x94: return memo_put(m, m->memo_count);
    case 'h':
        if ((st = read_le(m, 1, &arg)) != WANWU_OK) return st;
        return memo_get(m, arg);
    case 'j':
        if ((st = read_le(m, 4, &arg)) != WANWU_OK) return st;
        return memo_get(m, arg);
    case 'Q': return op_persid(m);
    default:
        if (is_known_unimplemented(m->op))
            return vm_fail(m, WANWU_ERR_UNSUPPORTED, "opcode not supported by this reader");
        return vm_fail(m, WANWU_ERR_FORMAT, "invalid pickle opcode");
    }
}

wanwu_status ww_pickle_load(ww_pickle_heap *heap, const uint8_t *data, size_t size,
                            const ww_pickle_options *options, ww_pickle_value **result,
                            size_t *consumed, wanwu_error *err)
{
    vm m = {0};
    m.heap = heap;
    m.options = options;
    m.name = options->name ? options->name : "pickle";
    m.data = data;
    m.size = data ? size : 0;
    m.err = err;
    *result = NULL;
    *consumed = 0;

    wanwu_status st = WANWU_OK;
    int stopped = 0;
    while (!stopped) {
        if (m.pos >= m.size) {
            st = vm_truncated(&m);
            break;
        }
        m.op_pos = m.pos;
        m.op = m.data[m.pos++];
        if ((st = step(&m, &stopped)) != WANWU_OK) break;
    }
    if (st == WANWU_OK) {
        *result = m.stack[m.stack_len - 1];
        *consumed = m.pos;
    }
    free(m.stack);
    free(m.marks);
    free(m.memo);
    return st;
}

int ww_pickle_is_str(const ww_pickle_value *v, const char *text)
{
    return v && v->kind == WW_PICKLE_STR && strlen(text) == v->as.bytes.len &&
           memcmp(v->as.bytes.ptr, text, v->as.bytes.len) == 0;
}

int ww_pickle_is_global(const ww_pickle_value *v, const char *qualified_name)
{
    return v && v->kind == WW_PICKLE_GLOBAL && strcmp(v->as.bytes.ptr, qualified_name) == 0;
}

const ww_pickle_value *ww_pickle_dict_get(const ww_pickle_value *dict, const char *key)
{
    if (!dict || dict->kind != WW_PICKLE_DICT) return NULL;
    const ww_pickle_value *found = NULL;
    for (size_t i = 0; i + 1 < dict->as.seq.count; i += 2)
        if (ww_pickle_is_str(dict->as.seq.items[i], key)) found = dict->as.seq.items[i + 1];
    return found;
}
