/* A DWARF CFI (.eh_frame) unwinder for x86-64 user stacks copied by a BPF
 * program (profile_dwarf.bpf.c): turns the registers and the top of the stack
 * of each sample into the return addresses of its frames, leaf first.
 *
 * Everything it reads is untrusted: the sections come from files mapped by
 * the profiled process, the stack and registers from that process. Every read
 * is bounds-checked, CFA programs and DWARF expressions run for a bounded
 * number of steps without branches, the state stack has a fixed depth, and
 * memory is read only from the copied stack (never through a pointer it
 * holds). Nothing is allocated.
 */
#include <stdint.h>
#include <string.h>

#define UW_NREGS 17 /* rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip */
#define UW_RSP 7
#define UW_RBP 6
#define UW_RIP 16
#define UW_MAX_STATES 16 /* DW_CFA_remember_state depth */
#define UW_MAX_STEPS 100000 /* CFA instructions run per frame */
#define UW_EXPR_STACK 32

/* What pyprobe_uw_unwind reports in its flags word. */
#define UW_F_NO_MODULE 1u   /* an address fell outside every module known for the process */
#define UW_F_NO_CFI 2u      /* a module had no FDE for an address */
#define UW_F_BAD_CFI 4u     /* malformed or unsupported CFI */
#define UW_F_STACK_END 8u   /* a read fell outside the copied stack */
#define UW_F_MAX_FRAMES 16u /* stopped at max_frames */
#define UW_F_OUTERMOST 32u  /* reached a frame whose return address is undefined (_start, clone) */
#define UW_F_FP 64u         /* a frame was found by following rbp (no module: JIT code) */

struct pyprobe_uw_module {
    uint64_t start, end; /* the executable mapping's address range in the process */
    uint64_t bias;       /* address in the process - address in the ELF file (mod 2^64) */
    const uint8_t *eh_frame;
    uint64_t eh_frame_len, eh_frame_vaddr;
    const uint8_t *hdr; /* .eh_frame_hdr */
    uint64_t hdr_len, hdr_vaddr;
};

struct pyprobe_uw_proc {
    uint32_t pid;
    uint32_t nmods;
    const struct pyprobe_uw_module *mods; /* sorted by start, not overlapping */
};

/* ---- bounded readers ------------------------------------------------------ */

struct uw_cur {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t uw_u(struct uw_cur *c, unsigned n)
{
    uint64_t v = 0;

    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        c->p = c->end;
        return 0;
    }
    for (unsigned i = 0; i < n; i++) /* little endian */
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += n;
    return v;
}

static uint64_t uw_uleb(struct uw_cur *c)
{
    uint64_t v = 0;
    unsigned shift = 0;

    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            break;
        }
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
        if (shift > 70) { /* at most 10 bytes */
            c->bad = 1;
            break;
        }
    }
    return v;
}

static int64_t uw_sleb(struct uw_cur *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;

    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            return 0;
        }
        b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
        if (shift > 70) {
            c->bad = 1;
            return 0;
        }
    }
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

/* A DW_EH_PE_* encoded pointer at c->p; `vaddr` is the address c->p has in
 * the file (for pcrel), `datarel` the base of datarel (.eh_frame_hdr). */
static uint64_t uw_ptr(struct uw_cur *c, uint8_t enc, uint64_t vaddr, uint64_t datarel)
{
    uint64_t v, base = 0;

    if (enc == 0xff) /* DW_EH_PE_omit */
        return 0;
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: base = vaddr; break;   /* pcrel */
    case 0x30: base = datarel; break; /* datarel */
    default: c->bad = 1; return 0;    /* textrel, funcrel, aligned: not used on x86-64 */
    }
    switch (enc & 0x0f) {
    case 0x00: v = uw_u(c, 8); break; /* absptr */
    case 0x01: v = uw_uleb(c); break;
    case 0x02: v = uw_u(c, 2); break;
    case 0x03: v = uw_u(c, 4); break;
    case 0x04: v = uw_u(c, 8); break;
    case 0x09: v = (uint64_t)uw_sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)uw_u(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)uw_u(c, 4); break;
    case 0x0c: v = uw_u(c, 8); break;
    default: c->bad = 1; return 0;
    }
    return v + base;
}

/* ---- the stack copy ----------------------------------------------------------- */

struct uw_stack {
    uint64_t base; /* the address of data[0] (rsp at the sample) */
    const uint8_t *data;
    uint64_t len;
};

