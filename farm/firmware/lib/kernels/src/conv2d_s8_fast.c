/* int8 2-D convolution, optimized (CMSIS-NN arm_convolve_s8 style): the
 * receptive fields of two output pixels are gathered into `scratch` (im2col,
 * 2 x depth bytes, depth = kernel_h x kernel_w x input_channels; then, 4-byte
 * aligned, TF_MAT_MULT_EXT_WORDS(depth) words for mat_mult_s8.c), taps
 * outside the input filled with the input zero point (= -input_offset: their
 * share of the host-folded offset then cancels, as the reference skips them),
 * and multiplied by the weights pre-arranged by 4 rows (mat_mult_s8.h).
 * Not grouped (filter_dims->c == input_dims->c). Bit-exact with conv2d_s8.
 *
 * The gather walks the output pixels in order (batch, row, column) with
 * running coordinates, no division. Per output row, the kernel rows inside the
 * input are found once; per pixel, whether its kernel columns all are. An
 * interior pixel (dilation_w 1) copies kernel_h runs of kernel_w x
 * input_channels contiguous bytes (one run when they follow each other in the
 * input), no bound check per tap; a border pixel fills its whole column with
 * the zero point, then copies the rectangle of taps inside the input over it
 * (one run per kernel row inside; tap by tap when dilated along x). Runs move
 * 16-byte blocks (LDM/STM) when source, destination and steps are
 * word-aligned, else words (unaligned LDR/STR where the core has them,
 * Armv7-M: a run's last, partial word is its last 4 bytes, over some already
 * moved), else bytes; never a byte outside the run, read or written.
 * In-place safety (farm/codegen/inplace.py, RasterOrder(block=2,
 * buffered=True, along="flat")): each pixel pair is gathered, reading only its
 * receptive fields, before the matrix multiply writes its outputs. */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "mat_mult_s8.h"

#ifndef TF_UNALIGNED_WORDS /* LDR/STR of any address (Armv7-M); the host tests set it either way */
#if defined(__ARM_FEATURE_UNALIGNED)
#define TF_UNALIGNED_WORDS 1
#else
#define TF_UNALIGNED_WORDS 0
#endif
#endif

#define TF_INLINE static inline __attribute__((always_inline))

typedef struct {
  uint32_t w[4];
} block16;

TF_INLINE int aligned4(const void *a, const void *b, int32_t n) {
  return ((((uintptr_t)a | (uintptr_t)b) | (uint32_t)n) & 3u) == 0;
}

/* n >= 0 bytes, any alignment. */
TF_INLINE void copy_any(int8_t *dst, const int8_t *src, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __builtin_memcpy(dst + i, src + i, 8);
  }
#if TF_UNALIGNED_WORDS
  if (n >= 4) {
    if (i + 4 <= n) {
      __builtin_memcpy(dst + i, src + i, 4);
    }
    __builtin_memcpy(dst + n - 4, src + n - 4, 4); /* the last bytes, over some already copied */
    return;
  }
#else
  if (i + 4 <= n) {
    __builtin_memcpy(dst + i, src + i, 4);
    i += 4;
  }
#endif
  if (n & 2) {
    __builtin_memcpy(dst + i, src + i, 2);
    i += 2;
  }
  if (n & 1) {
    dst[i] = src[i];
  }
}

/* One 16-byte block, both word-aligned, the pointers moved past it. */
TF_INLINE void copy_block(uint32_t **dst, const uint32_t **src) {
#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 2
  __asm__ volatile("ldmia %[s]!, {r4, r5, r6, r8}\n\tstmia %[d]!, {r4, r5, r6, r8}"
                   : [d] "+r"(*dst), [s] "+r"(*src)
                   :
                   : "r4", "r5", "r6", "r8", "memory");
#else
  block16 *d = (block16 *)(void *)*dst;
  *d = *(const block16 *)(const void *)*src;
  *dst += 4;
  *src += 4;
#endif
}

