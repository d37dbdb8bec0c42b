// make_builtin_vocab: a small, valid LLaMA-3-style vocabulary for synthetic models (see
// tokenizer.h). The merges are learned by plain BPE training on the text below, so every merge
// is consistent with the vocabulary and common English words encode to few tokens.
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "kernels/error.h"
#include "model/tokenizer.h"
#include "model/tokenizer_chat.h"
#include "model/tokenizer_pretok.h"
#include "model/unicode.h"

namespace tritune {
namespace {

// Training text: ordinary English, written for this file.
const char kCorpus[] =
    "The quick brown fox jumps over the lazy dog. The dog was not amused, and the fox ran into "
    "the forest where the trees were tall and the air was cool. In the morning there was a "
    "light rain, and then the sun came out again. People in the town went to work, children "
    "went to school, and the shops opened their doors at nine o'clock.\n"
    "A language model reads text as a sequence of tokens. Each token is a small piece of a "
    "word, a whole word, a number or a mark of punctuation. The model learns which token is "
    "likely to come next, and it can then write new text one token at a time. When you ask it "
    "a question, it answers with the words that it thinks are the most helpful.\n"
    "This is a small test of the system. It should be fast, and it should give the same "
    "result every time that it runs. We want to know how many tokens there are in a sentence, "
    "how long it takes to process them, and how much energy the computer uses for the work.\n"
    "Hello! How are you today? I'm fine, thank you. What would you like to do this afternoon? "
    "We could go for a walk in the park, read a book, or have some tea with our friends. "
    "They're coming over later, and we'll make dinner together. It's going to be a good day.\n"
    "Numbers such as 1, 2, 3, 10, 42, 100 and 2024 appear in many documents, as do dates, "
    "times and prices. The price of the book was 12 dollars, and the train left at 8:30.\n"
    "Once upon a time there was a little girl who lived in a village near the sea. Every day "
    "she walked along the beach and looked for shells. One day she found a shell that was "
    "different from all the others: it was bright and it could sing. She took it home and "
    "showed it to her mother, who said that it was a very special gift from the water.\n"
    "The user asked the assistant to explain the answer in simple words. The assistant said "
    "that the answer depends on the question, and that it would be happy to help with any "
    "other questions about science, history, music, mathematics or the weather.\n"
    "Good software is written for people as much as for machines. A clear program says what "
    "it does, checks what it is given, and reports an error in words that help the reader to "
    "find the problem and fix it. Tests make sure that the program still works after every "
    "change, and that a mistake is found early, before it can reach the people who use it.\n"
    "In the spring the farmers plant their fields, and in the summer they watch the plants "
    "grow. In the autumn they bring in the harvest, and in the winter they rest, repair their "
    "tools and make plans for the next year. This has been the way of life for a very long "
    "time, and it will probably continue for many years to come.\n"
    "She said: \"I think we should start now, because there is a lot of work to do.\" He "
    "agreed, and they began at once. By the end of the week they had finished the first part "
    "of the project, and by the end of the month everything was done.\n";

constexpr int kMaxMerges = 400;

// LLaMA-3's special-token block layout (offsets from its start).
constexpr int kBlockFull = 256;
constexpr int kBlockCompact = 10;
constexpr int kBegin = 0, kEnd = 1, kStartHeader = 6, kEndHeader = 7, kEot = 9;

struct PairHash {
  size_t operator()(const std::pair<int32_t, int32_t>& p) const {
    return std::hash<uint64_t>()((static_cast<uint64_t>(p.first) << 32) ^
                                 static_cast<uint32_t>(p.second));
  }
};

// Byte tokens in GPT-2 order: the printable bytes first (as in GPT-2 and LLaMA-3, where id 0 is
// "!"), then the remapped ones.
std::vector<std::string> byte_tokens(std::vector<int32_t>& id_of_byte) {
  std::vector<int> order;
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) order.push_back(b);
  }
  for (int b = 0; b < 256; ++b) {
    if (!printable(b)) order.push_back(b);
  }
  std::vector<std::string> toks;
  id_of_byte.assign(256, -1);
  for (int b : order) {
    id_of_byte[b] = static_cast<int32_t>(toks.size());
    toks.push_back(unicode::byte_to_unicode(static_cast<uint8_t>(b)));
  }
  return toks;
}