static int uw_read(const struct uw_stack *s, uint64_t addr, uint64_t *out)
{
    uint64_t off = addr - s->base;

    if (addr < s->base || off > s->len || s->len - off < 8)
        return -1;
    memcpy(out, s->data + off, 8);
    return 0;
}

/* ---- CFI --------------------------------------------------------------- */

enum { R_SAME = 0, R_UNDEF, R_OFFSET, R_VAL_OFFSET, R_REG, R_EXPR, R_VAL_EXPR };

struct uw_rule {
    uint8_t kind;
    uint8_t reg;
    int64_t off;
    const uint8_t *expr;
    uint64_t expr_len;
};

struct uw_row {
    uint8_t cfa_reg;
    int cfa_is_expr;
    int64_t cfa_off;
    const uint8_t *cfa_expr;
    uint64_t cfa_expr_len;
    struct uw_rule r[UW_NREGS];
};

struct uw_cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_z, signal;
    const uint8_t *insns, *insns_end;
};

/* Parses the CIE at eh_frame offset `off`. 0 or -1. */
/* Points `c` at the body of the .eh_frame entry (CIE or FDE) at `off`: past its length field (4 bytes,
 * or 12 for the 64-bit form), ending where the length says. -1 when the entry is out of bounds or its
 * length is under `min_len`. */
static int uw_entry(const struct pyprobe_uw_module *m, uint64_t off, uint64_t min_len, struct uw_cur *c)
{
    uint64_t len;

    if (off >= m->eh_frame_len)
        return -1;
    c->p = m->eh_frame + off;
    c->end = m->eh_frame + m->eh_frame_len;
    c->bad = 0;
    len = uw_u(c, 4);
    if (len == 0xffffffffu)
        len = uw_u(c, 8);
    if (c->bad || len > (uint64_t)(c->end - c->p) || len < min_len)
        return -1;
    c->end = c->p + len;
    return 0;
}

static int uw_parse_cie(const struct pyprobe_uw_module *m, uint64_t off, struct uw_cie *cie)
{
    struct uw_cur c;
    const char *aug;
    uint8_t version;

    if (uw_entry(m, off, 4, &c) < 0)
        return -1;
    if (uw_u(&c, 4) != 0) /* CIE id in .eh_frame */
        return -1;
    version = (uint8_t)uw_u(&c, 1);
    if (version != 1 && version != 3 && version != 4)
        return -1;
    aug = (const char *)c.p;
    while (c.p < c.end && *c.p)
        c.p++;
    if (c.p >= c.end)
        return -1;
    c.p++;
    if (version == 4) {
        if (uw_u(&c, 1) != 8) /* address size */
            return -1;
        uw_u(&c, 1); /* segment selector size */
    }
    memset(cie, 0, sizeof(*cie));
    cie->code_align = uw_uleb(&c);
    cie->data_align = uw_sleb(&c);
    cie->ra_reg = version == 1 ? uw_u(&c, 1) : uw_uleb(&c);
    cie->fde_enc = 0; /* absptr */
    if (aug[0] == 'z') {
        uint64_t alen = uw_uleb(&c);
        const uint8_t *aend;

        if (c.bad || alen > (uint64_t)(c.end - c.p))
            return -1;
        aend = c.p + alen;
        cie->has_z = 1;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') {
                cie->fde_enc = (uint8_t)uw_u(&c, 1);
            } else if (*a == 'P') {
                uint8_t enc = (uint8_t)uw_u(&c, 1);
                uw_ptr(&c, enc & 0x7f, 0, 0);
            } else if (*a == 'L') {
                uw_u(&c, 1);
            } else if (*a == 'S') {
                cie->signal = 1;
            } else if (*a == 'B' || *a == 'G') {
                /* aarch64 key B, MTE tagged frames: no data */
            } else {
                break; /* unknown: the length lets us skip the rest */
            }
        }
        if (c.bad)
            return -1;
        c.p = aend;
    } else if (aug[0] != '\0') {
        return -1; /* an old augmentation without 'z' cannot be skipped */
    }
    if (c.bad || cie->ra_reg != UW_RIP || cie->code_align == 0)
        return -1;
    cie->insns = c.p;
    cie->insns_end = c.end;
    return 0;
}

struct uw_fde {
    uint64_t pc_begin, pc_end; /* file addresses */
    const uint8_t *insns, *insns_end;
};

