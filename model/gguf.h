// GGUF (v2/v3) reader and streaming writer.
//
// File layout (ggml docs/gguf.md, little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv,
// n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims, u64 ne[n_dims],
// u32 type, u64 offset), padding to general.alignment (default 32), data. Strings are u64 length
// + bytes; arrays are u32 element type + u64 count + elements (nestable).
//
// The reader trusts nothing: every count and length is checked against the bytes left in the
// file before anything is allocated, and the whole tensor table (types, sizes, alignment, file
// bounds, overlaps) is validated before any tensor data is touched. Every error names the file,
// the byte offset and the key or tensor.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/mapped_file.h"
#include "model/temp_file_guard.h"

namespace tritune::gguf {

enum class ValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
constexpr uint32_t kValueTypeCount = 13;
const char* value_type_name(ValueType t);

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are refused

// One metadata value. Scalars live in u (unsigned and bool), i (signed) or f (f32/f64).
struct Value {
  ValueType type = ValueType::kU8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  ValueType elem = ValueType::kU8;  // arrays: element type
  std::vector<Value> arr;           // arrays: elements (all of type elem)

  static Value u8(uint8_t v);
  static Value i8(int8_t v);
  static Value u16(uint16_t v);
  static Value i16(int16_t v);
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value f32(float v);
  static Value boolean(bool v);
  static Value str(std::string v);
  static Value u64(uint64_t v);
  static Value i64(int64_t v);
  static Value f64(double v);
  // Throws Error if an item's type differs from elem.
  static Value array(ValueType elem, std::vector<Value> items);
  static Value strings(const std::vector<std::string>& v);
  static Value i32s(const std::vector<int32_t>& v);
  static Value f32s(const std::vector<float>& v);

  bool is_integer() const;
  bool is_float() const;
  bool operator==(const Value& o) const;
  bool operator!=(const Value& o) const { return !(*this == o); }
  // "u32 2560", "string 'gpt2'", "array<string>[128256] ['!', '\"', ...]".
  std::string summary(size_t max_items = 6) const;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;        // ne[0] is the contiguous dimension
  uint32_t type = 0;              // ggml type id (model/ggml_types.h)
  uint64_t offset = 0;            // relative to the data section
  int64_t bytes = 0;              // from the type table
  uint64_t file_offset = 0;       // absolute offset in the file
  uint64_t info_offset = 0;       // where the tensor's info entry starts (for messages)
  const uint8_t* data = nullptr;  // into the file bytes
  int64_t elements() const;
  std::string shape_str() const;  // "[2560, 6912]"
};

class File {
 public:
  // Maps and parses `path`. Throws Error on anything malformed.
  static std::shared_ptr<const File> open(const std::string& path);
  static std::shared_ptr<const File> parse(std::shared_ptr<const MappedFile> bytes);

  const std::string& path() const { return bytes_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::shared_ptr<const MappedFile>& bytes() const { return bytes_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(const std::string& key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(const std::string& name) const;

  // Typed getters; errors name the file and key. Integers accept every integer value type (and
  // check range), floats accept f32/f64 and integers.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double def) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::vector<std::string> get_strings(const std::string& key) const;  // array<string>
  std::vector<int64_t> get_ints(const std::string& key) const;         // array<integer>

 private:
  File() = default;
  void parse_all();
  std::shared_ptr<const MappedFile> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Writes a GGUF v3 file tensor by tensor, so models larger than memory can be written: declare
// metadata and tensors first, then stream each tensor's bytes in declaration order. The file is
// written to a fresh PATH.tmp-<pid>-<n> and renamed on finish(); an unfinished writer removes
// its temporary.
class Writer {
 public:
  explicit Writer(std::string path, uint32_t alignment = kDefaultAlignment);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Metadata, in insertion order (setting a key again replaces its value in place).
  void set(const std::string& key, Value v);
  // Declares a tensor (before any data is written). Throws on a duplicate name, a name longer
  // than 64 bytes, or a shape the type cannot hold.
  void add_tensor(const std::string& name, uint32_t type, const std::vector<int64_t>& ne);

  // Streams the data of the next declared tensor (they must come in declaration order).
  void begin_tensor(const std::string& name);
  void append(const void* data, size_t bytes);
  void end_tensor();  // throws if fewer or more bytes than the tensor's size were appended
  void write_tensor(const std::string& name, const void* data, size_t bytes);

  void finish();  // writes the padding, closes, renames the temporary to PATH
  const std::string& path() const { return path_; }
  int64_t bytes_written() const { return pos_; }

 private:
  struct Decl {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    int64_t bytes;
    uint64_t offset;
  };
  void write_raw(const void* p, size_t n);
  void write_header();
  void pad_to(uint64_t abs_offset);
  std::string path_, tmp_path_;
  std::unique_ptr<TempFileGuard> tmp_guard_;  // the temporary, removed if a signal ends the process
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Decl> decls_;
  std::FILE* f_ = nullptr;
  bool header_written_ = false, finished_ = false;
  size_t next_ = 0;           // index of the next tensor to write
  int64_t cur_written_ = -1;  // bytes of the current tensor so far (-1: none open)
  uint64_t data_start_ = 0;
  int64_t pos_ = 0;
};

}  // namespace tritune::gguf
