// The ggml tensor type table: ids, block sizes, byte sizes, dequantizers and the few quantizers
// tritune needs to WRITE files (synthetic models, `tritune convert`). One table: the GGUF reader
// validates sizes with it, the loaders dequantize with it, `tritune inspect` names types with it.
//
// Layouts (ggml-common.h; all little-endian, f16 = IEEE binary16):
//   Q8_0   32 per block, 34 bytes:  f16 d, int8 qs[32];                 x = d * q
//   Q6_K  256 per block, 210 bytes: u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
//                                   int8 scales[16] (one per 16 values), f16 d;
//                                   x = d * scales[j/16] * (q6 - 32)
//   TQ1_0 256 per block, 54 bytes:  u8 qs[48] (5 trits/byte), u8 qh[4] (4 trits/byte), f16 d
//   TQ2_0 256 per block, 66 bytes:  u8 qs[64] (2 bits/value, code w+1), f16 d
//   I2_S  bitnet.cpp (type 36): n/4 bytes of 2-bit codes (see kernels/i2s.h) + a 32-byte tail
//         whose first 4 bytes are the f32 per-tensor scale. Not a block type: its byte size is
//         a property of the whole tensor (tensor_bytes() special-cases it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"

namespace tritune::ggml {

enum Type : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kI2_S = 36,  // bitnet.cpp fork only
};

// Dequantizes `n` consecutive values (n a multiple of the block size) starting at a block
// boundary. I2_S has no dequantizer of this kind (its scale is in the tensor tail): use
// dequantize_rows().
using DequantFn = void (*)(const uint8_t* src, float* dst, int64_t n);

struct TypeInfo {
  uint32_t id;
  const char* name;     // "Q8_0", as gguf-py / llama.cpp spell it
  int64_t block;        // values per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  DequantFn dequant;    // nullptr: tritune cannot read values of this type
};

// nullptr for ids not in the table.
const TypeInfo* find_type(uint32_t id);
// "Q6_K", or "type 99 (unknown)" / a hint for bitnet.cpp's other fork-only ids.
std::string type_name(uint32_t id);
// Names of the types whose values tritune can read (for error messages).
std::string readable_type_names();
// True if dequantize_rows() supports the type.
bool can_dequantize(uint32_t id);

// Byte size of a tensor of type `id` with dims ne (ne[0] contiguous). Throws Error (message
// starts with `what`) on an unknown type, negative dims, ne[0] not a multiple of the block, or
// int64 overflow. Never allocates anything proportional to the dims.
int64_t tensor_bytes(uint32_t id, const std::vector<int64_t>& ne, const std::string& what);
// Bytes of one row of ne0 values (I2_S: ne0/4; its tail belongs to the whole tensor).
int64_t row_bytes(uint32_t id, int64_t ne0);

// Dequantizes rows [row0, row0 + count) of a matrix whose rows have `cols` values, whose whole
// tensor (`nrows` rows) starts at `tensor` (I2_S needs the tensor start to find its tail scale).
void dequantize_rows(uint32_t id, const uint8_t* tensor, int64_t cols, int64_t nrows, int64_t row0,
                     int64_t count, float* out);

// ---- quantizers (for writers) ----------------------------------------------------------------
// All take n values (a multiple of the block size) and write row_bytes(type, n) bytes; a NaN,
// an infinity or a magnitude beyond what the type's f16 block scale holds throws Error naming
// its index.
void quantize_q8_0(const float* x, uint8_t* dst, int64_t n);
// Q6_K: each 16-value group's step found by a small weighted least-squares search (the
// approach of ggml's reference quantizer), the steps as int8 multiples of one f16 scale per
// 256 values. The dequantizer is the exact ggml one.
// The step search is vectorized per ISA level (selected_isa(); the overload names one the CPU
// supports); every level writes the same bytes.
void quantize_q6_k(const float* x, uint8_t* dst, int64_t n);
void quantize_q6_k(const float* x, uint8_t* dst, int64_t n, Isa isa);
// llama.cpp's ternary quantizers: d = max|x| per 256-block, code = round(x/d) + 1.
void quantize_tq1_0(const float* x, uint8_t* dst, int64_t n);
void quantize_tq2_0(const float* x, uint8_t* dst, int64_t n);
// Ternary values t (n, in {-1,0,1}) with one scale: every block with a nonzero value gets
// d = f16(scale), all-zero blocks get d = 0 (what quantize_tq*_0 gives for t * scale).
void pack_tq1_0(const int8_t* t, float scale, uint8_t* dst, int64_t n);
void pack_tq2_0(const int8_t* t, float scale, uint8_t* dst, int64_t n);
// Trits and per-block f16 scales of TQ data (n values; d gets n/256 raw f16 bit patterns).
// TQ2_0 code 3 is not ternary: throws Error naming the value index.
void unpack_tq1_0(const uint8_t* src, int64_t n, int8_t* t, uint16_t* d);
void unpack_tq2_0(const uint8_t* src, int64_t n, int8_t* t, uint16_t* d);

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
// Round to nearest even; NaN stays NaN.
uint16_t float_to_bf16(float f);

}  // namespace tritune::ggml