/* `rows` runs of n > 0 bytes: run r from src + r * src_step to dst + r * dst_step. */
static void copy_rect(int8_t *dst, int32_t dst_step, const int8_t *src, int32_t src_step, int32_t n, int32_t rows) {
  if (aligned4(dst, src, n | src_step | dst_step)) { /* 16-byte blocks (LDM/STM), then words */
    const int32_t blocks = n >> 4, words = (n >> 2) & 3;
    for (; rows > 0; --rows, dst += dst_step, src += src_step) {
      uint32_t *d = (uint32_t *)(void *)dst;
      const uint32_t *s = (const uint32_t *)(const void *)src;
      for (int32_t b = blocks; b > 0; --b) {
        copy_block(&d, &s);
      }
      for (int32_t w = words; w > 0; --w) {
        *d++ = *s++;
      }
    }
    return;
  }
#if TF_UNALIGNED_WORDS
  /* unaligned words, the last one the run's last 4 bytes (over some already copied) */
  if (n >= 4 && n <= 8) {
    for (; rows > 0; --rows, dst += dst_step, src += src_step) {
      uint32_t a, b;
      __builtin_memcpy(&a, src, 4);
      __builtin_memcpy(&b, src + n - 4, 4);
      __builtin_memcpy(dst, &a, 4);
      __builtin_memcpy(dst + n - 4, &b, 4);
    }
    return;
  }
  if (n > 8 && n <= 12) {
    for (; rows > 0; --rows, dst += dst_step, src += src_step) {
      uint32_t a, b, c;
      __builtin_memcpy(&a, src, 4);
      __builtin_memcpy(&b, src + 4, 4);
      __builtin_memcpy(&c, src + n - 4, 4);
      __builtin_memcpy(dst, &a, 4);
      __builtin_memcpy(dst + 4, &b, 4);
      __builtin_memcpy(dst + n - 4, &c, 4);
    }
    return;
  }
#endif
  for (; rows > 0; --rows, dst += dst_step, src += src_step) {
    copy_any(dst, src, n);
  }
}

/* n >= 0 bytes of the zero point (v4: in each byte of the word). */
static void fill(int8_t *dst, uint32_t v4, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __builtin_memcpy(dst + i, &v4, 4);
    __builtin_memcpy(dst + i + 4, &v4, 4);
  }
  if (i + 4 <= n) {
    __builtin_memcpy(dst + i, &v4, 4);
    i += 4;
  }
#if TF_UNALIGNED_WORDS
  if (i < n && n >= 4) {
    __builtin_memcpy(dst + n - 4, &v4, 4); /* the last bytes, over some already filled */
    return;
  }
#endif
  if (n & 2) {
    __builtin_memcpy(dst + i, &v4, 2);
    i += 2;
  }
  if (n & 1) {
    dst[i] = (int8_t)v4;
  }
}

/* What the gather of one layer needs, computed once. */
typedef struct {
  int32_t in_h, in_w, in_c;
  int32_t k_h, k_w;
  int32_t dil_h, dil_w;
  int32_t span_w;    /* (k_w - 1) * dil_w + 1: the input columns a pixel spans */
  int32_t row_bytes; /* k_w * in_c: one kernel row of the column */
  int32_t in_row;    /* in_w * in_c: one input row */
  int32_t tap_row;   /* dil_h * in_row: from one kernel row to the next in the input */
  uint32_t pad4;     /* the zero point in each byte */
} geometry;

/* The kernel rows inside the input, [*ky_lo, *ky_hi), of the output rows whose first kernel row is input row iy0. */
static void rows_inside(const geometry *g, int32_t iy0, int32_t *ky_lo, int32_t *ky_hi) {
  int32_t lo = 0, hi = g->k_h;
  while (lo < hi && iy0 + lo * g->dil_h < 0) {
    ++lo;
  }
  while (hi > lo && iy0 + (hi - 1) * g->dil_h >= g->in_h) {
    --hi;
  }
  *ky_lo = lo;
  *ky_hi = hi;
}

/* The column of a pixel some of whose taps are outside the input (or dilated
 * along x): all zero point, then the taps inside copied over it. Kernel rows
 * [ky_lo, ky_hi) are inside, the first of them at in + row (bytes); the
 * kernel's first column is input column ix0. */
__attribute__((noinline)) static void gather_border(int8_t *col, const geometry *g, const int8_t *in, int32_t row,
                                                  int32_t ky_lo, int32_t ky_hi, int32_t ix0) {
  const int32_t row_bytes = g->row_bytes, in_c = g->in_c;
  fill(col, g->pad4, g->k_h * row_bytes);
  if (ky_hi <= ky_lo) {
    return;
  }
  col += ky_lo * row_bytes;
  if (g->dil_w == 1) {
    const int32_t kx_lo = ix0 < 0 ? -ix0 : 0, kx_hi = g->in_w - ix0 < g->k_w ? g->in_w - ix0 : g->k_w;
    if (kx_hi > kx_lo) {
      copy_rect(col + kx_lo * in_c, row_bytes, in + row + (ix0 + kx_lo) * in_c, g->tap_row, (kx_hi - kx_lo) * in_c,
                ky_hi - ky_lo);
    }
  } else {
    for (int32_t kx = 0, ix = ix0; kx < g->k_w; ++kx, ix += g->dil_w) {
      if (ix >= 0 && ix < g->in_w) {
        copy_rect(col + kx * in_c, row_bytes, in + row + ix * in_c, g->tap_row, in_c, ky_hi - ky_lo);
      }
    }
  }
}

