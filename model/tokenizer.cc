// LLaMA-3 byte-level BPE: construction/validation, encoding and decoding (see tokenizer.h).
#include "model/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <queue>
#include <set>

#include "kernels/error.h"
#include "model/tokenizer_pretok.h"
#include "model/unicode.h"

namespace tritune {
namespace {

std::string id_str(int64_t id) {
  return std::to_string(id);
}

// Text of a "<0xAB>" byte token, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = t[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      v |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      v |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return v;
}

// Bytes represented by a normal token's byte-level text. Code points outside the byte map
// (a vocabulary that stores some raw text) are kept as their UTF-8.
std::string byte_level_to_bytes(const std::string& t) {
  std::string out;
  out.reserve(t.size());
  for (size_t p = 0; p < t.size();) {
    unicode::Decoded d = unicode::decode_utf8(t, p);
    int b = d.cp == unicode::kInvalidCodepoint ? -1 : unicode::unicode_to_byte(d.cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(t, p, d.len);
    }
    p += d.len;
  }
  return out;
}

bool is_llama3_pre(const std::string& pre) {
  return pre.empty() || pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

}  // namespace

Tokenizer Tokenizer::from_vocab(TokenizerData data) {
  Tokenizer t;
  t.data_ = std::move(data);
  t.build();
  return t;
}

void Tokenizer::build() {
  TokenizerData& d = data_;
  const size_t n = d.tokens.size();
  if (n == 0)
    throw Error("tokenizer: the vocabulary is empty (tokenizer.ggml.tokens has no entries)");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw Error("tokenizer: vocabulary of " + std::to_string(n) + " tokens does not fit int32 ids");
  }
  if (!is_llama3_pre(d.pre)) {
    throw Error("tokenizer: unsupported pre-tokenizer \"" + d.pre +
                "\" (tokenizer.ggml.pre); tritune implements the LLaMA-3 one: \"llama-bpe\", "
                "\"llama3\" or \"llama-v3\"");
  }
  if (d.pre.empty()) d.pre = "llama-bpe";
  ignore_merges_ = d.ignore_merges.value_or(true);

  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      throw Error(std::string("tokenizer: ") + what + " id " + id_str(id) +
                  " is outside the vocabulary [0, " + std::to_string(n) + ") (use -1 for none)");
    }
  };
  check_id(d.bos, "BOS");
  check_id(d.eos, "EOS");
  check_id(d.eot, "EOT");
  check_id(d.unk, "UNK");
  check_id(d.pad, "PAD");
  if (d.add_bos && d.bos < 0) {
    throw Error("tokenizer: add_bos is set but there is no BOS id (tokenizer.ggml.bos_token_id)");
  }

  // The official 2B4T GGUF has no tokenizer.ggml.eot_token_id, yet its chat turns end with
  // <|eot_id|>: without this, generation would not stop there (llama.cpp looks the token up by
  // text the same way).
  if (d.eot < 0) {
    for (size_t i = 0; i < n; ++i) {
      if (d.tokens[i] == "<|eot_id|>") {
        d.eot = static_cast<int32_t>(i);
        break;
      }
    }
  }
  if (d.token_types.empty()) d.token_types.assign(n, kTokenNormal);
  if (d.token_types.size() != n) {
    throw Error("tokenizer: " + std::to_string(d.token_types.size()) + " token types for " +
                std::to_string(n) + " tokens (tokenizer.ggml.token_type must match tokens)");
  }
  for (size_t i = 0; i < n; ++i) {
    if (d.token_types[i] < kTokenUndefined || d.token_types[i] > kTokenByte) {
      throw Error("tokenizer: token " + std::to_string(i) + " has invalid type " +
                  id_str(d.token_types[i]) + " (valid: 0..6)");
    }
  }
  // BOS/EOS/EOT/PAD are control tokens whatever the file says (a vocabulary that types them
  // normal would otherwise never split them out of chat prompts nor skip them when decoding).
  for (int32_t id : {d.bos, d.eos, d.eot, d.pad}) {
    if (id >= 0 && (d.token_types[id] == kTokenNormal || d.token_types[id] == kTokenUndefined)) {
      d.token_types[id] = kTokenControl;
    }
  }
  if (d.unk >= 0 && d.token_types[d.unk] != kTokenControl) d.token_types[d.unk] = kTokenUnknown;

  token_to_id_.clear();
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!d.tokens[i].empty()) token_to_id_.emplace(d.tokens[i], static_cast<int32_t>(i));
  }

  // One token per byte value: its byte-level character, else an <0xAB> token, else UNK.
  for (int b = 0; b < 256; ++b) {
    int32_t id = find_token(unicode::byte_to_unicode(static_cast<uint8_t>(b)));
    if (id < 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      id = find_token(buf);
    }
    if (id < 0) id = d.unk;
    if (id < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%02X", b);
      throw Error(std::string("tokenizer: the vocabulary has no token for byte 0x") + hex +
                  " (neither its byte-level form nor <0x" + hex + ">) and no UNK token");
    }
    byte_ids_[b] = id;
  }

  merges_.clear();
  merges_.reserve(d.merges.size());
  unusable_merges_ = 0;
  for (size_t r = 0; r < d.merges.size(); ++r) {
    const std::string& m = d.merges[r];
    size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size()) {
      throw Error("tokenizer: merge #" + std::to_string(r) + " \"" + m +
                  "\" is not of the form \"A B\" (tokenizer.ggml.merges)");
    }
    int32_t a = find_token(std::string_view(m).substr(0, sp));
    int32_t b = find_token(std::string_view(m).substr(sp + 1));
    std::string joined = m.substr(0, sp) + m.substr(sp + 1);
    int32_t res = find_token(joined);
    if (a < 0 || b < 0 || res < 0) {
      ++unusable_merges_;
      continue;
    }
    uint64_t key = (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
    merges_.emplace(key, Merge{static_cast<int32_t>(r), res});  // first (lowest) rank wins
  }

  pieces_.assign(n, std::string());
  special_to_id_.clear();
  std::set<size_t> lengths;
  has_user_defined_ = false;
  std::fill(std::begin(special_first_byte_), std::end(special_first_byte_), false);
  std::fill(std::begin(user_first_byte_), std::end(user_first_byte_), false);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = d.tokens[i];
    switch (d.token_types[i]) {
      case kTokenByte: {
        int b = parse_byte_token(t);
        pieces_[i] = b >= 0 ? std::string(1, static_cast<char>(b)) : byte_level_to_bytes(t);
        break;
      }
      case kTokenControl:
      case kTokenUnknown:
      case kTokenUserDefined:
        pieces_[i] = t;
        break;
      case kTokenUnused:
        break;
      default:
        pieces_[i] = byte_level_to_bytes(t);
        break;
    }
    int32_t ty = d.token_types[i];
    if ((ty == kTokenControl || ty == kTokenUnknown || ty == kTokenUserDefined) && !t.empty()) {
      if (special_to_id_.emplace(t, static_cast<int32_t>(i)).second) {
        lengths.insert(t.size());
        special_first_byte_[static_cast<unsigned char>(t[0])] = true;
        if (ty == kTokenUserDefined) {
          user_first_byte_[static_cast<unsigned char>(t[0])] = true;
          has_user_defined_ = true;
        }
      }
    }
  }
  special_lengths_.assign(lengths.rbegin(), lengths.rend());
  chat_format_ = detect_chat_format(d.chat_template);
}