/* Parses the FDE at eh_frame offset `off` and its CIE. 0 or -1. */
static int uw_parse_fde(const struct pyprobe_uw_module *m, uint64_t off, struct uw_fde *fde, struct uw_cie *cie)
{
    struct uw_cur c;
    uint64_t id_off, cie_ptr, range;

    if (uw_entry(m, off, 8, &c) < 0)
        return -1;
    id_off = (uint64_t)(c.p - m->eh_frame);
    cie_ptr = uw_u(&c, 4);
    if (cie_ptr == 0 || cie_ptr > id_off) /* 0 is a CIE; the pointer goes backwards */
        return -1;
    if (uw_parse_cie(m, id_off - cie_ptr, cie) < 0)
        return -1;
    fde->pc_begin =
        uw_ptr(&c, cie->fde_enc & 0x7f, m->eh_frame_vaddr + (uint64_t)(c.p - m->eh_frame), m->hdr_vaddr);
    range = uw_ptr(&c, cie->fde_enc & 0x0f, 0, 0);
    fde->pc_end = fde->pc_begin + range;
    if (cie->has_z) {
        uint64_t alen = uw_uleb(&c);

        if (c.bad || alen > (uint64_t)(c.end - c.p))
            return -1;
        c.p += alen;
    }
    if (c.bad)
        return -1;
    fde->insns = c.p;
    fde->insns_end = c.end;
    return 0;
}

/* The eh_frame offset of the FDE covering file address `pc`, by binary
 * search of .eh_frame_hdr's table; -1 when there is none. */
static int64_t uw_find_fde(const struct pyprobe_uw_module *m, uint64_t pc)
{
    struct uw_cur c;
    uint8_t ptr_enc, count_enc, table_enc;
    uint64_t count, lo, hi, fde_addr;
    const uint8_t *table;

    if (!m->hdr || m->hdr_len < 4 || m->hdr[0] != 1)
        return -1;
    c.p = m->hdr + 4;
    c.end = m->hdr + m->hdr_len;
    c.bad = 0;
    ptr_enc = m->hdr[1];
    count_enc = m->hdr[2];
    table_enc = m->hdr[3];
    uw_ptr(&c, ptr_enc, m->hdr_vaddr + 4, m->hdr_vaddr);
    count = uw_ptr(&c, count_enc, m->hdr_vaddr + (uint64_t)(c.p - m->hdr), m->hdr_vaddr);
    if (c.bad || table_enc != 0x3b) /* datarel | sdata4: what every linker writes */
        return -1;
    table = c.p;
    if (count > (uint64_t)(c.end - c.p) / 8)
        return -1;
    if (count == 0)
        return -1;
    lo = 0;
    hi = count; /* the last entry with start <= pc */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        int32_t start;

        memcpy(&start, table + mid * 8, 4);
        if (m->hdr_vaddr + (uint64_t)(int64_t)start <= pc)
            lo = mid;
        else
            hi = mid;
    }
    {
        int32_t start, fde;

        memcpy(&start, table + lo * 8, 4);
        memcpy(&fde, table + lo * 8 + 4, 4);
        if (m->hdr_vaddr + (uint64_t)(int64_t)start > pc)
            return -1;
        fde_addr = m->hdr_vaddr + (uint64_t)(int64_t)fde;
    }
    if (fde_addr < m->eh_frame_vaddr || fde_addr - m->eh_frame_vaddr >= m->eh_frame_len)
        return -1;
    return (int64_t)(fde_addr - m->eh_frame_vaddr);
}

/* Runs CFA instructions [p, end) until the location passes `pc`. `init` is the
 * row after the CIE's initial instructions (for DW_CFA_restore), NULL while
 * running those. 0 or -1. */
static int uw_run(const struct uw_cie *cie, const uint8_t *p, const uint8_t *end, uint64_t loc, uint64_t pc,
                  struct uw_row *row, const struct uw_row *init)
{
    struct uw_row stack[UW_MAX_STATES];
    unsigned depth = 0, steps = 0;
    struct uw_cur c = {p, end, 0};

