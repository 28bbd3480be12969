/* Shared by the binary element-wise kernels (add_*, mul_*): NumPy-style
 * broadcasting over NHWC dims. Each input dim equals the output's or is 1; a
 * dim of 1 against a larger output dim gets stride 0. Private to the library. */
#ifndef TF_BROADCAST_H
#define TF_BROADCAST_H

#include <stdint.h>

#include "tf_types.h"

typedef struct {
  int32_t n;
  int32_t h;
  int32_t w;
  int32_t c;
} tf_strides;

/* 1 when `dims` broadcasts to `out`, and its strides in `strides`; else 0. */
static inline int tf_broadcast_strides(const tf_dims *dims, const tf_dims *out, tf_strides *strides) {
  const int32_t d[4] = {dims->n, dims->h, dims->w, dims->c};
  const int32_t o[4] = {out->n, out->h, out->w, out->c};
  int32_t s[4];
  int32_t step = 1;
  for (int i = 3; i >= 0; --i) {
    if (d[i] != o[i] && d[i] != 1) {
      return 0;
    }
    s[i] = (d[i] == 1 && o[i] != 1) ? 0 : step;
    step *= d[i];
  }
  strides->n = s[0];
  strides->h = s[1];
  strides->w = s[2];
  strides->c = s[3];
  return 1;
}

static inline int tf_same_dims(const tf_dims *a, const tf_dims *b) {
  return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

#endif /* TF_BROADCAST_H */