int32_t Tokenizer::find_token(std::string_view text) const {
  auto it = token_to_id_.find(std::string(text));
  return it == token_to_id_.end() ? -1 : it->second;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab()) {
    throw Error("tokenizer: token id " + id_str(id) + " is outside the vocabulary [0, " +
                id_str(n_vocab()) + ")");
  }
  return data_.tokens[id];
}

int32_t Tokenizer::token_type(int32_t id) const {
  token_text(id);  // range check
  return data_.token_types[id];
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_vocab() && data_.token_types[id] == kTokenControl;
}

std::pair<int32_t, size_t> Tokenizer::match_special(std::string_view text, size_t pos,
                                                    bool parse_special) const {
  const unsigned char c = static_cast<unsigned char>(text[pos]);
  if (!(parse_special ? special_first_byte_[c] : user_first_byte_[c])) return {-1, 0};
  for (size_t len : special_lengths_) {
    if (len > text.size() - pos) continue;
    auto it = special_to_id_.find(std::string(text.substr(pos, len)));
    if (it == special_to_id_.end()) continue;
    if (!parse_special && data_.token_types[it->second] != kTokenUserDefined) continue;
    return {it->second, len};
  }
  return {-1, 0};
}

void Tokenizer::bpe_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(bytes[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = token_to_id_.find(unicode::bytes_to_byte_level(bytes));
    if (it != token_to_id_.end() && data_.token_types[it->second] != kTokenControl) {
      out.push_back(it->second);
      return;
    }
  }
  // Doubly linked symbols, merged in place; a min-heap of candidate pairs ordered by (rank,
  // position of the left symbol), validated when popped since merges make entries stale.
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, left, left_id, right_id, result;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  const int32_t n = static_cast<int32_t>(bytes.size());
  std::vector<Sym> sym(n);
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = {byte_ids_[static_cast<unsigned char>(bytes[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int32_t l) {
    if (l < 0) return;
    int32_t r = sym[l].next;
    if (r < 0) return;
    uint64_t key = (static_cast<uint64_t>(sym[l].id) << 32) | static_cast<uint32_t>(sym[r].id);
    auto it = merges_.find(key);
    if (it != merges_.end()) {
      heap.push({it->second.rank, l, sym[l].id, sym[r].id, it->second.result});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = sym[c.left];
    if (l.id != c.left_id || l.next < 0 || sym[l.next].id != c.right_id) continue;  // stale
    const int32_t r = l.next;
    l.id = c.result;
    l.next = sym[r].next;
    if (l.next >= 0) sym[l.next].prev = c.left;
    sym[r].id = -1;
    consider(l.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  for (const ByteSpan& s : pretokenize_llama3(text)) {
    bpe_piece(text.substr(s.begin, s.end - s.begin), out);
  }
}

std::vector<int32_t> Tokenizer::encode_fragments(const std::vector<Fragment>& fragments,
                                                 bool add_special) const {
  std::vector<int32_t> out;
  if (add_special && data_.add_bos) out.push_back(data_.bos);
  std::string pending;  // plain text not yet encoded, possibly spanning fragments
  for (const Fragment& f : fragments) {
    const std::string_view t = f.text;
    const bool scan = f.parse_special ? !special_to_id_.empty() : has_user_defined_;
    size_t start = 0;
    if (scan) {
      for (size_t i = 0; i < t.size();) {
        auto [id, len] = match_special(t, i, f.parse_special);
        if (id < 0) {
          ++i;
          continue;
        }
        pending.append(t.substr(start, i - start));
        encode_plain(pending, out);
        pending.clear();
        out.push_back(id);
        i += len;
        start = i;
      }
    }
    pending.append(t.substr(start));
  }
  encode_plain(pending, out);
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  return encode_fragments({Fragment{text, parse_special}}, add_special);
}

std::vector<int32_t> Tokenizer::encode_chat(const std::vector<ChatMessage>& messages,
                                            bool add_generation_prompt, bool add_special) const {
  std::vector<ChatPiece> pieces = render_chat_pieces(chat_format_, messages, add_generation_prompt);
  std::vector<Fragment> frags;
  frags.reserve(pieces.size());
  for (const ChatPiece& p : pieces) frags.push_back({p.text, p.special});
  return encode_fragments(frags, add_special);
}

std::string Tokenizer::render_chat(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const {
  return tritune::render_chat(chat_format_, messages, add_generation_prompt);
}

std::string Tokenizer::token_to_piece(int32_t id, bool skip_special) const {
  int32_t ty = token_type(id);  // range-checked
  if (skip_special && (ty == kTokenControl || ty == kTokenUnknown)) return std::string();
  return pieces_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    int32_t ty = token_type(id);  // range-checked
    if (skip_special && (ty == kTokenControl || ty == kTokenUnknown)) continue;
    out += pieces_[id];
  }
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_to_piece(id, skip_special_);
  size_t n = unicode::utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace tritune