    while (c.p < c.end && !c.bad) {
        uint8_t op = (uint8_t)uw_u(&c, 1), low = op & 0x3f;
        uint64_t reg = 0, delta;
        int64_t off;

        if (++steps > UW_MAX_STEPS)
            return -1;
        switch (op >> 6) {
        case 1: /* DW_CFA_advance_loc */
            loc += low * cie->code_align;
            if (loc > pc)
                return 0;
            continue;
        case 2: /* DW_CFA_offset */
            off = (int64_t)uw_uleb(&c) * cie->data_align;
            if (low < UW_NREGS) {
                row->r[low].kind = R_OFFSET;
                row->r[low].off = off;
            }
            continue;
        case 3: /* DW_CFA_restore */
            if (low < UW_NREGS)
                row->r[low] = init ? init->r[low] : (struct uw_rule){0};
            continue;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01:        /* set_loc */
            loc = uw_ptr(&c, cie->fde_enc & 0x7f, 0, 0);
            if (loc > pc)
                return 0;
            break;
        case 0x02: case 0x03: case 0x04: /* advance_loc1/2/4 */
            delta = uw_u(&c, op == 0x02 ? 1 : op == 0x03 ? 2 : 4);
            loc += delta * cie->code_align;
            if (loc > pc)
                return 0;
            break;
        case 0x05: /* offset_extended */
        case 0x11: /* offset_extended_sf */
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uw_uleb(&c);
            if (op == 0x11 || op == 0x15)
                off = uw_sleb(&c) * cie->data_align;
            else
                off = (int64_t)uw_uleb(&c) * cie->data_align;
            if (op == 0x2f)
                off = -off;
            if (reg < UW_NREGS) {
                row->r[reg].kind = (op == 0x14 || op == 0x15) ? R_VAL_OFFSET : R_OFFSET;
                row->r[reg].off = off;
            }
            break;
        case 0x06: /* restore_extended */
            reg = uw_uleb(&c);
            if (reg < UW_NREGS)
                row->r[reg] = init ? init->r[reg] : (struct uw_rule){0};
            break;
        case 0x07: /* undefined */
        case 0x08: /* same_value */
            reg = uw_uleb(&c);
            if (reg < UW_NREGS)
                row->r[reg].kind = op == 0x07 ? R_UNDEF : R_SAME;
            break;
        case 0x09: /* register */
            reg = uw_uleb(&c);
            delta = uw_uleb(&c);
            if (reg < UW_NREGS) {
                if (delta >= UW_NREGS)
                    return -1;
                row->r[reg].kind = R_REG;
                row->r[reg].reg = (uint8_t)delta;
            }
            break;
        case 0x0a: /* remember_state */
            if (depth >= UW_MAX_STATES)
                return -1;
            stack[depth++] = *row;
            break;
        case 0x0b: /* restore_state */
            if (depth == 0)
                return -1;
            *row = stack[--depth];
            break;
        case 0x0c: /* def_cfa */
        case 0x12: /* def_cfa_sf */
            reg = uw_uleb(&c);
            off = op == 0x0c ? (int64_t)uw_uleb(&c) : uw_sleb(&c) * cie->data_align;
            if (reg >= UW_NREGS)
                return -1;
            row->cfa_reg = (uint8_t)reg;
            row->cfa_off = off;
            row->cfa_is_expr = 0;
            break;
        case 0x0d: /* def_cfa_register */
            reg = uw_uleb(&c);
            if (reg >= UW_NREGS)
                return -1;
            row->cfa_reg = (uint8_t)reg;
            row->cfa_is_expr = 0;
            break;
        case 0x0e: /* def_cfa_offset */
            row->cfa_off = (int64_t)uw_uleb(&c);
            break;
        case 0x13: /* def_cfa_offset_sf */
            row->cfa_off = uw_sleb(&c) * cie->data_align;
            break;
        case 0x0f: /* def_cfa_expression */
            delta = uw_uleb(&c);
            if (c.bad || delta > (uint64_t)(c.end - c.p))
                return -1;
            row->cfa_is_expr = 1;
            row->cfa_expr = c.p;
            row->cfa_expr_len = delta;
            c.p += delta;
            break;
        case 0x10: /* expression */
        case 0x16: /* val_expression */
            reg = uw_uleb(&c);
            delta = uw_uleb(&c);
            if (c.bad || delta > (uint64_t)(c.end - c.p))
                return -1;
            if (reg < UW_NREGS) {
                row->r[reg].kind = op == 0x10 ? R_EXPR : R_VAL_EXPR;
                row->r[reg].expr = c.p;
                row->r[reg].expr_len = delta;
            }
            c.p += delta;
            break;
        case 0x2e: /* GNU_args_size */
            uw_uleb(&c);
            break;
        default:
            return -1;
        }
    }
    return c.bad ? -1 : 0;
}

/* Evaluates a DWARF expression without branches (what CFI uses: PLT entries,
 * stack realignment, signal frames). 0 or -1. */
