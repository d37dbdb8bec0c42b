// The LLaMA-3 pre-tokenizer: splits text into the pieces BPE runs on, exactly like the regex
//
//   (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
//   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// applied leftmost-first, but as a hand-written matcher over code points (std::regex has no
// Unicode classes and backtracks badly). Bytes that are not valid UTF-8 count as one "other"
// character each (not a letter, number or space), so any byte string splits without loss.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace tritune {

struct ByteSpan {
  size_t begin;  // byte offsets into the input, [begin, end)
  size_t end;
};

// The spans cover the input exactly, in order, with no gaps; an empty input gives no spans.
std::vector<ByteSpan> pretokenize_llama3(std::string_view text);

// Convenience for tests and tools: the pieces as strings.
std::vector<std::string_view> pretokenize_llama3_pieces(std::string_view text);

}  // namespace tritune
