#include "model/float_model.h"

#include <algorithm>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/memory_budget.h"
#include "model/head.h"

namespace tritune {
namespace {

PackedWeights convert(const PackedWeights& p, Format f) {
  std::vector<float> w((size_t)(p.n * p.k));
  format_traits(p.format).unpack(p, w.data());
  return format_traits(f).pack(w.data(), p.n, p.k);
}

RawMatrix to_f16(const RawMatrix& m) {
  RawMatrix r;
  r.name = m.name;
  r.rows = m.rows;
  r.cols = m.cols;
  r.ggml_type = kGgmlF16;
  r.owned.resize((size_t)(m.rows * m.cols * 2));
  std::vector<float> row((size_t)m.cols);
  uint16_t* dst = reinterpret_cast<uint16_t*>(r.owned.data());
  for (int64_t i = 0; i < m.rows; ++i) {
    embed_row(m, i, row.data());
    for (int64_t j = 0; j < m.cols; ++j) dst[i * m.cols + j] = float_to_half(row[(size_t)j]);
  }
  r.data = r.owned.data();
  r.bytes = (int64_t)r.owned.size();
  return r;
}

}  // namespace

std::shared_ptr<ModelWeights> to_float_model(const ModelWeights& w, Format f) {
  if (format_traits(f).ternary) {
    throw Error(std::string("to_float_model: ") + format_traits(f).name +
                " is not a float format (use f16 or f32)");
  }
  // Refused up front when it cannot fit: a full-precision copy is 8-16x the ternary model.
  const double elem = format_traits(f).bits_per_weight / 8.0;
  double bytes = (double)(w.tok_embd.rows * w.tok_embd.cols + w.output.rows * w.output.cols) * 2;
  double largest = 0;
  for (const LayerWeights& L : w.layers) {
    for (const PackedWeights* p : L.linears()) {
      bytes += (double)p->n * (double)p->k * elem;
      largest = std::max(largest, (double)p->n * (double)p->k * 4.0);  // the float staging
    }
  }
  require_memory(bytes + largest,
                 std::string("the ") + format_traits(f).name + " copy of '" + w.path + "'",
                 "compare against a smaller model (the copy holds every weight at full precision)");
  auto out = std::make_shared<ModelWeights>();
  out->path = w.path + " (" + format_traits(f).name + ")";
  out->hp = w.hp;
  out->tok_embd = to_f16(w.tok_embd);
  if (w.output.rows > 0) out->output = to_f16(w.output);
  out->output_norm = w.output_norm;
  for (const LayerWeights& L : w.layers) {
    LayerWeights c;
    c.attn_norm = L.attn_norm;
    c.attn_sub_norm = L.attn_sub_norm;
    c.ffn_norm = L.ffn_norm;
    c.ffn_sub_norm = L.ffn_sub_norm;
    c.wq = convert(L.wq, f);
    c.wk = convert(L.wk, f);
    c.wv = convert(L.wv, f);
    c.wo = convert(L.wo, f);
    c.w_gate = convert(L.w_gate, f);
    c.w_up = convert(L.w_up, f);
    c.w_down = convert(L.w_down, f);
    out->layers.push_back(std::move(c));
  }
  out->tokenizer = w.tokenizer;
  return out;
}

}  // namespace tritune
