/* Start-up and trap reporting for RV32 boards: .data copy, .bss clear, main(),
 * and the trap handler that reports mcause, mepc and mtval over the UART
 * (fault.h) — an illegal instruction (e.g. an F-extension instruction on a core
 * without an FPU) becomes a decoded sentence on the host, not a hang. The entry
 * points in assembly are in startup_riscv_entry.S. */
#if defined(__riscv) && !defined(ARDUINO) /* Arduino cores bring their own */

#include <stdint.h>
#include <string.h>

#include "fault.h"
#include "stack_paint.h"

extern uint32_t __data_start__, __data_end__, __data_load__;
extern uint32_t __bss_start__, __bss_end__;

int main(void);
void riscv_reset(void) __attribute__((noreturn, used));
void riscv_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval) __attribute__((noreturn, used));

void riscv_reset(void) {
  memcpy(&__data_start__, &__data_load__,
         (size_t)((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__));
  memset(&__bss_start__, 0, (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__));
  harness_paint_stack(); /* at boot: the timed windows are not touched */
  main();
  for (;;) {
  }
}

void riscv_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval) {
  const uint32_t words[4] = {FAULT_ARCH_RISCV, mcause, mepc, mtval};
  fault_report(words, 4);
}

#endif