static int uw_eval(const uint8_t *p, uint64_t len, const uint64_t *regs, uint32_t known,
                   const struct uw_stack *s, int push_cfa, uint64_t cfa, uint64_t *out)
{
    uint64_t st[UW_EXPR_STACK];
    unsigned n = 0;
    struct uw_cur c = {p, p + len, 0};

    if (push_cfa)
        st[n++] = cfa;
    while (c.p < c.end && !c.bad) {
        uint8_t op = (uint8_t)uw_u(&c, 1);
        uint64_t a, b;

        if (op >= 0x30 && op <= 0x4f) { /* lit0..31 */
            if (n >= UW_EXPR_STACK)
                return -1;
            st[n++] = op - 0x30;
            continue;
        }
        if ((op >= 0x70 && op <= 0x8f) || op == 0x92) { /* breg0..31, bregx */
            uint64_t reg = op == 0x92 ? uw_uleb(&c) : (uint64_t)(op - 0x70);
            int64_t off = uw_sleb(&c);

            if (reg >= UW_NREGS || !(known & (1u << reg)) || n >= UW_EXPR_STACK)
                return -1;
            st[n++] = regs[reg] + (uint64_t)off;
            continue;
        }
        switch (op) {
        case 0x08: case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x0e: case 0x0f:
        case 0x10: case 0x11: /* const1u .. const8s, constu, consts */
            if (n >= UW_EXPR_STACK)
                return -1;
            switch (op) {
            case 0x08: a = uw_u(&c, 1); break;
            case 0x09: a = (uint64_t)(int64_t)(int8_t)uw_u(&c, 1); break;
            case 0x0a: a = uw_u(&c, 2); break;
            case 0x0b: a = (uint64_t)(int64_t)(int16_t)uw_u(&c, 2); break;
            case 0x0c: a = uw_u(&c, 4); break;
            case 0x0d: a = (uint64_t)(int64_t)(int32_t)uw_u(&c, 4); break;
            case 0x0e: case 0x0f: a = uw_u(&c, 8); break;
            case 0x10: a = uw_uleb(&c); break;
            default: a = (uint64_t)uw_sleb(&c); break;
            }
            st[n++] = a;
            break;
        case 0x06: /* deref */
            if (n < 1 || uw_read(s, st[n - 1], &st[n - 1]) < 0)
                return -1;
            break;
        case 0x12: /* dup */
            if (n < 1 || n >= UW_EXPR_STACK)
                return -1;
            st[n] = st[n - 1];
            n++;
            break;
        case 0x13: /* drop */
            if (n < 1)
                return -1;
            n--;
            break;
        case 0x14: /* over */
            if (n < 2 || n >= UW_EXPR_STACK)
                return -1;
            st[n] = st[n - 2];
            n++;
            break;
        case 0x16: /* swap */
            if (n < 2)
                return -1;
            a = st[n - 1];
            st[n - 1] = st[n - 2];
            st[n - 2] = a;
            break;
        case 0x1f: /* neg */
            if (n < 1)
                return -1;
            st[n - 1] = -st[n - 1];
            break;
        case 0x20: /* not */
            if (n < 1)
                return -1;
            st[n - 1] = ~st[n - 1];
            break;
        case 0x23: /* plus_uconst */
            if (n < 1)
                return -1;
            st[n - 1] += uw_uleb(&c);
            break;
        case 0x1a: case 0x1c: case 0x1e: case 0x21: case 0x22: case 0x24: case 0x25: case 0x27:
        case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e:
            if (n < 2)
                return -1;
            b = st[--n];
            a = st[n - 1];
            switch (op) {
            case 0x1a: a &= b; break;
            case 0x1c: a -= b; break;
            case 0x1e: a *= b; break;
            case 0x21: a |= b; break;
            case 0x22: a += b; break;
            case 0x24: a = b >= 64 ? 0 : a << b; break;
            case 0x25: a = b >= 64 ? 0 : a >> b; break;
            case 0x27: a ^= b; break;
            case 0x29: a = a == b; break;
            case 0x2a: a = (int64_t)a >= (int64_t)b; break;
            case 0x2b: a = (int64_t)a > (int64_t)b; break;
            case 0x2c: a = (int64_t)a <= (int64_t)b; break;
            case 0x2d: a = (int64_t)a < (int64_t)b; break;
            default: a = a != b; break;
            }
            st[n - 1] = a;
            break;
        default:
            return -1; /* branches, calls, registers as values, ...: not in CFI we unwind */
        }
    }
    if (c.bad || n < 1)
        return -1;
    *out = st[n - 1];
    return 0;
}