tf_status conv2d_s8_fast(const tf_conv_params_s8 *params, const tf_out_stage_s8 *stage,
                         const tf_dims *input_dims, const int8_t *input,
                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                         const tf_dims *output_dims, int8_t *output, int8_t *scratch) {
  if (params == NULL || stage == NULL || stage->channels == NULL || input_dims == NULL || input == NULL || filter_dims == NULL ||
      packed_filter == NULL || output_dims == NULL || output == NULL || scratch == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t rows = filter_dims->n;
  const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
  if (filter_dims->c != input_dims->c || output_dims->c != rows || output_dims->n != input_dims->n) {
    return TF_ERROR_SHAPE;
  }
  if (stage->activation_min > stage->activation_max) {
    return TF_ERROR_PARAMS;
  }
  const tf_window *win = &params->window;
  geometry g;
  g.in_h = input_dims->h;
  g.in_w = input_dims->w;
  g.in_c = input_dims->c;
  g.k_h = filter_dims->h;
  g.k_w = filter_dims->w;
  g.dil_h = win->dilation_h;
  g.dil_w = win->dilation_w;
  g.span_w = (g.k_w - 1) * g.dil_w + 1;
  g.row_bytes = g.k_w * g.in_c;
  g.in_row = g.in_w * g.in_c;
  g.tap_row = g.dil_h * g.in_row;
  g.pad4 = 0x01010101u * (uint8_t)(int8_t)(-params->input_offset);
  uint32_t *ext = (uint32_t *)(void *)(scratch + ((2 * depth + 3) & ~3));
  const int32_t out_h = output_dims->h, out_w = output_dims->w;
  const int32_t pixels = input_dims->n * out_h * out_w;
  /* interior kernel rows: one run per pixel when they follow each other in the input */
  const int32_t run = g.tap_row == g.row_bytes ? g.k_h * g.row_bytes : g.row_bytes;
  const int32_t runs = g.tap_row == g.row_bytes ? 1 : g.k_h;
  /* the next pixel: its batch (at input + base), output row (by its first input row iy0), output
   * column (by its first input column ix0); the kernel rows of its output row inside the input,
   * the first at input + row (bytes), and whether they all are */
  int32_t base = 0, ox = 0, rows_left = out_h, iy0 = -win->pad_h, ix0 = -win->pad_w;
  int32_t ky_lo, ky_hi;
  rows_inside(&g, iy0, &ky_lo, &ky_hi);
  int32_t row = base + (iy0 + ky_lo * g.dil_h) * g.in_row;
  int32_t full = ky_lo == 0 && ky_hi == g.k_h && g.dil_w == 1;
  int8_t *out = output;
  for (int32_t p = 0; p < pixels; p += 2) {
    const int32_t count = pixels - p < 2 ? 1 : 2;
    for (int32_t j = 0; j < count; ++j) {
      int8_t *col = scratch + j * depth;
      if (full && ix0 >= 0 && ix0 + g.span_w <= g.in_w) {
        copy_rect(col, run, input + row + ix0 * g.in_c, g.tap_row, run, runs);
      } else {
        gather_border(col, &g, input, row, ky_lo, ky_hi, ix0);
      }
      ix0 += win->stride_w;
      if (++ox == out_w) { /* the next output row, maybe of the next batch */
        ox = 0;
        ix0 = -win->pad_w;
        iy0 += win->stride_h;
        if (--rows_left == 0) {
          rows_left = out_h;
          iy0 = -win->pad_h;
          base += g.in_h * g.in_row;
        }
        rows_inside(&g, iy0, &ky_lo, &ky_hi);
        row = base + (iy0 + ky_lo * g.dil_h) * g.in_row;
        full = ky_lo == 0 && ky_hi == g.k_h && g.dil_w == 1;
      }
    }
    tf_mat_mult_s8_g2(packed_filter, rows, depth, scratch, count == 2 ? scratch + depth : NULL, stage, out,
                      count == 2 ? out + rows : NULL, ext);
    out += count * rows;
  }
  return TF_OK;
}
