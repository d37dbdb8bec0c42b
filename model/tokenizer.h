// LLaMA-3 byte-level BPE tokenizer (the BitNet b1.58 2B4T vocabulary), built from plain data so
// that any loader (GGUF metadata, Hugging Face tokenizer.json, the synthetic-model writer) can
// construct it without this file knowing their formats.
//
// Encoding (llama.cpp `llama-vocab.cpp`, LLAMA_VOCAB_PRE_TYPE_LLAMA3):
//   1. split out special-token strings (user-defined tokens always; control tokens such as
//      <|eot_id|> only when parse_special is on), leftmost, longest first;
//   2. pre-tokenize each remaining run with the LLaMA-3 regex (tokenizer_pretok.h);
//   3. map each piece's bytes to GPT-2 byte-level characters (unicode.h);
//   4. ignore_merges: a piece that is itself a vocabulary token is emitted as that token;
//   5. otherwise BPE: repeatedly merge the adjacent pair with the lowest merge rank, the
//      leftmost on ties.
// Any byte string encodes (invalid UTF-8 goes through the byte tokens) and decode(encode(s))
// returns s exactly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/tokenizer_chat.h"

namespace tritune {

// GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type).
enum TokenType : int32_t {
  kTokenUndefined = 0,  // treated as normal
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,      // <|begin_of_text|>, <|eot_id|>, reserved specials
  kTokenUserDefined = 4,  // added tokens that are always matched verbatim in text
  kTokenUnused = 5,
  kTokenByte = 6,  // "<0xAB>" byte-fallback tokens
};

// Everything the tokenizer needs, as plain data. Field order is the aggregate-init order.
struct TokenizerData {
  std::vector<std::string> tokens;   // byte-level text per id (GGUF tokenizer.ggml.tokens)
  std::vector<int32_t> token_types;  // TokenType per id; empty = all normal
  std::vector<std::string> merges;   // "A B", rank = index (GGUF tokenizer.ggml.merges)
  int32_t bos = -1;                  // -1 = none
  int32_t eos = -1;
  int32_t eot = -1;  // end of turn; -1: the id of "<|eot_id|>" if the vocabulary has it
  std::string pre = "llama-bpe";  // pre-tokenizer: "llama-bpe", "llama3", "llama-v3"
  bool add_bos = true;            // prepend BOS when encoding with add_special
  std::string chat_template;      // Jinja source; only used to pick a ChatFormat
  // Optional extras (defaults fit LLaMA-3):
  std::optional<bool> ignore_merges;  // unset: true for the LLaMA-3 pre-tokenizer
  int32_t unk = -1;  // replaces a byte that has no byte token (never needed for LLaMA-3)
  int32_t pad = -1;
};

class Tokenizer {
 public:
  // Validates and indexes the data; throws tritune::Error naming the bad field, id or merge.
  static Tokenizer from_vocab(TokenizerData data);
  // Hugging Face tokenizer.json (a path, or the JSON text itself when it starts with '{'),
  // optionally with tokenizer_config.json (path or text) for BOS/EOS, add_bos_token and
  // chat_template. See tokenizer_data_from_hf_json.
  static Tokenizer from_tokenizer_json(const std::string& path_or_text,
                                       const std::string& config_path_or_text = "");

  // Encodes text. add_special: prepend BOS (if the vocabulary adds one). parse_special: turn
  // control-token strings like "<|eot_id|>" in the text into their ids (off by default so that
  // untrusted text cannot inject them).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const;
  // Encodes a chat with the model's format (BOS unless add_special is false, then the template;
  // message content is never parsed for special tokens). add_generation_prompt appends the
  // assistant's turn opener. Messages render one by one, so the tokens of a later turn
  // (add_special false) append to those of the turns before it.
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt = true,
                                   bool add_special = true) const;
  std::string render_chat(const std::vector<ChatMessage>& messages,
                          bool add_generation_prompt = true) const;
  ChatFormat chat_format() const { return chat_format_; }
  void set_chat_format(ChatFormat f) { chat_format_ = f; }