static const struct pyprobe_uw_module *uw_module(const struct pyprobe_uw_proc *proc, uint64_t pc)
{
    uint32_t lo = 0, hi;

    if (!proc)
        return NULL;
    hi = proc->nmods;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct pyprobe_uw_module *m = &proc->mods[mid];

        if (pc < m->start)
            hi = mid;
        else if (pc >= m->end)
            lo = mid + 1;
        else
            return m;
    }
    return NULL;
}

/* The CFI row of file address `pc` in module `m`: finds the FDE, runs its
 * CIE's and its own instructions. 0 or -1 (flags say why). */
static int uw_row_for(const struct pyprobe_uw_module *m, uint64_t pc, struct uw_row *row, int *signal,
                      uint32_t *flags)
{
    struct uw_cie cie;
    struct uw_fde fde;
    struct uw_row init;
    int64_t off = uw_find_fde(m, pc);

    if (off < 0) {
        *flags |= UW_F_NO_CFI;
        return -1;
    }
    if (uw_parse_fde(m, (uint64_t)off, &fde, &cie) < 0) {
        *flags |= UW_F_BAD_CFI;
        return -1;
    }
    if (pc < fde.pc_begin || pc >= fde.pc_end) {
        *flags |= UW_F_NO_CFI;
        return -1;
    }
    memset(&init, 0, sizeof(init));
    if (uw_run(&cie, cie.insns, cie.insns_end, 0, UINT64_MAX, &init, NULL) < 0) {
        *flags |= UW_F_BAD_CFI;
        return -1;
    }
    *row = init;
    if (uw_run(&cie, fde.insns, fde.insns_end, fde.pc_begin, pc, row, &init) < 0) {
        *flags |= UW_F_BAD_CFI;
        return -1;
    }
    *signal = cie.signal;
    return 0;
}

/* A direct-mapped cache of rows by (module, pc): most samples return through
 * the same call sites, and running a large function's CFA program (hundreds of
 * remember/restore_state in an interpreter loop) to each one costs far more than
 * the rest of the step. A hit needs the same .eh_frame buffer (address and
 * length) and every expression of the row inside it, so a stale entry can be
 * wrong at worst, never a read outside the module's live tables. */
struct pyprobe_uw_cache_entry {
    const uint8_t *eh_frame;
    uint64_t eh_frame_len;
    uint64_t pc;
    int signal;
    struct uw_row row;
};

size_t pyprobe_uw_cache_entry_size(void)
{
    return sizeof(struct pyprobe_uw_cache_entry);
}

struct uw_cache {
    struct pyprobe_uw_cache_entry *e;
    uint64_t mask; /* entries - 1 (a power of two), or no cache when e is NULL */
};

static int uw_expr_in(const uint8_t *p, uint64_t len, const struct pyprobe_uw_module *m)
{
    return p >= m->eh_frame && (uint64_t)(p - m->eh_frame) <= m->eh_frame_len &&
           len <= m->eh_frame_len - (uint64_t)(p - m->eh_frame);
}

static int uw_cached_row(const struct uw_cache *c, const struct pyprobe_uw_module *m, uint64_t pc,
                         struct uw_row *row, int *signal, uint32_t *flags)
{
    struct pyprobe_uw_cache_entry *e;
    uint64_t h;

    if (!c || !c->e)
        return uw_row_for(m, pc, row, signal, flags);
    h = (pc ^ ((uint64_t)(uintptr_t)m->eh_frame >> 4)) * 0x9E3779B97F4A7C15ull;
    e = &c->e[(h >> 32) & c->mask];
    if (e->eh_frame == m->eh_frame && e->eh_frame_len == m->eh_frame_len && e->pc == pc && m->eh_frame) {
        int ok = !e->row.cfa_is_expr || uw_expr_in(e->row.cfa_expr, e->row.cfa_expr_len, m);

        for (int r = 0; ok && r < UW_NREGS; r++)
            if (e->row.r[r].kind == R_EXPR || e->row.r[r].kind == R_VAL_EXPR)
                ok = uw_expr_in(e->row.r[r].expr, e->row.r[r].expr_len, m);
        if (ok) {
            *row = e->row;
            *signal = e->signal;
            return 0;
        }
    }
    if (uw_row_for(m, pc, row, signal, flags) < 0)
        return -1;
    e->eh_frame = m->eh_frame;
    e->eh_frame_len = m->eh_frame_len;
    e->pc = pc;
    e->signal = *signal;
    e->row = *row;
    return 0;
}

