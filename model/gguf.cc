#include "model/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "kernels/error.h"
#include "model/ggml_types.h"
#include "model/shape.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

namespace tritune::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kU8:
      return "u8";
    case ValueType::kI8:
      return "i8";
    case ValueType::kU16:
      return "u16";
    case ValueType::kI16:
      return "i16";
    case ValueType::kU32:
      return "u32";
    case ValueType::kI32:
      return "i32";
    case ValueType::kF32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kU64:
      return "u64";
    case ValueType::kI64:
      return "i64";
    case ValueType::kF64:
      return "f64";
  }
  return "?";
}

namespace {

// Encoded size of a scalar type; 0 for string/array.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
      return 1;
    case ValueType::kU16:
    case ValueType::kI16:
      return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
      return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

// Smallest possible encoding of one value of type t (bounds counts before allocation).
size_t min_encoded_size(ValueType t) {
  if (t == ValueType::kString) return 8;
  if (t == ValueType::kArray) return 12;
  return scalar_size(t);
}

bool is_unsigned(ValueType t) {
  return t == ValueType::kU8 || t == ValueType::kU16 || t == ValueType::kU32 ||
         t == ValueType::kU64;
}
bool is_signed(ValueType t) {
  return t == ValueType::kI8 || t == ValueType::kI16 || t == ValueType::kI32 ||
         t == ValueType::kI64;
}

std::string quote(const std::string& s, size_t max = 40) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\'' || c == '\\') {
      out += '\\';
      out += (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += (char)c;
    }
  }
  if (s.size() > max) out += "...";
  return out + "'";
}

