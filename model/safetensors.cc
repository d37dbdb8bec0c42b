#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "kernels/error.h"
#include "kernels/json.h"
#include "model/ggml_types.h"
#include "model/shape.h"

namespace tritune::safetensors {

int64_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

uint32_t dtype_to_ggml(const std::string& d) {
  if (d == "F32") return ggml::kF32;
  if (d == "F16") return ggml::kF16;
  if (d == "BF16") return ggml::kBF16;
  return std::numeric_limits<uint32_t>::max();
}

int64_t TensorInfo::elements() const {
  return shape_elements(shape);
}

std::string TensorInfo::shape_str() const {
  return shape_string(shape);
}

std::shared_ptr<const File> File::open(const std::string& path) {
  return parse(MappedFile::open(path));
}

std::shared_ptr<const File> File::parse(std::shared_ptr<const MappedFile> bytes) {
  std::shared_ptr<File> f(new File());
  f->bytes_ = std::move(bytes);
  f->parse_all();
  return f;
}

const TensorInfo* File::tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void File::parse_all() {
  const std::string& p = path();
  const uint64_t size = bytes_->size();
  if (size < 8) {
    throw Error(p + ": not a safetensors file (" + std::to_string(size) +
                " bytes, too short for the header length)");
  }
  uint64_t n;
  std::memcpy(&n, bytes_->data(), 8);
  if (n > size - 8) {
    throw Error(p + ": safetensors header length " + std::to_string(n) + " exceeds the " +
                std::to_string(size - 8) + " bytes after it (truncated or not safetensors)");
  }
  if (n > kMaxHeaderBytes) {
    throw Error(p + ": safetensors header of " + std::to_string(n) + " bytes exceeds the " +
                std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  if (n < 2 || bytes_->data()[8] != '{') {
    throw Error(p + ": not a safetensors file (the header does not start with '{')");
  }
  data_offset_ = 8 + n;
  const std::string_view text(reinterpret_cast<const char*>(bytes_->data() + 8), (size_t)n);
  const json::Value h = json::parse(text, p + " (safetensors header)");
  if (!h.is_object()) throw Error(p + ": safetensors header is not a JSON object");
  const uint64_t data_size = size - data_offset_;
  for (const auto& [name, v] : h.members()) {
    const std::string what = p + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(p + ": __metadata__ is not an object");
      for (const auto& [k, mv] : v.members()) {
        if (!mv.is_string()) throw Error(p + ": __metadata__['" + k + "'] is not a string");
        metadata_[k] = mv.as_string();
      }
      continue;
    }
    if (!v.is_object()) throw Error(what + ": entry is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* sh = v.find("shape");
    const json::Value* off = v.find("data_offsets");
    if (!dt || !dt->is_string() || !sh || !sh->is_array() || !off || !off->is_array() ||
        off->size() != 2) {
      throw Error(what +
                  ": needs \"dtype\" (string), \"shape\" (array) and \"data_offsets\" "
                  "([begin, end])");
    }
    TensorInfo ti;
    ti.name = name;
    ti.dtype = dt->as_string();
    const int64_t es = dtype_size(ti.dtype);
    if (es == 0) throw Error(what + ": unknown dtype '" + ti.dtype + "'");
    if (sh->size() > 8) throw Error(what + ": " + std::to_string(sh->size()) + " dimensions");
    int64_t count = 1;
    for (size_t k = 0; k < sh->size(); ++k) {
      const json::Value& d = (*sh)[k];
      if (!d.is_int() || d.as_int64() < 0) {
        throw Error(what + ": shape entry " + std::to_string(k) + " is not a size");
      }
      ti.shape.push_back(d.as_int64());
      if (__builtin_mul_overflow(count, d.as_int64(), &count)) {
        throw Error(what + ": element count overflows 64 bits");
      }
    }
    if (__builtin_mul_overflow(count, es, &ti.bytes)) {
      throw Error(what + ": byte size overflows 64 bits");
    }
    if (!(*off)[0].is_int() || !(*off)[1].is_int() || (*off)[0].as_int64() < 0 ||
        (*off)[1].as_int64() < (*off)[0].as_int64()) {
      throw Error(what + ": data_offsets must be [begin, end] with 0 <= begin <= end");
    }
    ti.begin = (uint64_t)(*off)[0].as_int64();
    ti.end = (uint64_t)(*off)[1].as_int64();
    if (ti.end - ti.begin != (uint64_t)ti.bytes) {
      throw Error(what + ": data_offsets [" + std::to_string(ti.begin) + ", " +
                  std::to_string(ti.end) + ") hold " + std::to_string(ti.end - ti.begin) +
                  " bytes but " + ti.dtype + " " + ti.shape_str() + " needs " +
                  std::to_string(ti.bytes));
    }
    if (ti.end > data_size) {
      throw Error(what + ": data [" + std::to_string(ti.begin) + ", " + std::to_string(ti.end) +
                  ") extends past the end of the data (" + std::to_string(data_size) +
                  " bytes; truncated file?)");
    }
    ti.data = bytes_->data() + data_offset_ + ti.begin;
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(ti));
  }
  std::vector<const TensorInfo*> order;
  for (const auto& t : tensors_) {
    if (t.bytes > 0) order.push_back(&t);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->begin < b->begin; });
  for (size_t k = 1; k < order.size(); ++k) {
    if (order[k - 1]->end > order[k]->begin) {
      throw Error(p + ": tensors '" + order[k - 1]->name + "' and '" + order[k]->name +
                  "' overlap");
    }
  }
}

// ---- Writer ----------------------------------------------------------------------------------
Writer::Writer(std::string path) : path_(std::move(path)) {}

Writer::~Writer() {
  if (f_) std::fclose(f_);
  if (!finished_ && header_written_) std::remove(tmp_path_.c_str());
}

void Writer::set_metadata(const std::string& key, const std::string& value) {
  if (header_written_) throw Error(path_ + ": metadata set after tensor data");
  metadata_[key] = value;
}

void Writer::add_tensor(const std::string& name, const std::string& dtype,
                        const std::vector<int64_t>& shape) {
  if (header_written_) throw Error(path_ + ": tensor '" + name + "' declared after tensor data");
  const int64_t es = dtype_size(dtype);
  if (es == 0) throw Error(path_ + ": tensor '" + name + "': unknown dtype '" + dtype + "'");
  for (const auto& d : decls_) {
    if (d.name == name) throw Error(path_ + ": tensor '" + name + "' declared twice");
  }
  int64_t bytes = es;
  for (int64_t d : shape) bytes *= d;
  const uint64_t begin = decls_.empty() ? 0 : decls_.back().begin + decls_.back().bytes;
  decls_.push_back({name, dtype, shape, bytes, begin});
}

void Writer::write_raw(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n) {
    throw Error(tmp_path_ + ": write failed: " + std::strerror(errno));
  }
}

