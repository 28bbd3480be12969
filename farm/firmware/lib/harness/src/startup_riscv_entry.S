/* Reset and trap entry for RV32 boards (sifive_e). The C side is startup_riscv.c.
 *
 * _start sits at the start of flash (.text.init), where the mask ROM jumps. The
 * trap vector (direct mode) takes a fresh stack, because the trap may come from
 * a broken one, and hands mcause, mepc and mtval to riscv_trap(), which reports
 * them over the UART (fault.h) instead of hanging. */
#if defined(__riscv) && !defined(ARDUINO)

  .section .text.init, "ax", @progbits
  .globl _start
  .type _start, @function
_start:
  csrw mie, zero              /* no interrupts are used */
  la sp, __stack_top__
  la t0, riscv_trap_entry
  csrw mtvec, t0
  call riscv_reset
1:
  j 1b
  .size _start, . - _start

  .section .text.riscv_trap_entry, "ax", @progbits
  .globl riscv_trap_entry
  .type riscv_trap_entry, @function
  .balign 4                   /* mtvec in direct mode needs 4-byte alignment */
riscv_trap_entry:
  la sp, __stack_top__
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call riscv_trap
2:
  j 2b
  .size riscv_trap_entry, . - riscv_trap_entry

#endif
