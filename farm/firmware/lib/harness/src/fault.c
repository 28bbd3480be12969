#include "fault.h"

#include "protocol.h"

void fault_report(const uint32_t *words, unsigned count) {
  uint8_t payload[4 * 16];
  if (count > 16u) {
    count = 16u;
  }
  for (unsigned i = 0; i < count; ++i) {
    payload[4 * i + 0] = (uint8_t)(words[i]);
    payload[4 * i + 1] = (uint8_t)(words[i] >> 8);
    payload[4 * i + 2] = (uint8_t)(words[i] >> 16);
    payload[4 * i + 3] = (uint8_t)(words[i] >> 24);
  }
  proto_send(PROTO_FAULT, payload, 4u * count);
  for (;;) {
  }
}