  // Bytes of one token (control tokens give their text unless skip_special; unused give "").
  // Throws for an id outside [0, n_vocab()).
  std::string token_to_piece(int32_t id, bool skip_special = false) const;
  // Concatenated pieces. A piece may end inside a UTF-8 character; the concatenation of all
  // pieces is the original bytes.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(data_.tokens.size()); }
  int32_t bos() const { return data_.bos; }
  int32_t eos() const { return data_.eos; }
  int32_t eot() const { return data_.eot; }
  bool add_bos() const { return data_.add_bos; }
  bool ignore_merges() const { return ignore_merges_; }
  // End of generation: EOS or EOT.
  bool is_eog(int32_t id) const { return id >= 0 && (id == data_.eos || id == data_.eot); }
  bool is_control(int32_t id) const;
  const std::string& token_text(int32_t id) const;  // as stored (byte-level form)
  int32_t token_type(int32_t id) const;
  int32_t find_token(std::string_view text) const;  // id of that exact token text, or -1
  size_t n_merges() const { return data_.merges.size(); }
  // Merges whose parts or result are not in the vocabulary (they can never apply).
  size_t n_unusable_merges() const { return unusable_merges_; }
  const TokenizerData& data() const { return data_; }

  // Encoding of several pieces of text as one: adjacent plain text from different pieces is
  // pre-tokenized together; special-token strings are split out per piece's parse_special.
  struct Fragment {
    std::string_view text;
    bool parse_special;
  };
  std::vector<int32_t> encode_fragments(const std::vector<Fragment>& fragments,
                                        bool add_special) const;

 private:
  Tokenizer() = default;
  void build();
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_piece(std::string_view bytes, std::vector<int32_t>& out) const;
  // The id and byte length of the longest special token at text[pos], or {-1, 0}.
  std::pair<int32_t, size_t> match_special(std::string_view text, size_t pos,
                                           bool parse_special) const;

  struct Merge {
    int32_t rank;
    int32_t result;
  };

  TokenizerData data_;
  bool ignore_merges_ = true;
  ChatFormat chat_format_ = ChatFormat::kBitnet2B4T;
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  size_t unusable_merges_ = 0;
  int32_t byte_ids_[256] = {};
  std::vector<std::string> pieces_;  // decoded bytes per id
  // Special-token matching: candidate lengths (longest first), per-first-byte filters.
  std::vector<size_t> special_lengths_;
  bool special_first_byte_[256] = {};
  bool user_first_byte_[256] = {};
  bool has_user_defined_ = false;
  std::unordered_map<std::string, int32_t> special_to_id_;
};

// Turns generated ids into printable text one token at a time: bytes of a UTF-8 character that
// is split across tokens are held back until the character completes (or can never complete),
// so a terminal never sees half a character. Concatenating every push() and the final flush()
// gives exactly decode(ids, skip_special).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true)
      : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);  // text ready to print now (possibly empty)
  std::string flush();           // the held-back bytes, if any

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

// Reads a Hugging Face tokenizer.json (+ optional tokenizer_config.json) into TokenizerData:
// model.vocab, model.merges ("a b" strings or ["a", "b"] pairs), model.ignore_merges,
// added_tokens (special -> control, otherwise user-defined), the pre-tokenizer (must be the
// LLaMA-3 split regex + ByteLevel), BOS from the post-processor, and from the config
// bos_token / eos_token / add_bos_token / chat_template. <|eot_id|> becomes eot when present.
TokenizerData tokenizer_data_from_hf_json(const std::string& path_or_text,
                                          const std::string& config_path_or_text = "");

// A small but valid LLaMA-3-style vocabulary for synthetic models: the 256 byte tokens (in GPT-2
// order), a few hundred BPE merges learned from a built-in English text, then LLaMA-3's special
// tokens at the end, laid out as in LLaMA-3 (begin_of_text, end_of_text, 4 reserved,
// start_header_id, end_header_id, reserved, eot_id, ...) and padded with
// <|reserved_special_token_N|> to exactly vocab_size. With vocab_size >= 128256 the specials
// sit at 128000.. like 2B4T (BOS 128000, EOS 128001, EOT 128009). vocab_size must be >= 266.
// Deterministic: the same vocab_size always gives the same data.
TokenizerData make_builtin_vocab(int vocab_size);

}  // namespace tritune
