/*
 * ctx.c - lays out the first frame of a new context for the hand-written
 * switches in arch/.  The frame mirrors what green__ctx_switch pops, with the
 * return address pointing at the trampoline that calls the entry function.
 */
#include "arch/ctx.h"

#include <stdint.h>
#include <string.h>

#if !defined(GREEN_CTX_UCONTEXT)

void green__ctx_trampoline(void);

#if defined(__x86_64__)
void green__ctx_init(struct green__ctx *ctx, void *stack_lo, size_t size,
                     void (*entry)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 16); /* 16-aligned after ret */
	uint32_t mxcsr;
	uint16_t fpucw;

	/* New contexts inherit the creator's rounding and exception masks, as
	 * new threads do. */
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpucw));

	*--sp = (uint64_t)(uintptr_t)green__ctx_trampoline; /* ret */
	*--sp = 0;                           /* rbp: ends frame-pointer walks */
	*--sp = 0;                           /* rbx */
	*--sp = (uint64_t)(uintptr_t)arg;    /* r12 */
	*--sp = (uint64_t)(uintptr_t)entry;  /* r13 */
	*--sp = 0;                           /* r14 */
	*--sp = 0;                           /* r15 */
	*--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
	ctx->sp = sp;
}
#elif defined(__aarch64__)
void green__ctx_init(struct green__ctx *ctx, void *stack_lo, size_t size,
                     void (*entry)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
	uint64_t *frame = (uint64_t *)(top - 176);
	uint64_t fpcr;

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	memset(frame, 0, 176);
	frame[0] = (uint64_t)(uintptr_t)arg;    /* x19 */
	frame[1] = (uint64_t)(uintptr_t)entry;  /* x20 */
	frame[10] = 0;                          /* x29 */
	frame[11] = (uint64_t)(uintptr_t)green__ctx_trampoline; /* x30 */
	frame[20] = fpcr;
	ctx->sp = frame;
}
#else
#error "no hand-written context switch for this machine: build with CTX=ucontext"
#endif

#endif /* !GREEN_CTX_UCONTEXT */