// Plain BPE training: merge the most frequent adjacent pair (ties: the lexicographically
// smallest "A B" merge string, for determinism) until max_merges or no pair occurs twice.
void learn_merges(int max_merges, std::vector<std::string>& tokens,
                  std::vector<std::string>& merges, const std::vector<int32_t>& id_of_byte) {
  std::map<std::string, int> word_count;
  std::string_view corpus(kCorpus);
  for (std::string_view piece : pretokenize_llama3_pieces(corpus)) word_count[std::string(piece)]++;
  struct Word {
    std::vector<int32_t> syms;
    int count;
  };
  std::vector<Word> words;
  for (const auto& [w, c] : word_count) {
    Word wd{{}, c};
    for (char ch : w) wd.syms.push_back(id_of_byte[static_cast<unsigned char>(ch)]);
    words.push_back(std::move(wd));
  }
  std::unordered_map<std::string, int32_t> index;
  for (size_t i = 0; i < tokens.size(); ++i) index.emplace(tokens[i], static_cast<int32_t>(i));

  for (int m = 0; m < max_merges; ++m) {
    std::unordered_map<std::pair<int32_t, int32_t>, int, PairHash> counts;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.syms.size(); ++i) counts[{w.syms[i], w.syms[i + 1]}] += w.count;
    }
    std::pair<int32_t, int32_t> best{-1, -1};
    int best_count = 1;
    std::string best_str;
    for (const auto& [p, c] : counts) {
      if (c < best_count) continue;
      std::string s = tokens[p.first] + " " + tokens[p.second];
      if (c > best_count || best.first < 0 || s < best_str) {
        best = p;
        best_count = c;
        best_str = std::move(s);
      }
    }
    if (best.first < 0 || best_count < 2) break;
    std::string joined = tokens[best.first] + tokens[best.second];
    auto it = index.find(joined);
    int32_t id;
    if (it == index.end()) {
      id = static_cast<int32_t>(tokens.size());
      tokens.push_back(joined);
      index.emplace(joined, id);
    } else {
      id = it->second;
    }
    merges.push_back(best_str);
    for (Word& w : words) {
      std::vector<int32_t> out;
      out.reserve(w.syms.size());
      for (size_t i = 0; i < w.syms.size(); ++i) {
        if (i + 1 < w.syms.size() && w.syms[i] == best.first && w.syms[i + 1] == best.second) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(w.syms[i]);
        }
      }
      w.syms = std::move(out);
    }
  }
}

}  // namespace

TokenizerData make_builtin_vocab(int vocab_size) {
  const int min_size = 256 + kBlockCompact;
  if (vocab_size < min_size) {
    throw Error("make_builtin_vocab: vocab_size " + std::to_string(vocab_size) +
                " is too small: it needs 256 byte tokens + 10 special tokens = " +
                std::to_string(min_size) + " at least");
  }
  if (vocab_size > (1 << 24)) {
    throw Error("make_builtin_vocab: vocab_size " + std::to_string(vocab_size) +
                " is larger than 16777216");
  }
  TokenizerData d;
  std::vector<int32_t> id_of_byte;
  d.tokens = byte_tokens(id_of_byte);

  // Learn as many merges as fit beside at least the compact special block.
  const int room = vocab_size - 256 - kBlockCompact;
  learn_merges(std::min(kMaxMerges, room), d.tokens, d.merges, id_of_byte);
  const int regular = static_cast<int>(d.tokens.size());
  d.token_types.assign(regular, kTokenNormal);

  // The full LLaMA-3 block (256 entries) when it fits, else the first 10 entries of it.
  const int block = vocab_size - regular >= kBlockFull ? kBlockFull : kBlockCompact;
  const int block_start = vocab_size - block;
  int next_reserved = 0;
  auto reserved = [&]() {
    return "<|reserved_special_token_" + std::to_string(next_reserved++) + "|>";
  };
  std::vector<std::string> block_tokens(block);
  for (int i = 0; i < block; ++i) {
    switch (i) {
      case kBegin:
        block_tokens[i] = "<|begin_of_text|>";
        break;
      case kEnd:
        block_tokens[i] = "<|end_of_text|>";
        break;
      case kStartHeader:
        block_tokens[i] = "<|start_header_id|>";
        break;
      case kEndHeader:
        block_tokens[i] = "<|end_header_id|>";
        break;
      case kEot:
        block_tokens[i] = "<|eot_id|>";
        break;
      default:
        block_tokens[i] = reserved();
        break;
    }
  }
  // Filler between the learned tokens and the special block (LLaMA-3 has 128000 regular
  // tokens; we have a few hundred), also reserved special tokens so they never match text.
  for (int id = regular; id < block_start; ++id) {
    d.tokens.push_back(reserved());
    d.token_types.push_back(kTokenControl);
  }
  for (std::string& t : block_tokens) {
    d.tokens.push_back(std::move(t));
    d.token_types.push_back(kTokenControl);
  }
  d.bos = block_start + kBegin;
  d.eos = block_start + kEnd;
  d.eot = block_start + kEot;
  d.pre = "llama-bpe";
  d.add_bos = true;
  d.chat_template = kBitnet2B4TChatTemplate;
  return d;
}

}  // namespace tritune
