/*
 * ctx.h - the machine context of a greenlet and the one primitive that swaps
 * two of them.  The asm versions save only what the ABI makes callee-saved
 * (plus MXCSR/x87 control word, FPCR) on the running stack and swap stack
 * pointers, so a switch costs a handful of instructions and no syscall.  The
 * ucontext fallback is portable and much slower (swapcontext changes the
 * signal mask with a syscall).
 */
#ifndef GREEN_ARCH_CTX_H
#define GREEN_ARCH_CTX_H

#include <stddef.h>

#if defined(GREEN_CTX_UCONTEXT)
#include <ucontext.h>
struct green__ctx {
	ucontext_t uc;
};
#else
struct green__ctx {
	void *sp; /* saved stack pointer; registers live on that stack */
};
#endif

/*
 * Prepare ctx so that switching to it calls entry(arg) on the stack
 * [stack_lo, stack_lo + size).  entry must never return.
 */
void green__ctx_init(struct green__ctx *ctx, void *stack_lo, size_t size,
                     void (*entry)(void *), void *arg);

/* Save the running context into from and resume to. */
void green__ctx_switch(struct green__ctx *from, struct green__ctx *to);

#endif