void Writer::write_header() {
  json::Value h = json::Value::object();
  if (!metadata_.empty()) {
    json::Value m = json::Value::object();
    for (const auto& [k, v] : metadata_) m.set(k, json::Value(v));
    h.set("__metadata__", std::move(m));
  }
  for (const auto& d : decls_) {
    json::Value t = json::Value::object();
    t.set("dtype", json::Value(d.dtype));
    json::Value shape = json::Value::array();
    for (int64_t x : d.shape) shape.push_back(json::Value(x));
    t.set("shape", std::move(shape));
    json::Value off = json::Value::array();
    off.push_back(json::Value((int64_t)d.begin));
    off.push_back(json::Value((int64_t)(d.begin + d.bytes)));
    t.set("data_offsets", std::move(off));
    h.set(d.name, std::move(t));
  }
  std::string text = json::dump(h);
  while (text.size() % 8 != 0) text += ' ';  // keeps the data 8-byte aligned, as HF does
  f_ = create_temp_for(path_, &tmp_path_);
  tmp_guard_ = std::make_unique<TempFileGuard>(tmp_path_);
  header_written_ = true;
  const uint64_t n = text.size();
  write_raw(&n, 8);
  write_raw(text.data(), text.size());
}

void Writer::begin_tensor(const std::string& name) {
  if (!header_written_) write_header();
  if (cur_written_ >= 0 || next_ >= decls_.size() || decls_[next_].name != name) {
    throw Error(path_ + ": tensor '" + name + "' written out of order");
  }
  cur_written_ = 0;
}

void Writer::append(const void* data, size_t bytes) {
  if (cur_written_ < 0) throw Error(path_ + ": append() without begin_tensor()");
  if (cur_written_ + (int64_t)bytes > decls_[next_].bytes) {
    throw Error(path_ + ": tensor '" + decls_[next_].name + "' gets too many bytes");
  }
  write_raw(data, bytes);
  cur_written_ += (int64_t)bytes;
}

void Writer::end_tensor() {
  if (cur_written_ != decls_[next_].bytes) {
    throw Error(path_ + ": tensor '" + decls_[next_].name + "' got " +
                std::to_string(cur_written_) + " of its " + std::to_string(decls_[next_].bytes) +
                " bytes");
  }
  cur_written_ = -1;
  ++next_;
}

void Writer::write_tensor(const std::string& name, const void* data, size_t bytes) {
  begin_tensor(name);
  append(data, bytes);
  end_tensor();
}

void Writer::finish() {
  if (finished_) return;
  if (!header_written_) write_header();
  if (cur_written_ >= 0 || next_ != decls_.size()) {
    throw Error(path_ + ": finish() with tensors not written");
  }
  const bool ok = std::fflush(f_) == 0;
  const int e = errno;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) throw Error(tmp_path_ + ": write failed: " + std::strerror(e));
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot rename " + tmp_path_ + " into place: " + std::strerror(errno));
  }
  finished_ = true;
  tmp_guard_.reset();
}

}  // namespace tritune::safetensors
