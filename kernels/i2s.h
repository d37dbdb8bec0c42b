// I2_S: bitnet.cpp's 2-bit ternary layout, and tritune's kernel layout for it.
//
// Storage (bitnet.cpp, x86, GGUF type 36): codes c = w + 1 in {0,1,2}. Rows are contiguous,
// K/4 bytes per row; every 128 consecutive weights of a row form a 32-byte block in which byte p
// holds w[p] in bits 7:6, w[32+p] in 5:4, w[64+p] in 3:2, w[96+p] in 1:0. After the n*k/4 code
// bytes a 32-byte tail holds the f32 per-tensor scale in its first 4 bytes. K must be a multiple
// of 128.
//
// Kernel layout "r16k16" (what the Halide kernels read): 16-row x 16-column tiles of 64 bytes.
// Byte b = 4*lane + r of tile (rt, kc) holds, in bits 2g+1:2g, the code of row 16*rt + lane,
// column 16*kc + 4*g + r. Decoding one shift+mask per g gives 16 rows x 4 consecutive columns:
// exactly the operand shape of a 4-way u8 x s8 dot product (VNNI vpdpbusd), so 16 rows accumulate
// in 16 int32 lanes with no horizontal reduction. Any N and K: rows pad to 16 with zero weights
// (code 1), columns pad to 16 with code 1 and the kernels' activations are zero there.
// The K tiles are split into `parts` equal runs (by default 2 when the tile count is even, 1 on
// AVX-512: i2s_default_parts): part s holds tiles [s * kq, (s + 1) * kq) of every row tile, row
// tile after row tile, and the parts follow each other. The AVX2 GEMV reads the parts side by
// side, so each core streams from `parts` places at once (one stream per core read 10-30%
// below what the memory delivers on a Zen 3 VM: kernels/roofline.cc); the AVX-512 one reads a
// row tile's parts in turn.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/formats.h"

namespace tritune {

constexpr int64_t kI2SBlock = 128;      // weights per storage block
constexpr int64_t kI2SBlockBytes = 32;  // bytes per storage block
constexpr int64_t kI2STail = 32;        // bytes after the codes (f32 scale + padding)

// Ternary values t[n*k] in {-1,0,1} + scale -> I2_S storage. Throws on K % 128 != 0.
PackedWeights i2s_pack_ternary(const int8_t* t, int64_t n, int64_t k, float scale);
// I2_S storage -> ternary values (n*k). Throws on a code 3 (not produced by any packer).
std::vector<int8_t> i2s_unpack_ternary(const PackedWeights& p);
// Reads the scale from the tail.
float i2s_tail_scale(const uint8_t* data, int64_t n, int64_t k);

// The kernel layout.
// Largest K the I2_S kernels accept: decode=mask accumulates code * 4^g * x, up to
// 128 * 127 * K / 4 per group, which must fit int32. Linear::create refuses larger layers.
constexpr int64_t kI2SMaxK = int64_t(1) << 19;

// Parts of K the layout uses by default: on CPUs whose GEMV walks the parts side by side
// (below AVX-512) 2 when k16 is even, else 1; on AVX-512 1 (its GEMV reads them in turn).
constexpr int64_t kI2SParts = 2;
int64_t i2s_default_parts(int64_t k16, Isa isa = selected_isa());

struct I2SKernelWeights {
  int64_t n = 0, k = 0;      // logical shape
  int64_t n16 = 0, k16 = 0;  // tiles: rows/16, columns/16 (rounded up)
  int64_t parts = 1;         // K split into this many runs of kq() tiles (k16 % parts == 0)
  WeightBytes tiles;         // n16 * k16 * 64 bytes, tile (rt, kc) at tile_offset(rt, kc)
  float scale = 1.0f;
  int64_t k_pad() const { return k16 * 16; }
  int64_t n_pad() const { return n16 * 16; }
  int64_t kq() const { return k16 / parts; }
  int64_t part_bytes() const { return n16 * kq() * 64; }
  int64_t tile_offset(int64_t rt, int64_t kc) const {
    return (kc / kq()) * part_bytes() + (rt * kq() + kc % kq()) * 64;
  }
};

// A run of whole row tiles of the kernel layout, wherever they live (one layer's own buffer or
// its slice of a fused group's): what the kernels read.
// Its bytes are `parts` runs of part_bytes(), part_stride apart (one run when they follow each
// other: a layer's own buffer).
struct I2STiles {
  const uint8_t* data = nullptr;
  int64_t n = 0, k = 0, n16 = 0, k16 = 0;
  int64_t parts = 1, part_stride = 0;
  int64_t k_pad() const { return k16 * 16; }
  int64_t n_pad() const { return n16 * 16; }
  int64_t kq() const { return k16 / parts; }
  int64_t bytes() const { return n16 * k16 * 64; }
  int64_t part_bytes() const { return n16 * kq() * 64; }
};
// Rows [16 * tile0, 16 * tile0 + n) of w's tiles (a fused group's member).
inline I2STiles tile_rows(const I2SKernelWeights& w, int64_t tile0, int64_t n) {
  return {
      w.tiles.data() + tile0 * w.kq() * 64, n, w.k, (n + 15) / 16, w.k16, w.parts, w.part_bytes()};
}
inline I2STiles tiles_of(const I2SKernelWeights& w) {
  return tile_rows(w, 0, w.n);
}

// The layout of an n x k matrix (k16 = k / 16 rounded up) with its tiles allocated, contents
// unset. parts = 0: i2s_default_parts(k16); else it must divide k16 (throws otherwise).
I2SKernelWeights i2s_alloc(int64_t n, int64_t k, float scale, int64_t parts = 0);
// parts as for i2s_alloc.
I2SKernelWeights i2s_tile_ternary(const int8_t* t, int64_t n, int64_t k, float scale,
                                  int64_t parts = 0);
// Repack step from bitnet.cpp storage (round-trip tested against i2s_untile).
I2SKernelWeights i2s_repack(const PackedWeights& p, int64_t parts = 0);
// The same into row tiles [tile0, tile0 + (n + 15) / 16) of `w` (its k16 must be p's, its tiles
// allocated). Checks the storage like i2s_repack.
void i2s_repack_into(const PackedWeights& p, I2SKernelWeights& w, int64_t tile0);
// Why i2s_repack would refuse p (not i2_s, impossible shape, short storage); empty if it would
// not.
std::string i2s_storage_problem(const PackedWeights& p);
std::vector<int8_t> i2s_untile(const I2SKernelWeights& w);

// Scalar integer reference on the kernel layout: raw[t*ldy + n] = sum_k x_q[t][k] * t[n][k]
// for n < w.n. Always compiled: the fallback on any CPU and the kernels' test oracle.
void i2s_ref_gemm_tiled(const I2SKernelWeights& w, const QuantizedActs& a, int32_t* raw,
                        int64_t ldy);

// The float epilogue every I2_S path uses (bitnet.cpp order): raw / act_scale * w_scale.
inline float i2s_dequant(int32_t raw, float act_scale, float w_scale) {
  return (float)raw / act_scale * w_scale;
}

}  // namespace tritune
