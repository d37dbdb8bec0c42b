// Token embedding lookup and the output head (logits = h . E^T) over RawMatrix tensors.
//
// Math contract of the head, the same in both paths:
//  * float types (F32, F16, BF16): logits[v] = sum_k W[v][k] * x[k], float activations.
//  * int8-block types (Q8_0, Q6_K): the activations are quantized in blocks of 32 with the
//    project's quantizer (quantize_row: s_b = 127 / absmax_b, round half to even), as llama.cpp
//    and bitnet.cpp quantize the head's input for Q8_0 x Q8_0 dot products, and
//    logits[v] = sum_b (sum_{i in b} W[v][i] * x_q[i]) / s_b, with W the dequantized weights.
// The reference path computes this from dequantized rows in double; the kernel path computes
// the per-block integer sums with int8 x int8 dot products (AVX-512 VNNI / AVX2, chosen at run
// time, scalar otherwise), so the two differ only in float summation order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/huge_pages.h"
#include "model/parallel.h"
#include "model/weights.h"

namespace tritune {

// GGUF tensor type ids the head and the embedding accept.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlQ6_K = 14, kGgmlBF16 = 30;

// "f32", "q8_0", ... or "type N".
std::string head_type_name(uint32_t ggml_type);
// True for the types whose head activations are quantized in blocks of 32.
bool head_type_is_int8(uint32_t ggml_type);

// Throws Error naming the tensor if its type is not supported, its shape is not
// rows x cols (as expected), or `bytes` / `data` do not hold the whole tensor.
void check_raw_matrix(const RawMatrix& m, int64_t rows, int64_t cols);

// Dequantizes row `row` of m into out[m.cols].
void embed_row(const RawMatrix& m, int64_t row, float* out);

// Reference head: logits[t*ldl + v] for t < tokens, v < m.rows (dequantized rows, double sums).
void head_reference(const RawMatrix& m, const float* x, int64_t tokens, int64_t ldx, float* logits,
                    int64_t ldl, ThreadPool* pool);

// How the kernel-path head lays out a Q8_0 tensor.
//  * kAsStored: the file's blocks (34 bytes: f16 scale, 32 int8), read in place or copied.
//  * kInterleaved: groups of 8 rows, block by block (272 bytes per 8 rows x 32 columns: the
//    int8 of column pair p as 8 rows x 2 bytes, then the 8 rows' f16 scales), the same bytes
//    as stored in the order the AVX2 kernel reads them: vpmovsxbw + vpmaddwd against int16
//    activation pairs give 8 rows' dot products in the lanes, with no sign trick and no
//    horizontal sums (on Zen 3 vpsignb, vpmaddubsw and vpmaddwd share two pipes: the stored
//    layout costs 4 of them per block and the interleaved one 2). The kernel reads 4 groups
//    side by side (4 streams per core). Needs AVX2; rows past the last multiple of 8 stay as
//    stored.
//    Q6_K the same way: groups of 8 rows, 1680 bytes per 8 rows x 256 columns (the same bits
//    as stored: the 8 rows' d, then per block of 32 columns the 6-bit codes of 8 rows x
//    4-column dwords, three codes per 4 whole in a byte's bits 5:0 and the fourth in pieces in
//    bits 7:6, then the scales), so vpmaddubsw against a broadcast activation dword
//    and one vpmaddwd by the 8 rows' scales per 16 columns give 8 rows' sums in the lanes: no
//    horizontal sums, and one vpshufb per 8 rows' scales (1.5x fewer cycles than the
//    stored-layout dot on L3-resident rows, Zen 3, before the code packing above cut 6 more
//    logic ops per 4 code vectors).
//  * kAuto: interleaved when the head is copied anyway (a file-mapped Q8_0 or Q6_K head of
//    2 MiB or more) on a CPU with AVX2 or AVX-512 (on AVX-512 in groups of 16 rows, see
//    head.cc); as stored otherwise.
enum class HeadLayout { kAuto, kAsStored, kInterleaved };

// The kernel-path head. Every type runs on the tensor's own bytes (the RawMatrix must outlive
// the head), copied onto huge pages when the tensor is file-mapped. Q6_K is read as it is
// stored (0.82 B/weight): its codes are rebuilt in registers and dotted with int8 activations,
// so a 2B4T Q6_K head streams 269 MB per token, not the 410 MB of an int8 conversion.
class OutputHead {
 public:
  explicit OutputHead(const RawMatrix& m, HeadLayout layout = HeadLayout::kAuto);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Weight bytes one call streams (bytes-per-token accounting).
  int64_t weight_bytes() const { return weight_bytes_; }
  const uint8_t* weight_data() const { return data_; }
  // Extra memory the head allocated (the huge-page copy of a mapped head), 0 when zero-copy.
  int64_t owned_bytes() const { return (int64_t)owned_.size(); }
  // e.g. "q8_0 int8 dot avx512vnni".
  const std::string& describe() const { return describe_; }

  // logits[t*ldl + v] for t < tokens and v < rows(); x rows have stride ldx.
  void forward(const float* x, int64_t tokens, int64_t ldx, float* logits, int64_t ldl,
               ThreadPool& pool) const;

 private:
  enum class Kind { kF32, kF16, kBF16, kQ8_0, kQ6K };
  enum class Impl { kScalar, kAvx2, kAvx512Vnni };
  Kind kind_;
  Impl impl_;
  int64_t rows_ = 0, cols_ = 0;
  const uint8_t* data_ = nullptr;
  int64_t row_bytes_ = 0;
  int64_t weight_bytes_ = 0;
  int64_t il_rows_ = 0;   // rows in the interleaved layout (0: as stored)
  int64_t il_group_ = 8;  // rows per interleaved group (16: the AVX-512 Q6_K kernel)
  WeightBytes owned_;     // the mapped tensor copied onto huge pages
  std::string describe_;
};

}  // namespace tritune
