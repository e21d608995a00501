/* The context switch under the coroutines. On x86-64 and aarch64 it is a
 * dozen instructions of assembly that save the callee-saved registers on
 * the stack being left, swap stack pointers and restore the other side's
 * registers: no system call, no signal mask (which is what makes
 * swapcontext() slow). Elsewhere, or when built with -DGUST_CORO_UCONTEXT=1,
 * it is makecontext()/swapcontext().
 *
 * The assembly is top-level __asm__ in this C file rather than a .S file so
 * that the build (LANGUAGES C, every .c file under src/) needs no change.
 */
#include <stdint.h>
#include <string.h>

#define GUST__FUTURE_PRIVATE
#include "future_internal.h"

#if defined(GUST__CTX_ASM) && defined(__x86_64__)

/* gust__ctx_switch(from = rdi, to = rsi). SysV: rbx, rbp, r12-r15 are
 * callee-saved, and so are the control bits of MXCSR and the x87 control
 * word, which the switch keeps per context too (8 bytes below the
 * registers). The frame, from the saved sp up:
 *   +0 x87 CW, +4 MXCSR, +8 r15, r14, r13, r12, rbx, rbp, +56 return address
 * It ends with pop + jmp rather than ret: a ret to another stack's return
 * address always misses the CPU's return-stack predictor, which made the
 * switch 2-3 times slower (27 ns against 11 ns measured on an AMD EPYC).
 */
#if defined(__CET__)
#define GUST__ENDBR "endbr64\n\t"
#else
#define GUST__ENDBR ""
#endif
__asm__(".text\n\t"
        ".p2align 4\n\t"
        ".globl gust__ctx_switch\n\t"
        ".hidden gust__ctx_switch\n\t"
        ".type gust__ctx_switch,@function\n"
        "gust__ctx_switch:\n\t"
        GUST__ENDBR
        "pushq %rbp\n\t"
        "pushq %rbx\n\t"
        "pushq %r12\n\t"
        "pushq %r13\n\t"
        "pushq %r14\n\t"
        "pushq %r15\n\t"
        "subq $8, %rsp\n\t"
        "stmxcsr 4(%rsp)\n\t"
        "fnstcw (%rsp)\n\t"
        "movq %rsp, (%rdi)\n\t"
        "movq (%rsi), %rsp\n\t"
        "ldmxcsr 4(%rsp)\n\t"
        "fldcw (%rsp)\n\t"
        "addq $8, %rsp\n\t"
        "popq %r15\n\t"
        "popq %r14\n\t"
        "popq %r13\n\t"
        "popq %r12\n\t"
        "popq %rbx\n\t"
        "popq %rbp\n\t"
        "popq %rcx\n\t"
        "jmp *%rcx\n\t"
        ".size gust__ctx_switch, .-gust__ctx_switch\n\t"
        /* A new context's first switch "returns" here with entry in r12 and
         * its argument in r13, and rsp 16-byte aligned, as a call needs. */
        ".p2align 4\n\t"
        ".globl gust__ctx_boot\n\t"
        ".hidden gust__ctx_boot\n\t"
        ".type gust__ctx_boot,@function\n"
        "gust__ctx_boot:\n\t"
        GUST__ENDBR
        "movq %r13, %rdi\n\t"
        "callq *%r12\n\t"
        "ud2\n\t"
        ".size gust__ctx_boot, .-gust__ctx_boot\n\t");

void gust__ctx_boot(void);

void gust__ctx_make(gust__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 64);
    uint32_t mxcsr;
    uint16_t fpucw;
    /* A new context starts with the creator's floating-point modes. */
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    memset(sp, 0, 64);
    memcpy((char *)sp, &fpucw, sizeof fpucw);
    memcpy((char *)sp + 4, &mxcsr, sizeof mxcsr);
    /* sp[1..6]: r15, r14, r13, r12, rbx, rbp (0: ends frame walks). */
    sp[3] = (uint64_t)(uintptr_t)arg;
    sp[4] = (uint64_t)(uintptr_t)entry;
    sp[7] = (uint64_t)(uintptr_t)gust__ctx_boot; /* the return address */
    ctx->sp = sp;
}

const char *gust__ctx_impl(void)
{
    return "x86_64";
}

#elif defined(GUST__CTX_ASM) && defined(__aarch64__)