// Bounds-checked little-endian cursor over the file bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t size, const std::string& path)
      : p_(p), size_(size), path_(path) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  [[noreturn]] void fail(size_t at, const std::string& msg) const {
    throw Error(path_ + ": offset " + std::to_string(at) + ": " + msg);
  }
  void need(size_t n, const std::string& what) const {
    if (n > left()) {
      fail(pos_, what + " needs " + std::to_string(n) + " bytes but the file has only " +
                     std::to_string(left()) + " left (truncated file?)");
    }
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const std::string& what, uint64_t max_len) {
    const size_t at = pos_;
    const uint64_t len = read<uint64_t>(what + " length");
    if (len > left()) {
      fail(at, what + ": string length " + std::to_string(len) + " exceeds the " +
                   std::to_string(left()) + " bytes left in the file");
    }
    if (len > max_len) {
      fail(at, what + ": string length " + std::to_string(len) + " exceeds the limit of " +
                   std::to_string(max_len));
    }
    std::string s(reinterpret_cast<const char*>(p_ + pos_), (size_t)len);
    pos_ += (size_t)len;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

constexpr uint64_t kMaxKeyLen = 65535;
constexpr uint64_t kMaxTensorNameLen = 1024;  // ggml writes <= 64; be liberal in what we read
constexpr uint64_t kMaxDims = 4;

Value read_value(Cursor& c, ValueType t, const std::string& what, int depth) {
  Value v;
  v.type = t;
  switch (t) {
    case ValueType::kU8:
      v.u = c.read<uint8_t>(what);
      break;
    case ValueType::kI8:
      v.i = c.read<int8_t>(what);
      break;
    case ValueType::kU16:
      v.u = c.read<uint16_t>(what);
      break;
    case ValueType::kI16:
      v.i = c.read<int16_t>(what);
      break;
    case ValueType::kU32:
      v.u = c.read<uint32_t>(what);
      break;
    case ValueType::kI32:
      v.i = c.read<int32_t>(what);
      break;
    case ValueType::kF32:
      v.f = c.read<float>(what);
      break;
    case ValueType::kU64:
      v.u = c.read<uint64_t>(what);
      break;
    case ValueType::kI64:
      v.i = c.read<int64_t>(what);
      break;
    case ValueType::kF64:
      v.f = c.read<double>(what);
      break;
    case ValueType::kBool: {
      const size_t at = c.pos();
      const uint8_t b = c.read<uint8_t>(what);
      if (b > 1) c.fail(at, what + ": bool value " + std::to_string(b) + " is not 0 or 1");
      v.u = b;
      break;
    }
    case ValueType::kString:
      v.s = c.str(what, std::numeric_limits<uint64_t>::max());
      break;
    case ValueType::kArray: {
      const size_t at = c.pos();
      if (depth >= kMaxArrayDepth) {
        c.fail(at, what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      }
      const uint32_t et = c.read<uint32_t>(what + " element type");
      if (et >= kValueTypeCount) {
        c.fail(at, what + ": unknown array element type " + std::to_string(et));
      }
      v.elem = (ValueType)et;
      const uint64_t count = c.read<uint64_t>(what + " element count");
      const size_t min = min_encoded_size(v.elem);
      if (count > c.left() / min) {
        c.fail(at, what + ": array of " + std::to_string(count) + " " + value_type_name(v.elem) +
                       " cannot fit in the " + std::to_string(c.left()) +
                       " bytes left in the file");
      }
      v.arr.reserve((size_t)count);
      for (uint64_t k = 0; k < count; ++k) {
        v.arr.push_back(read_value(c, v.elem, what + "[" + std::to_string(k) + "]", depth + 1));
      }
      break;
    }
  }
  return v;
}

int64_t value_as_int(const Value& v, const std::string& where) {
  if (is_unsigned(v.type) || v.type == ValueType::kBool) {
    if (v.u > (uint64_t)std::numeric_limits<int64_t>::max()) {
      throw Error(where + ": value " + std::to_string(v.u) + " is out of range");
    }
    return (int64_t)v.u;
  }
  if (is_signed(v.type)) return v.i;
  throw Error(where + ": expected an integer, found " + v.summary());
}

}  // namespace

// ---- Value -----------------------------------------------------------------------------------
#define TRITUNE_SCALAR(fn, ctype, tag, field) \
  Value Value::fn(ctype x) {                  \
    Value v;                                  \
    v.type = ValueType::tag;                  \
    v.field = x;                              \
    return v;                                 \
  }
TRITUNE_SCALAR(u8, uint8_t, kU8, u)
TRITUNE_SCALAR(i8, int8_t, kI8, i)
TRITUNE_SCALAR(u16, uint16_t, kU16, u)
TRITUNE_SCALAR(i16, int16_t, kI16, i)
TRITUNE_SCALAR(u32, uint32_t, kU32, u)
TRITUNE_SCALAR(i32, int32_t, kI32, i)
TRITUNE_SCALAR(f32, float, kF32, f)
TRITUNE_SCALAR(boolean, bool, kBool, u)
TRITUNE_SCALAR(u64, uint64_t, kU64, u)
TRITUNE_SCALAR(i64, int64_t, kI64, i)
TRITUNE_SCALAR(f64, double, kF64, f)
#undef TRITUNE_SCALAR

Value Value::str(std::string x) {
  Value v;
  v.type = ValueType::kString;
  v.s = std::move(x);
  return v;
}

Value Value::array(ValueType elem, std::vector<Value> items) {
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k].type != elem) {
      throw Error(std::string("gguf::Value::array: item ") + std::to_string(k) + " is " +
                  value_type_name(items[k].type) + ", not " + value_type_name(elem));
    }
  }
  Value v;
  v.type = ValueType::kArray;
  v.elem = elem;
  v.arr = std::move(items);
  return v;
}

Value Value::strings(const std::vector<std::string>& x) {
  std::vector<Value> items;
  items.reserve(x.size());
  for (const auto& s : x) items.push_back(str(s));
  return array(ValueType::kString, std::move(items));
}

Value Value::i32s(const std::vector<int32_t>& x) {
  std::vector<Value> items;
  items.reserve(x.size());
  for (int32_t s : x) items.push_back(i32(s));
  return array(ValueType::kI32, std::move(items));
}

Value Value::f32s(const std::vector<float>& x) {
  std::vector<Value> items;
  items.reserve(x.size());
  for (float s : x) items.push_back(f32(s));
  return array(ValueType::kF32, std::move(items));
}

bool Value::is_integer() const {
  return is_unsigned(type) || is_signed(type);
}
bool Value::is_float() const {
  return type == ValueType::kF32 || type == ValueType::kF64;
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  if (is_unsigned(type) || type == ValueType::kBool) return u == o.u;
  if (is_signed(type)) return i == o.i;
  if (is_float()) return f == o.f || (std::isnan(f) && std::isnan(o.f));
  if (type == ValueType::kString) return s == o.s;
  return elem == o.elem && arr == o.arr;
}