/* One step: from the registers of a frame to its caller's. 1 on success, 0 at
 * the outermost frame, -1 when it cannot go on (flags say why). `exact` says
 * that regs[rip] is where the frame was interrupted (the leaf, or the frame
 * below a signal frame) rather than a return address; on return it says so
 * of the caller (this frame is a signal frame). */
static int uw_step(const struct pyprobe_uw_proc *proc, const struct uw_cache *cache, const struct uw_stack *s,
                   uint64_t *regs, uint32_t *known, int *exact, uint32_t *flags)
{
    int first = *exact;
    const struct pyprobe_uw_module *m;
    struct uw_row row;
    uint64_t pc = regs[UW_RIP], fpc, cfa, nregs[UW_NREGS];
    uint32_t nknown;

    /* a return address points after the call: look up the call itself */
    fpc = first ? pc : pc - 1;
    m = uw_module(proc, fpc);
    if (!m) {
        /* no module (JIT code, an unknown mapping): follow rbp, as a frame
         * pointer walk would */
        uint64_t fp = regs[UW_RBP], ra, next;

        *flags |= UW_F_NO_MODULE;
        if (!(*known & (1u << UW_RBP)) || fp < regs[UW_RSP] || uw_read(s, fp, &next) < 0 ||
            uw_read(s, fp + 8, &ra) < 0)
            return -1;
        *flags |= UW_F_FP;
        *exact = 0;
        regs[UW_RBP] = next;
        regs[UW_RSP] = fp + 16;
        regs[UW_RIP] = ra;
        *known = (1u << UW_RBP) | (1u << UW_RSP) | (1u << UW_RIP);
        return ra ? 1 : 0;
    }
    if (uw_cached_row(cache, m, fpc - m->bias, &row, exact, flags) < 0)
        return -1;
    if (row.cfa_is_expr) {
        if (uw_eval(row.cfa_expr, row.cfa_expr_len, regs, *known, s, 0, 0, &cfa) < 0) {
            *flags |= UW_F_STACK_END;
            return -1;
        }
    } else {
        if (!(*known & (1u << row.cfa_reg))) {
            *flags |= UW_F_BAD_CFI;
            return -1;
        }
        cfa = regs[row.cfa_reg] + (uint64_t)row.cfa_off;
    }
    if (row.r[UW_RIP].kind == R_UNDEF)
        return 0; /* the outermost frame */
    memcpy(nregs, regs, sizeof(nregs));
    nknown = *known;
    for (int r = 0; r < UW_NREGS; r++) {
        const struct uw_rule *rule = &row.r[r];
        uint64_t v;

        switch (rule->kind) {
        case R_SAME:
            continue;
        case R_UNDEF:
            nknown &= ~(1u << r);
            continue;
        case R_OFFSET:
            if (uw_read(s, cfa + (uint64_t)rule->off, &v) < 0) {
                if (r == UW_RIP) {
                    *flags |= UW_F_STACK_END;
                    return -1;
                }
                nknown &= ~(1u << r);
                continue;
            }
            break;
        case R_VAL_OFFSET:
            v = cfa + (uint64_t)rule->off;
            break;
        case R_REG:
            if (!(*known & (1u << rule->reg))) {
                nknown &= ~(1u << r);
                continue;
            }
            v = regs[rule->reg];
            break;
        default: /* R_EXPR, R_VAL_EXPR */
            if (uw_eval(rule->expr, rule->expr_len, regs, *known, s, 1, cfa, &v) < 0 ||
                (rule->kind == R_EXPR && uw_read(s, v, &v) < 0)) {
                if (r == UW_RIP) {
                    *flags |= UW_F_STACK_END;
                    return -1;
                }
                nknown &= ~(1u << r);
                continue;
            }
            break;
        }
        nregs[r] = v;
        nknown |= 1u << r;
    }
    if (!(nknown & (1u << UW_RIP))) {
        *flags |= UW_F_BAD_CFI;
        return -1;
    }
    nregs[UW_RSP] = cfa;
    nknown |= 1u << UW_RSP;
    /* the caller's stack pointer is above this frame's: anything else loops */
    if (cfa <= regs[UW_RSP]) {
        *flags |= UW_F_BAD_CFI;
        return -1;
    }
    memcpy(regs, nregs, sizeof(nregs));
    *known = nknown;
    return nregs[UW_RIP] ? 1 : 0;
}

