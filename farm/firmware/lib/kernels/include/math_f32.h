/* Float helpers of the float32 kernels (no libm on the boards: the firmware
 * links the C library and libgcc only). */
#ifndef TF_MATH_F32_H
#define TF_MATH_F32_H

/* e^x for float x, within 2 ulp; +inf above ~88.72, 0 below ~-103.97, NaN stays NaN. */
float tf_expf(float x);

#endif /* TF_MATH_F32_H */