std::string Value::summary(size_t max_items) const {
  std::string out = value_type_name(type);
  if (is_unsigned(type)) return out + " " + std::to_string(u);
  if (is_signed(type)) return out + " " + std::to_string(i);
  if (type == ValueType::kBool) return out + (u ? " true" : " false");
  if (is_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.9g", f);
    return out + buf;
  }
  if (type == ValueType::kString) return out + " " + quote(s, max_items == SIZE_MAX ? SIZE_MAX : 80);
  out = std::string("array<") + value_type_name(elem) + ">[" + std::to_string(arr.size()) + "] [";
  for (size_t k = 0; k < arr.size() && k < max_items; ++k) {
    std::string item = arr[k].summary(max_items);
    // drop the type prefix of scalar items: "u32 5" -> "5"
    const size_t sp = item.find(' ');
    if (arr[k].type != ValueType::kArray && sp != std::string::npos) item = item.substr(sp + 1);
    out += (k ? ", " : "") + item;
  }
  if (arr.size() > max_items) out += ", ...";
  return out + "]";
}

// ---- TensorInfo ------------------------------------------------------------------------------
int64_t TensorInfo::elements() const {
  return shape_elements(ne);
}

std::string TensorInfo::shape_str() const {
  return shape_string(ne);
}

// ---- File ------------------------------------------------------------------------------------
std::shared_ptr<const File> File::open(const std::string& path) {
  return parse(MappedFile::open(path));
}

std::shared_ptr<const File> File::parse(std::shared_ptr<const MappedFile> bytes) {
  std::shared_ptr<File> f(new File());
  f->bytes_ = std::move(bytes);
  f->parse_all();
  return f;
}