/* gust__ctx_switch(from = x0, to = x1). AAPCS64: x19-x28, the frame
 * pointer x29, the link register x30 and the low halves of v8-v15 are
 * callee-saved: 20 registers, 160 bytes, which keeps sp 16-byte aligned. */
__asm__(".text\n\t"
        ".p2align 4\n\t"
        ".globl gust__ctx_switch\n\t"
        ".hidden gust__ctx_switch\n\t"
        ".type gust__ctx_switch,%function\n"
        "gust__ctx_switch:\n\t"
        "sub sp, sp, #160\n\t"
        "stp x19, x20, [sp, #0]\n\t"
        "stp x21, x22, [sp, #16]\n\t"
        "stp x23, x24, [sp, #32]\n\t"
        "stp x25, x26, [sp, #48]\n\t"
        "stp x27, x28, [sp, #64]\n\t"
        "stp x29, x30, [sp, #80]\n\t"
        "stp d8, d9, [sp, #96]\n\t"
        "stp d10, d11, [sp, #112]\n\t"
        "stp d12, d13, [sp, #128]\n\t"
        "stp d14, d15, [sp, #144]\n\t"
        "mov x9, sp\n\t"
        "str x9, [x0]\n\t"
        "ldr x9, [x1]\n\t"
        "mov sp, x9\n\t"
        "ldp x19, x20, [sp, #0]\n\t"
        "ldp x21, x22, [sp, #16]\n\t"
        "ldp x23, x24, [sp, #32]\n\t"
        "ldp x25, x26, [sp, #48]\n\t"
        "ldp x27, x28, [sp, #64]\n\t"
        "ldp x29, x30, [sp, #80]\n\t"
        "ldp d8, d9, [sp, #96]\n\t"
        "ldp d10, d11, [sp, #112]\n\t"
        "ldp d12, d13, [sp, #128]\n\t"
        "ldp d14, d15, [sp, #144]\n\t"
        "add sp, sp, #160\n\t"
        "ret\n\t"
        ".size gust__ctx_switch, .-gust__ctx_switch\n\t"
        /* First switch into a new context: x30 points here, entry is in
         * x19 and its argument in x20. */
        ".p2align 4\n\t"
        ".globl gust__ctx_boot\n\t"
        ".hidden gust__ctx_boot\n\t"
        ".type gust__ctx_boot,%function\n"
        "gust__ctx_boot:\n\t"
        "mov x0, x20\n\t"
        "blr x19\n\t"
        "brk #0\n\t"
        ".size gust__ctx_boot, .-gust__ctx_boot\n\t");

void gust__ctx_boot(void);

void gust__ctx_make(gust__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 160);
    memset(sp, 0, 160);
    sp[0] = (uint64_t)(uintptr_t)entry;          /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;            /* x20 */
    sp[10] = 0;                                  /* x29 */
    sp[11] = (uint64_t)(uintptr_t)gust__ctx_boot; /* x30 */
    ctx->sp = sp;
}

const char *gust__ctx_impl(void)
{
    return "aarch64";
}

#else /* ucontext */

#include <stdlib.h>

/* makecontext() passes int arguments only: the two pointers travel as
 * halves of 64-bit words. */
static void ucontext_boot(unsigned e_hi, unsigned e_lo, unsigned a_hi,
                          unsigned a_lo)
{
    uintptr_t e = (uintptr_t)(((uint64_t)e_hi << 32) | e_lo);
    uintptr_t a = (uintptr_t)(((uint64_t)a_hi << 32) | a_lo);
    void (*entry)(void *);
    memcpy(&entry, &e, sizeof entry);
    entry((void *)a);
    abort(); /* entry never returns */
}

void gust__ctx_make(gust__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    uint64_t e = 0, a = (uint64_t)(uintptr_t)arg;
    memcpy(&e, &entry, sizeof entry);
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    void (*boot)(void);
    void (*typed)(unsigned, unsigned, unsigned, unsigned) = ucontext_boot;
    memcpy(&boot, &typed, sizeof boot);
    makecontext(&ctx->uc, boot, 4, (unsigned)(e >> 32), (unsigned)e,
                (unsigned)(a >> 32), (unsigned)a);
}

void gust__ctx_switch(gust__ctx *from, gust__ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

const char *gust__ctx_impl(void)
{
    return "ucontext";
}

#endif
