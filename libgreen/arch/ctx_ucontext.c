/*
 * ctx_ucontext.c - portable context switch on makecontext/swapcontext, for
 * machines without a hand-written switch.  swapcontext saves and restores
 * the signal mask with a syscall, so a switch costs ~30x the asm version.
 */
#include "arch/ctx.h"

#include <stdint.h>
#include <stdlib.h>

/* makecontext passes only ints; hand the real entry over through a pair. */
static void ctx_start(unsigned int hi_fn, unsigned int lo_fn, unsigned int hi_arg,
                      unsigned int lo_arg)
{
	void (*entry)(void *) =
	    (void (*)(void *))(((uintptr_t)hi_fn << 32) | (uintptr_t)lo_fn);
	void *arg = (void *)(((uintptr_t)hi_arg << 32) | (uintptr_t)lo_arg);
	entry(arg);
	abort(); /* entry never returns */
}

void green__ctx_init(struct green__ctx *ctx, void *stack_lo, size_t size,
                     void (*entry)(void *), void *arg)
{
	uintptr_t fn = (uintptr_t)entry, a = (uintptr_t)arg;

	getcontext(&ctx->uc);
	ctx->uc.uc_stack.ss_sp = stack_lo;
	ctx->uc.uc_stack.ss_size = size;
	ctx->uc.uc_link = NULL;
	makecontext(&ctx->uc, (void (*)(void))ctx_start, 4,
	            (unsigned int)(fn >> 32), (unsigned int)fn,
	            (unsigned int)(a >> 32), (unsigned int)a);
}

void green__ctx_switch(struct green__ctx *from, struct green__ctx *to)
{
	swapcontext(&from->uc, &to->uc);
}