void File::parse_all() {
  const std::string& p = bytes_->path();
  Cursor c(bytes_->data(), bytes_->size(), p);
  if (bytes_->size() < 4) {
    throw Error(p + ": not a GGUF file (" + std::to_string(bytes_->size()) +
                " bytes, too short for the magic)");
  }
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", magic);
    throw Error(p + ": not a GGUF file (magic " + buf + ", expected 'GGUF')");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    c.fail(4, "GGUF version " + std::to_string(version_) +
                  " is not supported (tritune reads versions 2 and 3; re-convert the model)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Every KV needs >= 13 bytes (key length, type, 1-byte value), every tensor info >= 32.
  if (n_kv > c.left() / 13) {
    c.fail(16, "metadata count " + std::to_string(n_kv) + " cannot fit in the " +
                   std::to_string(c.left()) + " bytes left in the file");
  }
  if (n_tensors > c.left() / 32) {
    c.fail(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                  std::to_string(c.left()) + " bytes left in the file");
  }

  kv_.reserve((size_t)n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = c.pos();
    const std::string what = "metadata entry " + std::to_string(k);
    std::string key = c.str(what + " key", kMaxKeyLen);
    const std::string kwhat = "key " + quote(key);
    const uint32_t t = c.read<uint32_t>(kwhat + " type");
    if (t >= kValueTypeCount) c.fail(at, kwhat + ": unknown value type " + std::to_string(t));
    Value v = read_value(c, (ValueType)t, kwhat, 0);
    if (kv_index_.count(key)) c.fail(at, "duplicate " + kwhat);
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (!is_unsigned(a->type) || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 30)) {
      throw Error(p + ": key 'general.alignment' must be an unsigned power of two, found " +
                  a->summary());
    }
    alignment_ = a->u;
  }

  tensors_.reserve((size_t)n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    ti.info_offset = c.pos();
    ti.name = c.str("tensor info " + std::to_string(k) + " name", kMaxTensorNameLen);
    const std::string twhat = "tensor " + quote(ti.name, 80);
    const size_t dims_at = c.pos();
    const uint32_t n_dims = c.read<uint32_t>(twhat + " dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      c.fail(dims_at, twhat + ": " + std::to_string(n_dims) + " dimensions (must be 1.." +
                          std::to_string(kMaxDims) + ")");
    }
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t at = c.pos();
      const uint64_t ne = c.read<uint64_t>(twhat + " dimension");
      if (ne > (uint64_t)std::numeric_limits<int64_t>::max()) {
        c.fail(at, twhat + ": dimension " + std::to_string(d) + " = " + std::to_string(ne) +
                       " is absurd");
      }
      ti.ne.push_back((int64_t)ne);
    }
    const size_t type_at = c.pos();
    ti.type = c.read<uint32_t>(twhat + " type");
    if (!ggml::find_type(ti.type)) {
      c.fail(type_at, twhat + ": tensor type " + ggml::type_name(ti.type) +
                          " is not supported (readable: " + ggml::readable_type_names() + ")");
    }
    ti.offset = c.read<uint64_t>(twhat + " data offset");
    try {
      ti.bytes = ggml::tensor_bytes(ti.type, ti.ne, twhat + " " + ti.shape_str());
    } catch (const Error& e) {
      c.fail(dims_at, e.what());
    }
    if (tensor_index_.count(ti.name)) c.fail(ti.info_offset, "duplicate " + twhat);
    tensor_index_[ti.name] = tensors_.size();
    tensors_.push_back(std::move(ti));
  }

  // Data section: aligned end of the tensor infos. Validate every tensor against the file
  // before anyone touches tensor bytes.
  const uint64_t end_infos = c.pos();
  data_offset_ = (end_infos + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t file_size = bytes_->size();
  if (!tensors_.empty() && data_offset_ > file_size) {
    c.fail(end_infos, "data section would start at " + std::to_string(data_offset_) +
                          ", past the end of the " + std::to_string(file_size) +
                          "-byte file (truncated file?)");
  }
  const uint64_t data_size = file_size > data_offset_ ? file_size - data_offset_ : 0;
  for (auto& ti : tensors_) {
    const std::string twhat = "tensor " + quote(ti.name, 80);
    if (ti.offset % alignment_ != 0) {
      throw Error(p + ": offset " + std::to_string(ti.info_offset) + ": " + twhat +
                  ": data offset " + std::to_string(ti.offset) + " is not a multiple of the " +
                  std::to_string(alignment_) + "-byte alignment");
    }
    if (ti.offset > data_size || (uint64_t)ti.bytes > data_size - ti.offset) {
      throw Error(p + ": offset " + std::to_string(ti.info_offset) + ": " + twhat + " (" +
                  ggml::type_name(ti.type) + " " + ti.shape_str() + ", " +
                  std::to_string(ti.bytes) + " bytes at data offset " + std::to_string(ti.offset) +
                  ") extends past the end of the file (data section "
                  "has " +
                  std::to_string(data_size) + " bytes; truncated file?)");
    }
    ti.file_offset = data_offset_ + ti.offset;
    ti.data = bytes_->data() + ti.file_offset;
  }
  std::vector<const TensorInfo*> order;
  for (const auto& ti : tensors_) {
    if (ti.bytes > 0) order.push_back(&ti);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo* a = order[k - 1];
    const TensorInfo* b = order[k];
    if (a->offset + (uint64_t)a->bytes > b->offset) {
      throw Error(p + ": tensors " + quote(a->name, 80) + " (data offset " +
                  std::to_string(a->offset) + ", " + std::to_string(a->bytes) + " bytes) and " +
                  quote(b->name, 80) + " (data offset " + std::to_string(b->offset) + ") overlap");
    }
  }
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void missing(const std::string& path, const std::string& key) {
  throw Error(path + ": required key '" + key + "' is missing");
}
}  // namespace

int64_t File::get_int(const std::string& key) const {
  const Value* v = find(key);
  if (!v) missing(path(), key);
  return value_as_int(*v, path() + ": key '" + key + "'");
}

int64_t File::get_int(const std::string& key, int64_t def) const {
  return find(key) ? get_int(key) : def;
}

double File::get_float(const std::string& key) const {
  const Value* v = find(key);
  if (!v) missing(path(), key);
  if (v->is_float()) return v->f;
  if (v->is_integer()) return (double)value_as_int(*v, path() + ": key '" + key + "'");
  throw Error(path() + ": key '" + key + "': expected a number, found " + v->summary());
}

double File::get_float(const std::string& key, double def) const {
  return find(key) ? get_float(key) : def;
}

std::string File::get_string(const std::string& key) const {
  const Value* v = find(key);
  if (!v) missing(path(), key);
  if (v->type != ValueType::kString) {
    throw Error(path() + ": key '" + key + "': expected a string, found " + v->summary());
  }
  return v->s;
}

std::string File::get_string(const std::string& key, const std::string& def) const {
  return find(key) ? get_string(key) : def;
}

