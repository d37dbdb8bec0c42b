#include "cli/run_common.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "kernels/cpu_features.h"
#include "kernels/error.h"
#include "kernels/thread_pool.h"
#include "kernels/variant.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/model_writer.h"
#include "model/temp_file_guard.h"

namespace tritune::cli {

LoadedModel load_for_run(const std::string& path, uint32_t embd_type, int threads) {
  if (path.empty()) throw Error("no model given: pass -m FILE (GGUF, .safetensors or HF dir)");
  LoadReport report;
  LoadedModel m;
  m.weights = std::make_shared<ModelWeights>(load_model(path, LoadOptions(), &report));
  for (const auto& n : report.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (embd_type == UINT32_MAX) {
    const std::string hint = float_head_note(*m.weights);
    if (!hint.empty()) std::fprintf(stderr, "note: %s\n", hint.c_str());
  }
  reencode_embeddings(*m.weights, embd_type, threads);
  return m;
}

void reencode_embeddings(ModelWeights& w, uint32_t embd_type, int threads) {
  if (embd_type == UINT32_MAX) return;
  for (const auto& n : requantize_embeddings(w, embd_type, threads)) {
    std::fprintf(stderr, "note: %s\n", n.c_str());
  }
}

uint32_t embd_type_arg(const Args& a) {
  return a.has("--embd-type") ? parse_matrix_type(a.get("--embd-type")) : UINT32_MAX;
}

int default_threads() {
  return std::min(available_cpus(), 256);
}

int apply_threads(int64_t n) {
  if (n < 1 || n > 256) {
    throw Error("-t " + std::to_string(n) + ": threads must be in 1..256");
  }
  set_num_threads((int)n);
  if (n > available_cpus()) {
    std::fprintf(stderr,
                 "note: -t %lld is more than the %d CPUs this process may run on; the threads "
                 "will take turns (the pool's workers sleep between loops instead of spinning)\n",
                 (long long)n, available_cpus());
  }
  return (int)n;
}

std::unique_ptr<Transformer> make_transformer(const LoadedModel& m, const TransformerOptions& o) {
  if (o.path == Path::kKernel) return Transformer::consume(m.weights, o);
  return std::make_unique<Transformer>(m.weights, o);
}

uint64_t seed_arg(const Args& a) {
  const int64_t seed = a.get_int("--seed");
  if (seed < 0) throw Error("--seed " + a.get("--seed") + ": must be >= 0");
  return (uint64_t)seed;
}

int64_t positions_arg(const std::string& option, int64_t value, int64_t lo) {
  if (value < lo || value > kMaxPositions) {
    throw Error(option + " " + std::to_string(value) + ": must be in " + std::to_string(lo) +
                ".." + std::to_string(kMaxPositions));
  }
  return value;
}

TransformerOptions transformer_options(const Args& a, int threads) {
  const std::string path = a.get("--path");
  const int64_t ctx = a.get_int("--ctx");
  TransformerOptions o;
  if (path == "kernel") {
    o.path = Path::kKernel;
  } else if (path == "reference") {
    o.path = Path::kReference;
  } else {
    throw Error("--path " + path + ": use kernel or reference");
  }
  o.kv = parse_kv_type(a.get("--kv"));
  o.context = positions_arg("--ctx", ctx, 0);
  o.threads = threads;
  return o;
}

std::string logits_out_arg(const Args& a) {
  if (!a.has("--logits-out")) return "";
  check_output_file("--logits-out", a.get("--logits-out"));
  return a.get("--logits-out");
}

LogitsWriter::LogitsWriter(const std::string& path) : path_(path) {
  if (path.empty()) return;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error("--logits-out " + path + ": cannot create: " + std::strerror(errno));
}

LogitsWriter::~LogitsWriter() {
  if (f_) std::fclose(f_);
}

void LogitsWriter::write(const float* logits, int64_t count) {
  if (!f_ || count <= 0) return;
  if (std::fwrite(logits, 4, (size_t)count, f_) != (size_t)count) {
    throw Error("--logits-out " + path_ + ": write failed: " + std::strerror(errno));
  }
  written_ += count;
}

void LogitsWriter::close() {
  if (!f_) return;
  FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) {
    throw Error("--logits-out " + path_ + ": write failed: " + std::strerror(errno));
  }
}

namespace {
int64_t proc_status_bytes(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;  // kB
  }
  return 0;
}
}  // namespace

