// Search spaces of the generator families, declared next to each generator (i2s_space.cc,
// fp_space.cc) and read by the tuner. No Halide dependency: the runtime, the tuner and the
// generators all link this.
//
// A point of a space is a set of GeneratorParam values; with an op and an ISA it names a variant:
//   <format>_<op>_<schedule>__<isa>     e.g.  i2s_gemv_r4_u2_v512_g4_avnni__avx512vnni
// where <schedule> is the params in declaration order as <key><value>. parse_variant_name() is
// the one parser of that spec (tests, tuner, reports, dispatch all use it).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tritune {

enum class Isa : int;

// A problem the variant is run on: N output rows, K inputs, T tokens.
struct Shape {
  int64_t n = 0, k = 0, tokens = 1;
};

using Params = std::map<std::string, std::string>;  // GeneratorParam name -> value

struct ParamDomain {
  std::string name;                 // GeneratorParam name ("rows")
  std::string key;                  // one-letter key in variant names ("r")
  std::vector<std::string> values;  // the domain
  std::string default_value;        // the shipped default
  // Per-ISA defaults where the shipped default does not fit (isa name -> value).
  std::map<std::string, std::string> isa_defaults;
  std::string doc;  // what the knob does and why it matters
};

// A constraint returns an empty string when satisfied, else why not (for the record).
struct Constraint {
  std::string text;                                                    // e.g. "K % kblock == 0"
  std::function<std::string(const Params&, const Shape*, Isa)> check;  // shape may be null
};

struct SearchSpace {
  std::string family;     // "i2s", "fp"
  std::string op;         // "gemv", "gemm"
  std::string format;     // registry format name this family serves ("i2_s", "f16", ...)
  std::string generator;  // Halide generator name ("i2s_gemv")
  std::vector<ParamDomain> params;
  std::vector<Constraint> constraints;

  Params defaults() const;             // ISA-independent defaults
  Params defaults_for(Isa isa) const;  // the AOT default variant's params on that ISA
  // Empty if legal, else the first violated constraint's reason. shape may be null (ISA-only).
  std::string check(const Params& p, const Shape* shape, Isa isa) const;
  // Every legal point (cartesian product filtered by the constraints).
  std::vector<Params> enumerate(const Shape* shape, Isa isa) const;
  uint64_t size() const;  // unfiltered cardinality
  int64_t param_int(const Params& p, const std::string& name) const;
};

struct VariantName {
  std::string family, op;
  Params params;
  Isa isa;
};

const std::vector<SearchSpace>& all_spaces();
const SearchSpace& find_space(const std::string& family, const std::string& op);
std::string variant_name(const SearchSpace& s, const Params& p, Isa isa);
// Parses a variant name; throws Error naming the bad token.
VariantName parse_variant_name(const std::string& name);

// The families' declarations (one function per *_space.cc); all_spaces() lists them all.
std::vector<SearchSpace> i2s_spaces();
std::vector<SearchSpace> fp_spaces();

}  // namespace tritune
