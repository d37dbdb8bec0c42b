// A minimal JSON value, parser and writer for the tuner's JSON-lines files (database records,
// child-process results, exports). tuner/ cannot depend on model/ (link order kernels <- energy <-
// tuner <- model), so it carries its own: objects keep insertion order, numbers are doubles
// (integers up to 2^53 round-trip exactly), non-finite numbers are written as null.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tritune {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::kBool), b_(b) {}
  Json(int v) : type_(Type::kNumber), num_(v) {}
  Json(int64_t v) : type_(Type::kNumber), num_((double)v) {}
  Json(uint64_t v) : type_(Type::kNumber), num_((double)v) {}
  Json(double v) : type_(Type::kNumber), num_(v) {}
  Json(const char* s) : type_(Type::kString), str_(s) {}
  Json(std::string s) : type_(Type::kString), str_(std::move(s)) {}
  static Json array() {
    Json j;
    j.type_ = Type::kArray;
    return j;
  }
  static Json object() {
    Json j;
    j.type_ = Type::kObject;
    return j;
  }
  static Json numbers(const std::vector<double>& v);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed access; throws Error naming the expected type.
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // throws if not an integral number
  const std::string& as_string() const;
  const std::vector<Json>& items() const;                            // array elements
  const std::vector<std::pair<std::string, Json>>& members() const;  // object members
  std::vector<double> as_numbers() const;  // array of numbers (null -> +inf)

  // Object access. get() returns nullptr when absent; at() throws Error naming the key.
  const Json* get(const std::string& key) const;
  const Json& at(const std::string& key) const;
  Json& set(const std::string& key, Json v);  // replaces or appends; returns *this
  Json& push(Json v);                         // array append; returns *this

  // Compact one-line serialization (no newline inside: safe as a JSON-lines record).
  std::string dump() const;

 private:
  Type type_ = Type::kNull;
  bool b_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

// Parses one JSON document; throws Error("... at offset N: ...") on malformed or truncated text
// and on nesting deeper than 64 levels.
Json parse_json(const std::string& text);

}  // namespace tritune