bool File::get_bool(const std::string& key, bool def) const {
  const Value* v = find(key);
  if (!v) return def;
  if (v->type == ValueType::kBool) return v->u != 0;
  if (v->is_integer()) return value_as_int(*v, path() + ": key '" + key + "'") != 0;
  throw Error(path() + ": key '" + key + "': expected a bool, found " + v->summary());
}

std::vector<std::string> File::get_strings(const std::string& key) const {
  const Value* v = find(key);
  if (!v) missing(path(), key);
  if (v->type != ValueType::kArray || v->elem != ValueType::kString) {
    throw Error(path() + ": key '" + key + "': expected an array of strings, found " +
                v->summary(2));
  }
  std::vector<std::string> out;
  out.reserve(v->arr.size());
  for (const auto& x : v->arr) out.push_back(x.s);
  return out;
}

std::vector<int64_t> File::get_ints(const std::string& key) const {
  const Value* v = find(key);
  if (!v) missing(path(), key);
  if (v->type != ValueType::kArray || !(is_unsigned(v->elem) || is_signed(v->elem))) {
    throw Error(path() + ": key '" + key + "': expected an array of integers, found " +
                v->summary(2));
  }
  std::vector<int64_t> out;
  out.reserve(v->arr.size());
  for (size_t k = 0; k < v->arr.size(); ++k) {
    out.push_back(
        value_as_int(v->arr[k], path() + ": key '" + key + "'[" + std::to_string(k) + "]"));
  }
  return out;
}

// ---- Writer ----------------------------------------------------------------------------------
Writer::Writer(std::string path, uint32_t alignment)
    : path_(std::move(path)), alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    throw Error(path_ + ": GGUF alignment " + std::to_string(alignment_) +
                " is not a power of two");
  }
  if (alignment_ != kDefaultAlignment) kv_.emplace_back("general.alignment", Value::u32(alignment));
}

Writer::~Writer() {
  if (f_) std::fclose(f_);
  if (!finished_ && header_written_) std::remove(tmp_path_.c_str());
}

void Writer::set(const std::string& key, Value v) {
  if (header_written_) throw Error(path_ + ": metadata key '" + key + "' set after tensor data");
  if (key.empty() || key.size() > kMaxKeyLen) {
    throw Error(path_ + ": metadata key of " + std::to_string(key.size()) + " bytes");
  }
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  kv_.emplace_back(key, std::move(v));
}

