/*
 * ctx_aarch64.S - greenlet context switch for AAPCS64.
 *
 * Callee-saved state is x19-x28, the frame pointer x29, the link register
 * x30, the low halves of v8-v15 (d8-d15) and FPCR.  It is stored in a
 * 176-byte frame on the running stack before sp moves, so sp always points
 * into a valid stack.
 */
	.text

/* void green__ctx_switch(struct green__ctx *from, struct green__ctx *to) */
	.globl	green__ctx_switch
	.hidden	green__ctx_switch
	.type	green__ctx_switch, %function
	.p2align 4
green__ctx_switch:
	.cfi_startproc
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.cfi_endproc
	.size	green__ctx_switch, .-green__ctx_switch

/* First code a new context runs: argument in x19, entry function in x20. */
	.globl	green__ctx_trampoline
	.hidden	green__ctx_trampoline
	.type	green__ctx_trampoline, %function
	.p2align 4
green__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x19
	blr	x20
	brk	#0
	.cfi_endproc
	.size	green__ctx_trampoline, .-green__ctx_trampoline

	.section .note.GNU-stack,"",%progbits
