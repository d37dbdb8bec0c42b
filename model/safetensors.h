// safetensors reader and streaming writer (the Hugging Face checkpoint format).
//
// Layout: u64 N (little-endian), N bytes of JSON header, then the data. The header maps tensor
// names to {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]} (offsets
// relative to the data start; shapes in PyTorch order, the LAST dimension contiguous) plus an
// optional "__metadata__" object of string values.
//
// Like the GGUF reader, the reader validates everything (header size against the file, dtypes,
// byte counts against shapes, bounds, overlaps) before any tensor byte is touched, and every
// error names the file and the tensor.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/temp_file_guard.h"

namespace tritune::safetensors {

// Bytes per element of a dtype name ("F32", "BF16", "U8", ...); 0 if unknown.
int64_t dtype_size(const std::string& dtype);
// The GGUF/ggml type id that has the same element layout (F32, F16, BF16), or UINT32_MAX.
uint32_t dtype_to_ggml(const std::string& dtype);

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the safetensors library's own limit

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;   // PyTorch order: shape.back() is contiguous
  uint64_t begin = 0, end = 0;  // relative to the data start
  int64_t bytes = 0;
  const uint8_t* data = nullptr;  // into the file bytes
  int64_t elements() const;
  std::string shape_str() const;
};

class File {
 public:
  static std::shared_ptr<const File> open(const std::string& path);
  static std::shared_ptr<const File> parse(std::shared_ptr<const MappedFile> bytes);

  const std::string& path() const { return bytes_->path(); }
  const std::shared_ptr<const MappedFile>& bytes() const { return bytes_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  File() = default;
  void parse_all();
  std::shared_ptr<const MappedFile> bytes_;
  uint64_t data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Streams a safetensors file: declare every tensor, then write their bytes in declaration
// order. Written to a fresh PATH.tmp-<pid>-<n> and renamed on finish().
class Writer {
 public:
  explicit Writer(std::string path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void set_metadata(const std::string& key, const std::string& value);
  void add_tensor(const std::string& name, const std::string& dtype,
                  const std::vector<int64_t>& shape);
  void begin_tensor(const std::string& name);
  void append(const void* data, size_t bytes);
  void end_tensor();
  void write_tensor(const std::string& name, const void* data, size_t bytes);
  void finish();

 private:
  struct Decl {
    std::string name, dtype;
    std::vector<int64_t> shape;
    int64_t bytes;
    uint64_t begin;
  };
  void write_header();
  void write_raw(const void* p, size_t n);
  std::string path_, tmp_path_;
  std::unique_ptr<TempFileGuard> tmp_guard_;  // the temporary, removed if a signal ends the process
  std::map<std::string, std::string> metadata_;
  std::vector<Decl> decls_;
  std::FILE* f_ = nullptr;
  bool header_written_ = false, finished_ = false;
  size_t next_ = 0;
  int64_t cur_written_ = -1;
};

}  // namespace tritune::safetensors
