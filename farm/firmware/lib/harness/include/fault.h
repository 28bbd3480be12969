/* Fault reporting: instead of hanging in a `b .` loop, a fault handler sends one
 * PROTO_FAULT frame with the fault status registers, then halts.
 *
 * Payload (all u32 LE): arch (1 = ARMv7-M/ARMv8-M, 2 = RISC-V, 3 = AVR), then
 *   ARM:    exception number, CFSR, HFSR, MMFAR, BFAR, stacked PC, stacked LR, stacked xPSR
 *   RISC-V: mcause, mepc, mtval
 *   AVR:    cause (1 = an interrupt without a handler), SP */
#ifndef TINYFARM_FAULT_H
#define TINYFARM_FAULT_H

#include <stdint.h>

#define FAULT_ARCH_ARM 1u
#define FAULT_ARCH_RISCV 2u
#define FAULT_ARCH_AVR 3u

void fault_report(const uint32_t *words, unsigned count) __attribute__((noreturn));

#endif