int64_t resident_bytes() {
  return proc_status_bytes("VmRSS:");
}

int64_t peak_resident_bytes() {
  return proc_status_bytes("VmHWM:");
}

int64_t resident_file_bytes() {
  return proc_status_bytes("RssFile:");
}

int64_t parameter_count(const ModelWeights& w) {
  int64_t p = w.tok_embd.rows * w.tok_embd.cols + w.output.rows * w.output.cols;
  for (const auto& L : w.layers) {
    for (const PackedWeights* x : L.linears()) {
      p += x->n * x->k;
    }
  }
  return p;
}

std::string model_label(const ModelWeights& w) {
  const double b = (double)parameter_count(w);
  char size[32];
  if (b >= 1e9) {
    std::snprintf(size, sizeof size, "%.1fB", b / 1e9);
  } else {
    std::snprintf(size, sizeof size, "%.0fM", b / 1e6);
  }
  const char* fmt = w.layers.empty() ? "?" : format_traits(w.layers[0].wq.format).name;
  return "bitnet " + std::string(size) + " " + fmt;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> t((size_t)n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& v : t) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = (int32_t)(x % (uint64_t)vocab);
  }
  return t;
}

namespace {

// The directory an output path goes into must exist.
void require_parent_dir(const std::string& option, std::string path) {
  const std::string given = path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();  // "out/" names "out"
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error(option + " " + given + ": directory " + dir + " does not exist (create it first)");
  }
}

}  // namespace

void note_if_cached(const std::string& option, int64_t bytes) {
  const int64_t llc = cpu_info().l3_bytes;
  if (bytes > 0 && llc > 0 && bytes < 2 * llc) {
    std::fprintf(stderr,
                 "note: %s %lld MiB is below twice the last-level cache (%lld MiB): the data "
                 "stays cached, so these figures do not measure memory\n",
                 option.c_str(), (long long)(bytes >> 20), (long long)(2 * llc >> 20));
  }
}

void check_output_file(const std::string& option, const std::string& path) {
  if (path.empty()) throw Error(option + ": the path is empty");
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw Error(option + " " + path + ": is a directory; name a file");
  }
  require_parent_dir(option, path);
}

void write_text_file(const std::string& option, const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(option + " " + path + ": cannot create: " + std::strerror(errno));
  const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int e = errno;
  if (std::fclose(f) != 0 || !wrote) {
    const int why = wrote ? errno : e;
    std::remove(path.c_str());  // no half-written report
    throw Error(option + " " + path + ": write failed: " + std::strerror(why));
  }
}

void write_json_file(const std::string& option, const std::string& path, const json::Value& v) {
  write_text_file(option, path, json::dump(v) + "\n");
  std::printf("wrote %s\n", path.c_str());
}

void check_model_output(const std::string& path, bool directory, const std::string& gguf_hint) {
  if (path.empty()) throw Error("-o: the output path is empty");
  struct stat st;
  if (!directory && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw Error("-o " + path + ": is a directory; name the output file, e.g. -o " + path +
                (path.back() == '/' ? "" : "/") + "model.gguf");
  }
  require_parent_dir("-o", path);
  if (!directory) require_replaceable(path);
  const std::string ext = ".safetensors";
  if (!directory && path.size() >= ext.size() &&
      path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    throw Error("-o " + path + ": the output is a GGUF file; " + gguf_hint);
  }
}

}  // namespace tritune::cli
