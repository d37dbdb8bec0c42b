#include "model/convert.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "kernels/error.h"
#include "model/ggml_types.h"
#include "model/loader.h"
#include "model/mapped_file.h"
#include "model/model_writer.h"
#include "model/parallel.h"

namespace tritune {

namespace {

class WeightsSource : public ModelSource {
 public:
  WeightsSource(const ModelWeights& w, bool ternarize_float) : w_(w), ternarize_(ternarize_float) {}

  const HParams& hparams() const override { return w_.hp; }
  const TokenizerData* tokenizer() const override {
    return w_.tokenizer.tokens.empty() ? nullptr : &w_.tokenizer;
  }
  bool has_output() const override { return w_.output.rows > 0; }

  const RawMatrix* raw_matrix(bool output) const override {
    return output ? &w_.output : &w_.tok_embd;
  }

  void matrix_rows(bool output, int64_t row0, int64_t count, float* out) const override {
    const RawMatrix& m = output ? w_.output : w_.tok_embd;
    ggml::dequantize_rows(m.ggml_type, m.data, m.cols, m.rows, row0, count, out);
  }

  std::vector<float> norm(int64_t layer, NormId id) const override {
    if (layer < 0) return w_.output_norm;
    const LayerWeights& L = w_.layers[(size_t)layer];
    switch (id) {
      case NormId::kAttn:
        return L.attn_norm;
      case NormId::kAttnSub:
        return L.attn_sub_norm;
      case NormId::kFfn:
        return L.ffn_norm;
      default:
        return L.ffn_sub_norm;
    }
  }

  bool is_ternary(int64_t layer, Proj p) const override {
    return ternarize_ || format_traits(packed(layer, p).format).ternary;
  }

  float scale(int64_t layer, Proj p) const override {
    const PackedWeights& w = packed(layer, p);
    if (w.format == Format::kI2S) return w.scale;
    return ternary(layer, p).scale;
  }

  void ternary_rows(int64_t layer, Proj p, int64_t row0, int64_t count,
                    int8_t* out) const override {
    const TernaryMatrix& m = ternary(layer, p);
    std::memcpy(out, m.t.data() + row0 * m.k, (size_t)(count * m.k));
  }

  void float_rows(int64_t layer, Proj p, int64_t row0, int64_t count, float* out) const override {
    const PackedWeights& w = packed(layer, p);
    if (cached_float_ != std::make_pair(layer, (int)p)) {
      floats_.resize((size_t)(w.n * w.k));
      format_traits(w.format).unpack(w, floats_.data());
      cached_float_ = {layer, (int)p};
    }
    std::memcpy(out, floats_.data() + row0 * w.k, (size_t)(count * w.k) * sizeof(float));
  }

 private:
  const PackedWeights& packed(int64_t layer, Proj p) const {
    return *w_.layers[(size_t)layer].linears()[(size_t)p];
  }

  // One tensor's ternary values, cached (the writer asks for its rows chunk by chunk).
  const TernaryMatrix& ternary(int64_t layer, Proj p) const {
    if (cached_ != std::make_pair(layer, (int)p)) {
      tern_ = ternary_of(packed(layer, p));
      cached_ = {layer, (int)p};
    }
    return tern_;
  }

