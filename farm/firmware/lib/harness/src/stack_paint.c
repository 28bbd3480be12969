/* The painted stack's high-water mark (stack_paint.h). */
#include "stack_paint.h"

#if defined(HARNESS_STACK_PAINTED)

uint32_t harness_stack_used(void) {
  const volatile uint32_t *p = &__stack_limit__;
  const volatile uint32_t *top = &__stack_top__;
  while (p < top && *p == HARNESS_STACK_PATTERN) {
    ++p;
  }
  return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

uint32_t harness_stack_size(void) {
  return (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_limit__);
}

#endif
