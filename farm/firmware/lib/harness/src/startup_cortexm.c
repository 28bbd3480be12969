/* Start-up and fault handlers for ARMv7-M / ARMv8-M cores: vector table, .data
 * copy, .bss clear, FPU enable when the build is hard-float, and fault handlers
 * that report the fault registers over the UART (fault.h) instead of hanging. */
#if defined(__ARM_ARCH) && !defined(__riscv) && !defined(ARDUINO) /* Arduino cores bring their own */

#include <stdint.h>
#include <string.h>

#include "fault.h"
#include "stack_paint.h"

extern uint32_t __data_start__, __data_end__, __data_load__;
extern uint32_t __bss_start__, __bss_end__, __stack_top__;

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used)) void (*const g_vectors[16 + 32])(void) = {
    (void (*)(void))(&__stack_top__),
    Reset_Handler,
    Default_Handler, /* NMI */
    Fault_Handler,   /* HardFault */
    Fault_Handler,   /* MemManage */
    Fault_Handler,   /* BusFault */
    Fault_Handler,   /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick: not used (board_mps2.c times with the dual timer) */
    /* external interrupts: none used; reported like a fault if they fire */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler,
};

void Reset_Handler(void) {
  memcpy(&__data_start__, &__data_load__,
         (size_t)((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__));
  memset(&__bss_start__, 0, (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__));
  SCB_VTOR = (uint32_t)(uintptr_t)g_vectors;
  /* MemManage, BusFault and UsageFault get their own exception instead of
   * escalating to HardFault, so the report says which it was. */
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
#if defined(__ARM_FP)
  /* Hard-float build: grant full access to CP10/CP11. On a core without an FPU
   * the first VFP instruction then takes a UsageFault (NOCP), which is reported. */
  SCB_CPACR |= (0xFu << 20);
  __asm volatile("dsb\n\tisb" ::: "memory");
#endif
  harness_paint_stack(); /* at boot: the timed windows are not touched */
  main();
  for (;;) {
  }
}

/* Called from Fault_Handler with the stacked exception frame. */
__attribute__((used, noreturn)) void fault_dispatch(const uint32_t *frame) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  const uint32_t words[9] = {
      FAULT_ARCH_ARM, ipsr & 0x1FFu, SCB_CFSR, SCB_HFSR, SCB_MMFAR, SCB_BFAR,
      frame[6], /* stacked PC */
      frame[5], /* stacked LR */
      frame[7], /* stacked xPSR */
  };
  fault_report(words, 9);
}

/* Pick the stack the frame was pushed on (EXC_RETURN bit 2) and hand it on. */
__attribute__((naked)) void Fault_Handler(void) {
  __asm volatile(
      "tst lr, #4\n\t"
      "ite eq\n\t"
      "mrseq r0, msp\n\t"
      "mrsne r0, psp\n\t"
      "b fault_dispatch\n\t");
}

void Default_Handler(void) { Fault_Handler(); }

#endif