void Writer::add_tensor(const std::string& name, uint32_t type, const std::vector<int64_t>& ne) {
  if (header_written_) throw Error(path_ + ": tensor '" + name + "' declared after tensor data");
  if (name.empty() || name.size() > 64) {
    throw Error(path_ + ": tensor name '" + name + "' must be 1..64 bytes (ggml's limit)");
  }
  if (ne.empty() || ne.size() > kMaxDims) {
    throw Error(path_ + ": tensor '" + name + "' must have 1..4 dimensions");
  }
  for (const auto& d : decls_) {
    if (d.name == name) throw Error(path_ + ": tensor '" + name + "' declared twice");
  }
  Decl d{name, type, ne, ggml::tensor_bytes(type, ne, path_ + ": tensor '" + name + "'"), 0};
  uint64_t off = 0;
  if (!decls_.empty()) {
    const Decl& last = decls_.back();
    off = (last.offset + (uint64_t)last.bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  d.offset = off;
  decls_.push_back(std::move(d));
}

void Writer::write_raw(const void* p, size_t n) {
  if (n == 0) return;
  if (std::fwrite(p, 1, n, f_) != n) {
    throw Error(tmp_path_ + ": write failed: " + std::strerror(errno));
  }
  pos_ += (int64_t)n;
}

void Writer::pad_to(uint64_t abs_offset) {
  static const uint8_t zeros[256] = {};
  while ((uint64_t)pos_ < abs_offset) {
    write_raw(zeros, (size_t)std::min<uint64_t>(sizeof zeros, abs_offset - (uint64_t)pos_));
  }
}

namespace {
template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
void put_value(std::vector<uint8_t>& b, const Value& v) {
  switch (v.type) {
    case ValueType::kU8:
      put<uint8_t>(b, (uint8_t)v.u);
      break;
    case ValueType::kI8:
      put<int8_t>(b, (int8_t)v.i);
      break;
    case ValueType::kU16:
      put<uint16_t>(b, (uint16_t)v.u);
      break;
    case ValueType::kI16:
      put<int16_t>(b, (int16_t)v.i);
      break;
    case ValueType::kU32:
      put<uint32_t>(b, (uint32_t)v.u);
      break;
    case ValueType::kI32:
      put<int32_t>(b, (int32_t)v.i);
      break;
    case ValueType::kF32:
      put<float>(b, (float)v.f);
      break;
    case ValueType::kBool:
      put<uint8_t>(b, v.u ? 1 : 0);
      break;
    case ValueType::kString:
      put_str(b, v.s);
      break;
    case ValueType::kU64:
      put<uint64_t>(b, v.u);
      break;
    case ValueType::kI64:
      put<int64_t>(b, v.i);
      break;
    case ValueType::kF64:
      put<double>(b, v.f);
      break;
    case ValueType::kArray:
      put<uint32_t>(b, (uint32_t)v.elem);
      put<uint64_t>(b, v.arr.size());
      for (const auto& x : v.arr) {
        if (x.type != v.elem) throw Error("gguf::Writer: array item type differs from its array");
        put_value(b, x);
      }
      break;
  }
}
}  // namespace

void Writer::write_header() {
  f_ = create_temp_for(path_, &tmp_path_);
  tmp_guard_ = std::make_unique<TempFileGuard>(tmp_path_);
  header_written_ = true;
  std::vector<uint8_t> b;
  put<uint32_t>(b, kMagic);
  put<uint32_t>(b, 3);
  put<uint64_t>(b, decls_.size());
  put<uint64_t>(b, kv_.size());
  for (const auto& kv : kv_) {
    put_str(b, kv.first);
    put<uint32_t>(b, (uint32_t)kv.second.type);
    put_value(b, kv.second);
    if (b.size() > (1u << 20)) {  // keep the buffer small for huge vocabularies
      write_raw(b.data(), b.size());
      b.clear();
    }
  }
  for (const auto& d : decls_) {
    put_str(b, d.name);
    put<uint32_t>(b, (uint32_t)d.ne.size());
    for (int64_t x : d.ne) put<uint64_t>(b, (uint64_t)x);
    put<uint32_t>(b, d.type);
    put<uint64_t>(b, d.offset);
  }
  write_raw(b.data(), b.size());
  data_start_ = ((uint64_t)pos_ + alignment_ - 1) / alignment_ * alignment_;
  pad_to(data_start_);
}

void Writer::begin_tensor(const std::string& name) {
  if (finished_) throw Error(path_ + ": writer already finished");
  if (!header_written_) write_header();
  if (cur_written_ >= 0) {
    throw Error(path_ + ": begin_tensor('" + name + "') while '" + decls_[next_].name +
                "' is still open");
  }
  if (next_ >= decls_.size() || decls_[next_].name != name) {
    throw Error(path_ + ": tensor '" + name + "' written out of order (next declared: " +
                (next_ < decls_.size() ? "'" + decls_[next_].name + "'" : "none") + ")");
  }
  pad_to(data_start_ + decls_[next_].offset);
  cur_written_ = 0;
}

void Writer::append(const void* data, size_t bytes) {
  if (cur_written_ < 0) throw Error(path_ + ": append() without begin_tensor()");
  const Decl& d = decls_[next_];
  if ((uint64_t)cur_written_ + bytes > (uint64_t)d.bytes) {
    throw Error(path_ + ": tensor '" + d.name + "' gets more than its " + std::to_string(d.bytes) +
                " bytes");
  }
  write_raw(data, bytes);
  cur_written_ += (int64_t)bytes;
}

void Writer::end_tensor() {
  if (cur_written_ < 0) throw Error(path_ + ": end_tensor() without begin_tensor()");
  const Decl& d = decls_[next_];
  if (cur_written_ != d.bytes) {
    throw Error(path_ + ": tensor '" + d.name + "' got " + std::to_string(cur_written_) +
                " bytes, its " + ggml::type_name(d.type) + " shape needs " +
                std::to_string(d.bytes));
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
    throw Error(path_ + ": finish() with " + std::to_string(decls_.size() - next_) +
                " tensor(s) not written (next: '" +
                (next_ < decls_.size() ? decls_[next_].name : std::string()) + "')");
  }
  pad_to(((uint64_t)pos_ + alignment_ - 1) / alignment_ * alignment_);
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

}  // namespace tritune::gguf