  const ModelWeights& w_;
  bool ternarize_;
  mutable std::pair<int64_t, int> cached_{-1, -1}, cached_float_{-1, -1};
  mutable TernaryMatrix tern_;
  mutable std::vector<float> floats_;
};

}  // namespace

std::unique_ptr<ModelSource> weights_source(const ModelWeights& w, bool ternarize_float) {
  return std::make_unique<WeightsSource>(w, ternarize_float);
}

WriteSummary convert_to_gguf(const ModelWeights& w, const std::string& out,
                             const ConvertOptions& opt) {
  GgufModelOptions g;
  g.linear = parse_linear_format(opt.format);
  g.embd_type = opt.embd_type;
  // The source's own name where it has one; else the file or directory name (not the local
  // path, which would travel with the file).
  g.name = !opt.name.empty() ? opt.name : !w.name.empty() ? w.name : last_path_component(w.path);
  g.arch = opt.arch;
  const bool ternary_target = g.linear != LinearFormat::kF16 && g.linear != LinearFormat::kF32;
  const auto src = weights_source(w, ternary_target);
  return write_gguf_model(*src, out, g);
}

namespace {

void requantize_matrix(RawMatrix& m, uint32_t type, int threads) {
  const int64_t rows = m.rows, cols = m.cols;
  const int64_t row_bytes = ggml::row_bytes(type, cols);
  std::vector<uint8_t> out((size_t)(rows * row_bytes));
  // One contiguous range of rows per thread, converted in chunks of about 1M values.
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / cols);
  try {
    ThreadPool(std::max(1, threads)).parallel_for(rows, [&](int64_t b, int64_t e, int) {
      std::vector<float> f((size_t)(std::min(chunk, e - b) * cols));
      for (int64_t r0 = b; r0 < e; r0 += chunk) {
        const int64_t n = std::min(chunk, e - r0);
        ggml::dequantize_rows(m.ggml_type, m.data, cols, rows, r0, n, f.data());
        encode_rows(type, f.data(), n, cols, out.data() + r0 * row_bytes, r0);
      }
    });
  } catch (const Error& e) {
    throw Error(m.name + " (re-encoding to " + ggml::type_name(type) + "): " + e.what());
  }
  if (m.file_mapped) drop_mapped_pages(m.data, (size_t)m.bytes);
  m.owned = std::move(out);
  m.data = m.owned.data();
  m.bytes = (int64_t)m.owned.size();
  m.ggml_type = type;
  m.file_mapped = false;
}

// "657 MB", "0.2 MB": whole megabytes from 10 up, one decimal below.
std::string megabytes(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, bytes >= 10e6 ? "%.0f MB" : "%.1f MB", bytes / 1e6);
  return b;
}

}  // namespace

std::string float_head_note(const ModelWeights& w) {
  const RawMatrix& head = w.output.rows > 0 ? w.output : w.tok_embd;
  const uint32_t t = head.ggml_type;
  if (head.rows == 0 || (t != ggml::kF32 && t != ggml::kF16 && t != ggml::kBF16)) return "";
  int64_t layers = 0;
  for (const LayerWeights& L : w.layers) {
    for (const PackedWeights* x : L.linears()) {
      layers += (int64_t)x->data.size();
    }
  }
  const double total = (double)(head.bytes + layers);
  if (total <= 0 || head.bytes < total / 4) return "";
  // Q6_K needs rows in blocks of 256; Q8_0 (blocks of 32) is the fallback the re-encoder offers.
  std::string fix = "--embd-type q8_0 re-encodes it at load";
  if (head.cols % ggml::find_type(ggml::kQ6_K)->block == 0) {
    fix = "--embd-type q6_k re-encodes it at load to " +
          megabytes((double)head.rows * (double)ggml::row_bytes(ggml::kQ6_K, head.cols));
  }
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "the output head (%s, %s) streams %s per token, %.0f%% of what a token reads; %s "
                "(tritune validate --embd-type measures the accuracy cost)",
                head.name.empty() ? "token_embd" : head.name.c_str(), ggml::type_name(t).c_str(),
                megabytes((double)head.bytes).c_str(), 100.0 * head.bytes / total, fix.c_str());
  return buf;
}

std::vector<std::string> requantize_embeddings(ModelWeights& w, uint32_t type, int threads) {
  const ggml::TypeInfo* ti = ggml::find_type(type);
  if (ti == nullptr || !can_write_matrix_type(type)) {
    throw Error("embeddings cannot be re-encoded as " + ggml::type_name(type) +
                " (use f32, f16, bf16, q8_0 or q6_k)");
  }
  std::vector<std::string> notes;
  for (RawMatrix* m : {&w.tok_embd, &w.output}) {
    if (m->rows == 0 || m->ggml_type == type) continue;
    if (m->name.empty()) m->name = m == &w.tok_embd ? "token_embd" : "output";
    if (m->cols % ti->block != 0) {
      throw Error(m->name + ": its rows of " + std::to_string(m->cols) +
                  " values are not a multiple of the " + ti->name + " block (" +
                  std::to_string(ti->block) + "); choose q8_0 (blocks of 32), f16 or f32");
    }
    if (!ggml::can_dequantize(m->ggml_type)) {
      throw Error(m->name + ": its stored type " + ggml::type_name(m->ggml_type) +
                  " cannot be read back to re-encode it");
    }
    const std::string from = ggml::type_name(m->ggml_type);
    const double before = (double)m->bytes;
    const auto t0 = std::chrono::steady_clock::now();
    requantize_matrix(*m, type, threads);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s: %s -> %s at load, %.1f -> %.1f MB in %.1f s",
                  m->name.c_str(), from.c_str(), ti->name, before / 1e6, (double)m->bytes / 1e6, s);
    notes.push_back(buf);
  }
  return notes;
}

}  // namespace tritune
