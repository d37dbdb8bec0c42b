// A small strict JSON (RFC 8259) value type, parser and writer.
//
// Used for Hugging Face tokenizer.json / tokenizer_config.json / config.json, safetensors
// headers and the tuner's JSON-lines files (kernels/ so that tuner/ and model/ share it; the
// tuner's null-for-infinity numbers are in tuner/record.h). Strict on purpose: a model file with
// malformed JSON should fail loudly at load with the line and column, not half-load. Object member
// order is kept (so dumps are stable) and duplicate keys are rejected. Numbers keep both a double
// and, when the literal is an integer that fits, an exact int64 (token ids, tensor offsets above
// 2^53 stay exact).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tritune::json {

enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

const char* type_name(Type t);

class Value {
 public:
  using Member = std::pair<std::string, Value>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : type_(Type::kBool), bool_(b) {}
  Value(int v) : Value(static_cast<int64_t>(v)) {}
  Value(int64_t v) : type_(Type::kNumber), is_int_(true), int_(v), num_(static_cast<double>(v)) {}
  Value(uint64_t v);  // throws tritune::Error above INT64_MAX
  Value(double v) : type_(Type::kNumber), num_(v) {}
  Value(const char* s) : type_(Type::kString), str_(s) {}
  Value(std::string s) : type_(Type::kString), str_(std::move(s)) {}
  Value(std::string_view s) : type_(Type::kString), str_(s) {}

  static Value array() { return Value(Type::kArray); }
  static Value object() { return Value(Type::kObject); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  // A number written without fraction/exponent that fits int64 (or built from an integer).
  bool is_int() const { return type_ == Type::kNumber && is_int_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed access; each throws tritune::Error naming the expected and actual type.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int64() const;  // exact integers only ("3.0" and "1e3" are not integers)
  const std::string& as_string() const;
  const std::vector<Value>& as_array() const;
  std::vector<Value>& as_array();
  const std::vector<Member>& members() const;  // object members in document order

  // Arrays and objects: element count. Other types: 0.
  size_t size() const;
  const Value& operator[](size_t i) const;  // arrays; throws when out of range

  // Objects. find() returns nullptr when absent (or when this is not an object).
  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const Value& at(std::string_view key) const;  // throws naming the missing key
  // Builders: set() replaces an existing key; push_back() appends to an array.
  Value& set(std::string key, Value v);
  Value& push_back(Value v);

  bool operator==(const Value& o) const;
  bool operator!=(const Value& o) const { return !(*this == o); }

 private:
  explicit Value(Type t) : type_(t) {}
  friend class Parser;

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;
  int64_t int_ = 0;
  double num_ = 0.0;
  std::string str_;
  std::vector<Value> arr_;
  std::vector<Member> obj_;
  std::unordered_map<std::string, size_t> index_;  // key -> position in obj_
};

// Parses one JSON text (surrounding whitespace allowed, nothing else). `source` names the input
// in error messages, which read "<source>:<line>:<column>: <what>". Nesting deeper than
// kMaxDepth is rejected so hostile input cannot overflow the stack.
constexpr int kMaxDepth = 512;
Value parse(std::string_view text, const std::string& source = "<json>");
// Reads and parses a file; errors name the path.
Value parse_file(const std::string& path);

// The JSON string literal for `s`, quotes included. Control characters, '"' and '\\' are
// escaped; other bytes (UTF-8) pass through. Invalid UTF-8 is emitted as-is.
std::string quote(std::string_view s);
// Serializes a value. indent < 0: compact on one line; indent >= 0: pretty with that many
// spaces per level. Doubles use the shortest representation that round-trips; NaN and infinity
// throw (JSON has no spelling for them).
std::string dump(const Value& v, int indent = -1);

}  // namespace tritune::json
