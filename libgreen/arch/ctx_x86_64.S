/*
 * ctx_x86_64.S - greenlet context switch for the System V x86_64 ABI.
 *
 * A suspended context is its stack pointer; below it on its own stack lie
 * rbp, rbx, r12-r15, MXCSR and the x87 control word, and the return address.
 * Everything is pushed onto the running stack before rsp moves, so rsp never
 * points outside a valid stack (a signal arriving mid-switch is safe).
 */
	.text

/* void green__ctx_switch(struct green__ctx *from, struct green__ctx *to) */
	.globl	green__ctx_switch
	.hidden	green__ctx_switch
	.type	green__ctx_switch, @function
	.p2align 4
green__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	/* The other stack has the same layout, so the rules above describe
	 * it as well: an unwinder stopped from here on walks into the
	 * context being resumed. */
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbp
	ret
	.cfi_endproc
	.size	green__ctx_switch, .-green__ctx_switch

/*
 * First code a new context runs: green__ctx_init leaves the argument in r12
 * and the entry function in r13.  rip is marked undefined so debuggers and
 * unwinders stop here instead of walking into garbage.
 */
	.globl	green__ctx_trampoline
	.hidden	green__ctx_trampoline
	.type	green__ctx_trampoline, @function
	.p2align 4
green__ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	green__ctx_trampoline, .-green__ctx_trampoline

	.section .note.GNU-stack,"",@progbits