/* Unwinds one sample: `regs` (UW_NREGS values, all known) and the stack
 * copied from regs[rsp]. Writes up to max_frames instruction pointers, leaf
 * first, into `ips`; returns how many; `flags` says why it stopped. */
static long uw_unwind(const struct pyprobe_uw_proc *proc, const struct uw_cache *cache, const uint64_t *regs_in,
                      const uint8_t *stack, uint64_t stack_len, uint64_t *ips, uint32_t max_frames, uint32_t *flags)
{
    uint64_t regs[UW_NREGS];
    uint32_t known = (1u << UW_NREGS) - 1, n = 0;
    struct uw_stack s = {regs_in[UW_RSP], stack, stack_len};
    int exact = 1;

    *flags = 0;
    if (max_frames == 0)
        return 0;
    memcpy(regs, regs_in, sizeof(regs));
    ips[n++] = regs[UW_RIP];
    while (n < max_frames) {
        int r = uw_step(proc, cache, &s, regs, &known, &exact, flags);

        if (r < 0)
            break;
        if (r == 0) {
            *flags |= UW_F_OUTERMOST;
            break;
        }
        ips[n++] = regs[UW_RIP];
    }
    if (n == max_frames)
        *flags |= UW_F_MAX_FRAMES;
    return (long)n;
}

long pyprobe_uw_unwind(const struct pyprobe_uw_proc *proc, const uint64_t *regs_in, const uint8_t *stack,
                       uint64_t stack_len, uint64_t *ips, uint32_t max_frames, uint32_t *flags)
{
    return uw_unwind(proc, NULL, regs_in, stack, stack_len, ips, max_frames, flags);
}

static const struct pyprobe_uw_proc *uw_proc(const struct pyprobe_uw_proc *procs, size_t nprocs, uint32_t pid)
{
    size_t lo = 0, hi = nprocs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (procs[mid].pid < pid)
            lo = mid + 1;
        else if (procs[mid].pid > pid)
            hi = mid;
        else
            return &procs[mid];
    }
    return NULL;
}

/* Unwinds a batch of profile_dwarf records (struct pd_sample, `header` bytes
 * of header before the stack): record i is buf[offsets[i] .. offsets[i+1]).
 * `procs` is sorted by pid. For record i, writes its frames to
 * ips[i * max_frames ...], their number to nips[i] and the stop reasons to
 * flags[i]. `cache` (cache_entries of pyprobe_uw_cache_entry_size() bytes,
 * zeroed, a power of two; NULL for none) keeps rows between calls. Records too short for their header or stack get 0 frames and
 * UW_F_STACK_END. Returns the total number of frames. */
long pyprobe_uw_batch(const struct pyprobe_uw_proc *procs, size_t nprocs, const uint8_t *buf, const uint32_t *offsets,
                      size_t n, uint32_t header, uint64_t *ips, uint32_t *nips, uint32_t *flags, uint32_t max_frames,
                      struct pyprobe_uw_cache_entry *cache, uint32_t cache_entries)
{
    long total = 0;
    struct uw_cache c = {cache, cache_entries ? cache_entries - 1 : 0};

    if (cache_entries & (cache_entries - 1))
        c.e = NULL; /* not a power of two: no cache */

    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = buf + offsets[i];
        uint64_t len = offsets[i + 1] - offsets[i], regs[UW_NREGS];
        uint32_t pid, stack_len, rflags;

        nips[i] = 0;
        flags[i] = 0;
        if (offsets[i + 1] < offsets[i] || len < header || header < 24 + 8 * UW_NREGS) {
            flags[i] = UW_F_STACK_END;
            continue;
        }
        memcpy(&pid, rec, 4);
        memcpy(&stack_len, rec + 12, 4);
        memcpy(&rflags, rec + 16, 4);
        if (!(rflags & 1u)) /* PD_USER */
            continue;
        if (stack_len > len - header)
            stack_len = (uint32_t)(len - header);
        memcpy(regs, rec + 24, sizeof(regs));
        long k = uw_unwind(uw_proc(procs, nprocs, pid), &c, regs, rec + header, stack_len,
                                   ips + i * (size_t)max_frames, max_frames, &flags[i]);
        nips[i] = (uint32_t)k;
        total += k;
    }
    return total;
}
