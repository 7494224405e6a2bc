/* SPDX-License-Identifier: MIT */
/*
 * ctx_switch.S - the G context switch of libchan-mpg: no system call, callee-saved registers
 * only (the switch is an ordinary function call, so the caller has saved everything else).
 *
 *   void mpg_ctx_switch(void **save_sp, void *to_sp);
 *       pushes the callee-saved registers on the current stack, stores the stack pointer in
 *       *save_sp, loads to_sp and pops the registers saved there, then returns on that stack.
 *   mpg_ctx_entry
 *       where a new stack's first switch "returns" to: calls fn(arg) with fn and arg taken from
 *       two callee-saved registers of the prepared frame (see fiber_prepare in fiber.c). fn never
 *       returns (a G leaves by switching away for good).
 *
 * The floating-point control words (x86 MXCSR and x87 CW, aarch64 FPCR) are not switched:
 * a G that changes them changes them for the M it runs on, as a thread would for itself.
 */
#if defined(__x86_64__)

    .text
    .globl  mpg_ctx_switch
    .hidden mpg_ctx_switch
    .type   mpg_ctx_switch, @function
    .p2align 4
mpg_ctx_switch:                 /* rdi = save_sp, rsi = to_sp */
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   mpg_ctx_switch, .-mpg_ctx_switch

    .globl  mpg_ctx_entry
    .hidden mpg_ctx_entry
    .type   mpg_ctx_entry, @function
    .p2align 4
mpg_ctx_entry:                  /* r12 = arg, r13 = fn; rsp is 16-byte aligned here */
    .cfi_startproc
    .cfi_undefined rip          /* the outermost frame of a G: unwinders stop here */
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   mpg_ctx_entry, .-mpg_ctx_entry

#elif defined(__aarch64__)

    .text
    .globl  mpg_ctx_switch
    .hidden mpg_ctx_switch
    .type   mpg_ctx_switch, %function
    .p2align 4
mpg_ctx_switch:                 /* x0 = save_sp, x1 = to_sp; AAPCS64: x19-x29, lr, d8-d15 */
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    ret
    .size   mpg_ctx_switch, .-mpg_ctx_switch

    .globl  mpg_ctx_entry
    .hidden mpg_ctx_entry
    .type   mpg_ctx_entry, %function
    .p2align 4
mpg_ctx_entry:                  /* x19 = arg, x20 = fn */
    mov     x0, x19
    blr     x20
    brk     #0
    .size   mpg_ctx_entry, .-mpg_ctx_entry

#else
#error "libchan-mpg: no context switch for this architecture (x86-64 and aarch64 only)"
#endif

    .section .note.GNU-stack, "", %progbits
