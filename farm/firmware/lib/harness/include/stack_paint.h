/* Stack painting: the harness measures the stack the firmware really uses.
 *
 * At boot, outside any timed window, the reset code fills the stack region below its own
 * frame, [__stack_limit__, sp), with a pattern (harness_paint_stack, inlined there: it must
 * not push a frame into the region it paints). After the inferences harness_stack_used()
 * finds the lowest word that no longer holds the pattern: the high-water mark in bytes below
 * __stack_top__. The host reads it with READ_TIMING (protocol.h). Cortex-M and RV32 boards
 * of the emulated platform paint; the AVR and Arduino layers do not (no figure reported). */
#ifndef TINYFARM_STACK_PAINT_H
#define TINYFARM_STACK_PAINT_H

#include <stdint.h>

#if (defined(__ARM_ARCH) || defined(__riscv)) && !defined(ARDUINO)
#define HARNESS_STACK_PAINTED 1
#define HARNESS_STACK_PATTERN 0x5AC3A55Cu

extern uint32_t __stack_limit__, __stack_top__; /* the linker script's .stack section */

static inline __attribute__((always_inline)) void harness_paint_stack(void) {
  uint32_t *sp;
#if defined(__riscv)
  __asm volatile("mv %0, sp" : "=r"(sp));
#else
  __asm volatile("mov %0, sp" : "=r"(sp));
#endif
  /* volatile stores: the compiler may not turn the loop into a memset call, whose frame
   * would lie in the painted region */
  for (volatile uint32_t *p = &__stack_limit__; p < (volatile uint32_t *)sp; ++p) {
    *p = HARNESS_STACK_PATTERN;
  }
}

/* Bytes of stack used since boot (the painted high-water mark, from __stack_top__). */
uint32_t harness_stack_used(void);
/* Bytes reserved for the stack (__stack_top__ - __stack_limit__). */
uint32_t harness_stack_size(void);
#endif

#endif
