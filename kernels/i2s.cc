#include "kernels/i2s.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/env.h"
#include "kernels/error.h"

namespace tritune {

namespace {

void check_ternary_value(int8_t v, int64_t idx) {
  if (v < -1 || v > 1) {
    throw Error("i2_s: weight " + std::to_string(idx) + " is " + std::to_string((int)v) +
                ", not in {-1, 0, +1}; ternarize first (ternarize_absmean)");
  }
}

// Row r of I2_S storage (k / 4 bytes at `in`) -> its k codes in {0,1,2}, in column order.
// Throws Error naming the row and column of a code 3 (not produced by any packer).
void decode_storage_row(const uint8_t* in, int64_t k, int64_t r, uint8_t* codes) {
  uint8_t bad = 0;  // bit 0 of a 2-bit field set where both bits are: code 3
  for (int64_t blk = 0; blk < k / kI2SBlock; ++blk) {
    const uint8_t* b = in + blk * kI2SBlockBytes;
    uint8_t* c = codes + blk * kI2SBlock;
    for (int64_t i = 0; i < kI2SBlockBytes; ++i) {
      const uint8_t v = b[i];
      bad |= (uint8_t)(v & (v >> 1) & 0x55);
      c[i] = (uint8_t)(v >> 6);
      c[32 + i] = (uint8_t)((v >> 4) & 3);
      c[64 + i] = (uint8_t)((v >> 2) & 3);
      c[96 + i] = (uint8_t)(v & 3);
    }
  }
  if (!bad) return;
  for (int64_t col = 0; col < k; ++col) {
    if (codes[col] == 3) {
      throw Error("i2_s: code 3 (unused) at row " + std::to_string(r) + " column " +
                  std::to_string(col) + "; the tensor is corrupt or not I2_S");
    }
  }
}

}  // namespace

PackedWeights i2s_pack_ternary(const int8_t* t, int64_t n, int64_t k, float scale) {
  if (n <= 0 || k <= 0) {
    throw Error("i2_s: impossible shape " + std::to_string(n) + "x" + std::to_string(k));
  }
  if (k % kI2SBlock != 0) {
    throw Error("i2_s: K=" + std::to_string(k) +
                " is not a multiple of 128 (bitnet.cpp's I2_S block); use the kernel layout "
                "directly (i2s_tile_ternary) or pad K to " +
                std::to_string((k + kI2SBlock - 1) / kI2SBlock * kI2SBlock));
  }
  PackedWeights p;
  p.format = Format::kI2S;
  p.n = n;
  p.k = k;
  p.scale = scale;
  const int64_t code_bytes = n * k / 4;
  p.data.assign((size_t)(code_bytes + kI2STail), 0);
  for (int64_t r = 0; r < n; ++r) {
    const int8_t* row = t + r * k;
    uint8_t* out = p.data.data() + r * (k / 4);
    for (int64_t blk = 0; blk < k / kI2SBlock; ++blk) {
      for (int64_t byte = 0; byte < kI2SBlockBytes; ++byte) {
        uint8_t v = 0;
        for (int g = 0; g < 4; ++g) {
          const int64_t col = blk * kI2SBlock + g * 32 + byte;
          check_ternary_value(row[col], r * k + col);
          v |= (uint8_t)((row[col] + 1) << (6 - 2 * g));
        }
        out[blk * kI2SBlockBytes + byte] = v;
      }
    }
  }
  std::memcpy(p.data.data() + code_bytes, &scale, sizeof(float));
  return p;
}

float i2s_tail_scale(const uint8_t* data, int64_t n, int64_t k) {
  float s;
  std::memcpy(&s, data + n * k / 4, sizeof(float));
  return s;
}

std::vector<int8_t> i2s_unpack_ternary(const PackedWeights& p) {
  if (p.k % kI2SBlock != 0 || (int64_t)p.data.size() < p.n * p.k / 4) {
    throw Error("i2_s: storage of " + std::to_string(p.data.size()) + " bytes cannot hold " +
                std::to_string(p.n) + "x" + std::to_string(p.k));
  }
  std::vector<int8_t> t((size_t)(p.n * p.k));
  std::vector<uint8_t> codes((size_t)p.k);
  for (int64_t r = 0; r < p.n; ++r) {
    decode_storage_row(p.data.data() + r * (p.k / 4), p.k, r, codes.data());
    for (int64_t col = 0; col < p.k; ++col) {
      t[(size_t)(r * p.k + col)] = (int8_t)(codes[(size_t)col] - 1);
    }
  }
  return t;
}

int64_t i2s_default_parts(int64_t k16, Isa isa) {
  // TRITUNE_I2S_PARTS=N overrides the default for A/B runs (1..16; 0: the default).
  static const int64_t forced = env_int("TRITUNE_I2S_PARTS", 0, 0, 16);
  // The AVX-512 GEMV (decode=mask) reads a row tile's parts one after the other, so a second
  // part only adds a jump per row tile: on a Zen 5 VM, the 120 GEMVs of a 2B4T decode step in
  // one part took 0.96-0.99x the time of two (1.17-1.18x -> 1.14-1.17x the in-place read of
  // their bytes at 85 GB/s, 1.055x -> 1.012x at 46 GB/s). The AVX2 GEMV walks the parts side
  // by side, which is what they are for.
  const int64_t parts = forced > 0 ? forced : isa >= Isa::kAvx512Vnni ? 1 : kI2SParts;
  return k16 % parts == 0 ? parts : 1;
}

I2SKernelWeights i2s_alloc(int64_t n, int64_t k, float scale, int64_t parts) {
  I2SKernelWeights w;
  w.n = n;
  w.k = k;
  w.n16 = (n + 15) / 16;
  w.k16 = (k + 15) / 16;
  w.parts = parts == 0 ? i2s_default_parts(w.k16) : parts;
  if (w.parts < 1 || w.k16 % w.parts != 0) {
    throw Error("i2_s: " + std::to_string(w.k16) + " column tiles cannot be split into " +
                std::to_string(parts) + " parts");
  }
  w.scale = scale;
  w.tiles.resize((size_t)(w.n16 * w.k16 * 64));
  return w;
}

I2SKernelWeights i2s_tile_ternary(const int8_t* t, int64_t n, int64_t k, float scale,
                                  int64_t parts) {
  if (n <= 0 || k <= 0) {
    throw Error("i2_s: impossible shape " + std::to_string(n) + "x" + std::to_string(k));
  }
  I2SKernelWeights w = i2s_alloc(n, k, scale, parts);
  // Code 1 (weight 0) everywhere first: padding contributes nothing.
  std::memset(w.tiles.data(), 0x55, w.tiles.size());
  for (int64_t r = 0; r < n; ++r) {
    const int64_t rt = r / 16, lane = r % 16;
    for (int64_t c = 0; c < k; ++c) {
      const int8_t v = t[r * k + c];
      check_ternary_value(v, r * k + c);
      const int64_t kc = c / 16, g = (c % 16) / 4, rr = c % 4;
      uint8_t& byte = w.tiles[(size_t)(w.tile_offset(rt, kc) + 4 * lane + rr)];
      byte = (uint8_t)((byte & ~(3u << (2 * g))) | (uint8_t)((v + 1) << (2 * g)));
    }
  }
  return w;
}

// Storage -> kernel layout one row at a time, code to code, without a ternary copy of the
// matrix: a model loads in the time it takes to read it (2B4T: 6 s -> under 1 s).
std::string i2s_storage_problem(const PackedWeights& p) {
  if (p.format != Format::kI2S) return "i2s_repack: weights are not in i2_s format";
  if (p.n <= 0 || p.k <= 0 || p.k % kI2SBlock != 0 || (int64_t)p.data.size() < p.n * p.k / 4) {
    return "i2_s: storage of " + std::to_string(p.data.size()) + " bytes cannot hold " +
           std::to_string(p.n) + "x" + std::to_string(p.k);
  }
  return std::string();
}

namespace {
// Before anything is allocated for them: hostile shapes fail here.
void check_i2s_storage(const PackedWeights& p) {
  const std::string why = i2s_storage_problem(p);
  if (!why.empty()) throw Error(why);
}
}  // namespace

void i2s_repack_into(const PackedWeights& p, I2SKernelWeights& w, int64_t tile0) {
  check_i2s_storage(p);
  const int64_t n16 = (p.n + 15) / 16, k16 = p.k / 16;
  if (k16 != w.k16 || tile0 < 0 || tile0 + n16 > w.n16 ||
      (int64_t)w.tiles.size() < w.n16 * w.k16 * 64) {
    throw Error("i2s_repack_into: " + std::to_string(p.n) + "x" + std::to_string(p.k) +
                " does not fit row tiles from " + std::to_string(tile0) + " of a " +
                std::to_string(w.n16) + "x" + std::to_string(w.k16) + "-tile store");
  }
  uint8_t* dst = w.tiles.data();
  const int64_t kq = w.kq();
  if (n16 * 16 > p.n) {  // padding rows of the last row tile: code 1 (weight 0)
    for (int64_t s = 0; s < w.parts; ++s) {
      std::memset(dst + w.tile_offset(tile0 + n16 - 1, s * kq), 0x55, (size_t)(kq * 64));
    }
  }
  std::vector<uint8_t> codes((size_t)p.k);
  for (int64_t r = 0; r < p.n; ++r) {
    decode_storage_row(p.data.data() + r * (p.k / 4), p.k, r, codes.data());
    for (int64_t s = 0; s < w.parts; ++s) {
      // The row's kq tiles of part s are 64 bytes apart.
      uint8_t* out = dst + w.tile_offset(tile0 + r / 16, s * kq) + 4 * (r % 16);
      for (int64_t j = 0; j < kq; ++j) {
        const uint8_t* c = codes.data() + 16 * (s * kq + j);
        for (int rr = 0; rr < 4; ++rr) {
          out[j * 64 + rr] = (uint8_t)(c[rr] | c[4 + rr] << 2 | c[8 + rr] << 4 | c[12 + rr] << 6);
        }
      }
    }
  }
}

I2SKernelWeights i2s_repack(const PackedWeights& p, int64_t parts) {
  check_i2s_storage(p);
  I2SKernelWeights w = i2s_alloc(p.n, p.k, p.scale, parts);
  i2s_repack_into(p, w, 0);
  return w;
}

std::vector<int8_t> i2s_untile(const I2SKernelWeights& w) {
  std::vector<int8_t> t((size_t)(w.n * w.k));
  for (int64_t r = 0; r < w.n; ++r) {
    const int64_t rt = r / 16, lane = r % 16;
    for (int64_t c = 0; c < w.k; ++c) {
      const int64_t kc = c / 16, g = (c % 16) / 4, rr = c % 4;
      const uint8_t byte = w.tiles[(size_t)(w.tile_offset(rt, kc) + 4 * lane + rr)];
      t[(size_t)(r * w.k + c)] = (int8_t)(((byte >> (2 * g)) & 3) - 1);
    }
  }
  return t;
}

void i2s_ref_gemm_tiled(const I2SKernelWeights& w, const QuantizedActs& a, int32_t* raw,
                        int64_t ldy) {
  if (a.k != w.k) {
    throw Error("i2_s: activations have K=" + std::to_string(a.k) +
                " but weights K=" + std::to_string(w.k));
  }
  for (int64_t tok = 0; tok < a.tokens; ++tok) {
    const int8_t* x = a.row(tok);
    for (int64_t r = 0; r < w.n; ++r) {
      const int64_t rt = r / 16, lane = r % 16;
      int32_t acc = 0;  // sum of code * x, then minus sum x: the kernels' own formulation
      for (int64_t c = 0; c < w.k; ++c) {
        const int64_t kc = c / 16, g = (c % 16) / 4, rr = c % 4;
        const uint8_t byte = w.tiles[(size_t)(w.tile_offset(rt, kc) + 4 * lane + rr)];
        acc += (int32_t)((byte >> (2 * g)) & 3) * (int32_t)x[c];
      }
      raw[tok * ldy + r] = acc - a.sum[(size_t)tok];
    }
  }
}

}  // namespace tritune
