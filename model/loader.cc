// Loader entry point (dispatch on the file kind) and the helpers both loaders share.
#include "model/loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernels/error.h"
#include "kernels/half.h"
#include "kernels/i2s.h"
#include "kernels/memory_budget.h"
#include "model/loader_internal.h"

namespace tritune {

namespace loader_detail {

void note(LoadReport& r, const std::string& msg) {
  for (const auto& n : r.notes) {
    if (n == msg) return;
  }
  r.notes.push_back(msg);
}

void count_conversion(LoadReport& r, const std::string& from, const std::string& to) {
  const std::string key = from + " -> " + to;
  for (auto& c : r.conversions) {
    if (c.first == key) {
      ++c.second;
      return;
    }
  }
  r.conversions.emplace_back(key, 1);
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

void require_linear_memory(double bytes, int64_t layers, const std::string& where,
                           const LoadOptions& opt) {
  require_memory(bytes,
                 where + ": its " + std::to_string(layers) + " linear layers, read into memory",
                 "run a smaller model, or free memory",
                 opt.memory_limit >= 0 ? opt.memory_limit : available_memory_bytes());
}

void validate_hparams(const HParams& hp, const std::string& where) {
  struct Limit {
    const char* name;
    int64_t v, max;
  };
  // Generous upper bounds (100B-class models are far below them) that keep hostile values
  // from sizing allocations.
  const Limit limits[] = {
      {"vocabulary size", hp.vocab, int64_t(1) << 24},
      {"embedding length (hidden)", hp.hidden, int64_t(1) << 17},
      {"feed-forward length", hp.ffn, int64_t(1) << 20},
      {"block count (layers)", hp.layers, 4096},
      {"attention head count", hp.heads, 4096},
      {"attention KV head count", hp.kv_heads, 4096},
      {"head dimension", hp.head_dim, 4096},
      {"context length", hp.context, int64_t(1) << 24},
  };
  for (const auto& l : limits) {
    if (l.v <= 0 || l.v > l.max) {
      throw Error(where + ": " + l.name + " " + std::to_string(l.v) + " is out of range (1.." +
                  std::to_string(l.max) + ")");
    }
  }
  if (hp.heads % hp.kv_heads != 0) {
    throw Error(where + ": attention head count " + std::to_string(hp.heads) +
                " is not a multiple of the KV head count " + std::to_string(hp.kv_heads));
  }
  if (hp.heads * hp.head_dim != hp.hidden) {
    throw Error(where + ": heads x head_dim = " + std::to_string(hp.heads) + " x " +
                std::to_string(hp.head_dim) + " differs from the embedding length " +
                std::to_string(hp.hidden) + " (BitNet's attn_sub_norm needs them equal)");
  }
  if (hp.head_dim % 2 != 0) {
    throw Error(where + ": head dimension " + std::to_string(hp.head_dim) +
                " is odd (RoPE rotates pairs)");
  }
  if (!(hp.rms_eps > 0.0f) || !std::isfinite(hp.rms_eps) || hp.rms_eps > 1.0f) {
    throw Error(where + ": RMSNorm epsilon " + std::to_string(hp.rms_eps) + " is out of range");
  }
  if (!(hp.rope_theta > 0.0f) || !std::isfinite(hp.rope_theta)) {
    throw Error(where + ": RoPE base " + std::to_string(hp.rope_theta) + " is out of range");
  }
}

PackedWeights f32_layer(std::vector<float> w, int64_t n, int64_t k) {
  PackedWeights p;
  p.format = Format::kF32;
  p.n = n;
  p.k = k;
  p.data.resize(w.size() * 4);
  std::memcpy(p.data.data(), w.data(), p.data.size());
  return p;
}

PackedWeights ternary_layer(const std::vector<int8_t>& t, int64_t n, int64_t k, float scale,
                            const std::string& what, LoadReport& r) {
  if (!std::isfinite(scale)) {
    throw Error(what + ": weight scale " + std::to_string(scale) + " is not finite");
  }
  if (k % kI2SBlock == 0) return i2s_pack_ternary(t.data(), n, k, scale);
  const bool f16_exact = half_to_float(float_to_half(scale)) == scale;
  note(r, what + ": K=" + std::to_string(k) + " is not a multiple of the i2_s block (128); kept " +
              "as " + (f16_exact ? "f16" : "f32") + " (exact ternary x scale)");
  std::vector<float> w(t.size());
  for (size_t i = 0; i < t.size(); ++i) w[i] = (float)t[i] * scale;
  return format_traits(f16_exact ? Format::kF16 : Format::kF32).pack(w.data(), n, k);
}

PackedWeights ternarized_layer(const std::vector<float>& w, int64_t n, int64_t k,
                               const std::string& what, LoadReport& r) {
  std::vector<int8_t> t(w.size());
  const float scale =
      with_context(what, [&] { return ternarize_absmean(w.data(), (int64_t)w.size(), t.data()); });
  return ternary_layer(t, n, k, scale, what, r);
}

}  // namespace loader_detail

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string last_path_component(const std::string& path) {
  const std::string p = without_trailing_slashes(path);
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string gguf_layer_tensor(int64_t layer, const std::string& what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

namespace {

// The first `n` bytes of a regular file (fewer if it is shorter); false if it is not one. Never
// blocks on a fifo or a device.
bool read_head(const std::string& path, void* out, size_t n, size_t* got, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  const ssize_t r = ::read(fd, out, n);
  ::close(fd);
  if (r < 0) return false;
  *got = (size_t)r;
  *size = (uint64_t)st.st_size;
  return true;
}

}  // namespace

bool is_gguf(const std::string& path) {
  uint32_t magic = 0;
  size_t got = 0;
  uint64_t size = 0;
  return read_head(path, &magic, 4, &got, &size) && got == 4 && magic == gguf::kMagic;
}

bool is_safetensors(const std::string& path) {
  uint8_t head[9] = {};
  size_t got = 0;
  uint64_t size = 0;
  if (!read_head(path, head, sizeof head, &got, &size) || got < sizeof head) return false;
  uint64_t header_len = 0;
  std::memcpy(&header_len, head, 8);  // little-endian, as x86 reads it
  return header_len >= 2 && header_len <= size - 8 && head[8] == '{';
}

ModelWeights load_model(const std::string& path, const LoadOptions& opt, LoadReport* report) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    throw Error(path +
                ": no such file or directory (expected a GGUF file, a .safetensors file "
                "or a Hugging Face model directory)");
  }
  if (S_ISDIR(st.st_mode)) return load_hf(path, opt, report);
  if (!S_ISREG(st.st_mode)) {
    throw Error(path + ": not a regular file (a device, fifo or socket); give a model file");
  }
  if (is_gguf(path)) return load_gguf(gguf::File::open(path), opt, report);
  const std::string ext = ".safetensors";
  if (is_safetensors(path) ||
      (path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0)) {
    return load_hf(path, opt, report);
  }
  throw Error(path +
              ": neither a GGUF file (no 'GGUF' magic) nor a safetensors file nor a "
              "model directory");
}

TernaryMatrix ternary_of(const PackedWeights& w) {
  TernaryMatrix m;
  m.n = w.n;
  m.k = w.k;
  if (w.format == Format::kI2S) {
    m.t = i2s_unpack_ternary(w);
    m.scale = w.scale;
    return m;
  }
  const FormatTraits& tr = format_traits(w.format);
  std::vector<float> f((size_t)(w.n * w.k));
  tr.unpack(w, f.data());
  m.t.resize(f.size());
  m.scale = ternarize_absmean(f.data(), (int64_t)f.size(), m.t.data());
  return m;
}

}  // namespace tritune
