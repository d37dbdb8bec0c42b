// Hugging Face tokenizer.json (+ tokenizer_config.json) -> TokenizerData (see tokenizer.h).
#include <string>

#include "kernels/error.h"
#include "kernels/json.h"
#include "model/tokenizer.h"

namespace tritune {
namespace {

// The LLaMA-3 split regex as tokenizer.json spells it, and as llama.cpp documents it.
const char kLlama3RegexHf[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char kLlama3RegexExpanded[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Largest token id accepted: far above any real vocabulary, low enough that a hostile id
// cannot make us allocate gigabytes.
constexpr int64_t kMaxTokenId = 1 << 24;

bool looks_like_json_text(const std::string& s) {
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

json::Value load(const std::string& path_or_text, const char* what) {
  if (looks_like_json_text(path_or_text)) return json::parse(path_or_text, what);
  return json::parse_file(path_or_text);
}

[[noreturn]] void fail(const std::string& src, const std::string& what) {
  throw Error("tokenizer.json (" + src + "): " + what);
}

// A token given as "text" or {"content": "text", ...} (tokenizer_config.json uses both).
std::string token_string(const json::Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_object()) {
    if (const json::Value* c = v.find("content"); c && c->is_string()) return c->as_string();
  }
  return std::string();
}

// Collects the Split regexes and ByteLevel settings of a pre_tokenizer (possibly a Sequence).
void walk_pre(const json::Value& p, std::vector<std::string>& regexes, bool& byte_level,
              bool& byte_level_regex, int depth = 0) {
  if (!p.is_object() || depth > 8) return;
  const json::Value* type = p.find("type");
  std::string t = type && type->is_string() ? type->as_string() : "";
  if (t == "Sequence") {
    if (const json::Value* list = p.find("pretokenizers"); list && list->is_array()) {
      for (const json::Value& q : list->as_array()) {
        walk_pre(q, regexes, byte_level, byte_level_regex, depth + 1);
      }
    }
  } else if (t == "Split") {
    const json::Value* pat = p.find("pattern");
    if (pat && pat->is_object()) {
      if (const json::Value* r = pat->find("Regex"); r && r->is_string()) {
        regexes.push_back(r->as_string());
      } else if (const json::Value* s = pat->find("String"); s && s->is_string()) {
        regexes.push_back("String:" + s->as_string());
      }
    }
  } else if (t == "ByteLevel") {
    byte_level = true;
    const json::Value* ur = p.find("use_regex");
    // tokenizers' ByteLevel defaults to use_regex = true (the GPT-2 split).
    if (!ur || !ur->is_bool() || ur->as_bool()) byte_level_regex = true;
  } else {
    regexes.push_back("unsupported pre-tokenizer type " + t);
  }
}

// The first SpecialToken of a TemplateProcessing "single" template, if it opens the sequence.
std::string leading_template_token(const json::Value& pp, int depth = 0) {
  if (!pp.is_object() || depth > 8) return std::string();
  const json::Value* type = pp.find("type");
  std::string t = type && type->is_string() ? type->as_string() : "";
  if (t == "Sequence") {
    if (const json::Value* list = pp.find("processors"); list && list->is_array()) {
      for (const json::Value& q : list->as_array()) {
        std::string s = leading_template_token(q, depth + 1);
        if (!s.empty()) return s;
      }
    }
    return std::string();
  }
  if (t != "TemplateProcessing") return std::string();
  const json::Value* single = pp.find("single");
  if (!single || !single->is_array() || single->size() == 0) return std::string();
  const json::Value& first = (*single)[0];
  if (!first.is_object()) return std::string();
  if (const json::Value* st = first.find("SpecialToken"); st && st->is_object()) {
    if (const json::Value* id = st->find("id"); id && id->is_string()) return id->as_string();
  }
  return std::string();
}

}  // namespace

TokenizerData tokenizer_data_from_hf_json(const std::string& path_or_text,
                                          const std::string& config_path_or_text) {
  const std::string src =
      looks_like_json_text(path_or_text) ? std::string("inline text") : path_or_text;
  json::Value root = load(path_or_text, "tokenizer.json");
  if (!root.is_object()) fail(src, "the top level is not an object");
  const json::Value* model = root.find("model");
  if (!model || !model->is_object()) fail(src, "no \"model\" object");
  if (const json::Value* t = model->find("type");
      t && (!t->is_string() || t->as_string() != "BPE")) {
    fail(src, "model.type is " + (t->is_string() ? t->as_string() : json::dump(*t)) +
                  ", only BPE is supported");
  }

  // Pre-tokenizer: must be the LLaMA-3 split followed by a regex-free ByteLevel.
  {
    const json::Value* pre = root.find("pre_tokenizer");
    std::vector<std::string> regexes;
    bool byte_level = false, byte_level_regex = false;
    if (pre) walk_pre(*pre, regexes, byte_level, byte_level_regex);
    bool ok = regexes.size() == 1 && byte_level && !byte_level_regex &&
              (regexes[0] == kLlama3RegexHf || regexes[0] == kLlama3RegexExpanded);
    if (!ok) {
      fail(src,
           "pre_tokenizer is not the LLaMA-3 one (a Split on the LLaMA-3 regex, then "
           "ByteLevel with use_regex=false); tritune implements only that pre-tokenizer");
    }
  }

  // Vocabulary.
  const json::Value* vocab = model->find("vocab");
  if (!vocab || !vocab->is_object()) fail(src, "model.vocab is not an object");
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<bool> seen;
  auto place = [&](int64_t id, const std::string& text, int32_t type, bool override_ok) {
    if (id < 0 || id >= kMaxTokenId) {
      fail(src, "token \"" + text + "\" has id " + std::to_string(id) + " outside [0, " +
                    std::to_string(kMaxTokenId) + ")");
    }
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, kTokenUnused);
      seen.resize(id + 1, false);
    }
    if (seen[id] && !override_ok) {
      fail(src, "id " + std::to_string(id) + " is used by both \"" + tokens[id] + "\" and \"" +
                    text + "\"");
    }
    tokens[id] = text;
    types[id] = type;
    seen[id] = true;
  };
  for (const auto& [text, idv] : vocab->members()) {
    if (!idv.is_int()) fail(src, "model.vocab[\"" + text + "\"] is not an integer id");
    place(idv.as_int64(), text, kTokenNormal, false);
  }
  if (const json::Value* added = root.find("added_tokens"); added && added->is_array()) {
    for (const json::Value& a : added->as_array()) {
      if (!a.is_object() || !a.contains("id") || !a.contains("content")) {
        fail(src, "an added_tokens entry lacks \"id\" or \"content\"");
      }
      const json::Value& idv = a.at("id");
      const json::Value& content = a.at("content");
      if (!idv.is_int() || !content.is_string()) {
        fail(src, "an added_tokens entry has a non-integer id or non-string content");
      }
      const json::Value* special = a.find("special");
      bool is_special = special && special->is_bool() && special->as_bool();
      place(idv.as_int64(), content.as_string(), is_special ? kTokenControl : kTokenUserDefined,
            true);
    }
  }
  if (tokens.empty()) fail(src, "model.vocab is empty");

  // Merges, rank = position.
  std::vector<std::string> merges;
  if (const json::Value* m = model->find("merges")) {
    if (!m->is_array()) fail(src, "model.merges is not an array");
    merges.reserve(m->size());
    for (size_t r = 0; r < m->size(); ++r) {
      const json::Value& e = (*m)[r];
      if (e.is_string()) {
        merges.push_back(e.as_string());
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        const std::string& a = e[0].as_string();
        const std::string& b = e[1].as_string();
        if (a.empty() || b.empty() || a.find(' ') != std::string::npos ||
            b.find(' ') != std::string::npos) {
          fail(src, "merge #" + std::to_string(r) + " has an empty part or a part with a space");
        }
        merges.push_back(a + " " + b);
      } else {
        fail(src, "merge #" + std::to_string(r) + " is neither \"A B\" nor [\"A\", \"B\"]");
      }
    }
  }

  TokenizerData d;
  d.tokens = std::move(tokens);
  d.token_types = std::move(types);
  d.merges = std::move(merges);
  d.pre = "llama-bpe";
  const json::Value* im = model->find("ignore_merges");
  d.ignore_merges = im && im->is_bool() && im->as_bool();

  auto id_of = [&](const std::string& text) -> int32_t {
    if (text.empty()) return -1;
    for (size_t i = 0; i < d.tokens.size(); ++i) {
      if (d.tokens[i] == text) return static_cast<int32_t>(i);
    }
    return -1;
  };

  // BOS: the token the post-processor puts first (that is what "adds BOS" means in HF).
  std::string bos_text;
  if (const json::Value* pp = root.find("post_processor")) bos_text = leading_template_token(*pp);
  d.add_bos = !bos_text.empty();
  d.bos = id_of(bos_text.empty() ? std::string("<|begin_of_text|>") : bos_text);
  if (d.add_bos && d.bos < 0) fail(src, "post_processor adds unknown token \"" + bos_text + "\"");
  d.eot = id_of("<|eot_id|>");
  d.eos = id_of("<|end_of_text|>");

  if (!config_path_or_text.empty()) {
    const std::string csrc = looks_like_json_text(config_path_or_text)
                                 ? std::string("inline tokenizer_config")
                                 : config_path_or_text;
    json::Value cfg = load(config_path_or_text, "tokenizer_config.json");
    if (!cfg.is_object()) fail(csrc, "tokenizer_config.json is not an object");
    if (const json::Value* b = cfg.find("bos_token"); b && !b->is_null()) {
      d.bos = id_of(token_string(*b));
      if (d.bos < 0) fail(csrc, "bos_token " + json::dump(*b) + " is not in the vocabulary");
    }
    if (const json::Value* e = cfg.find("eos_token"); e && !e->is_null()) {
      d.eos = id_of(token_string(*e));
      if (d.eos < 0) fail(csrc, "eos_token " + json::dump(*e) + " is not in the vocabulary");
    }
    if (const json::Value* a = cfg.find("add_bos_token"); a && a->is_bool()) {
      d.add_bos = a->as_bool();
    }
    if (const json::Value* ct = cfg.find("chat_template")) {
      if (ct->is_string()) {
        d.chat_template = ct->as_string();
      } else if (ct->is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const json::Value& e : ct->as_array()) {
          const json::Value* name = e.is_object() ? e.find("name") : nullptr;
          const json::Value* tmpl = e.is_object() ? e.find("template") : nullptr;
          if (!tmpl || !tmpl->is_string()) continue;
          if (d.chat_template.empty() ||
              (name && name->is_string() && name->as_string() == "default")) {
            d.chat_template = tmpl->as_string();
          }
        }
      }
    }
  }
  if (d.add_bos && d.bos < 0) d.add_bos = false;
  return d;
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path_or_text,
                                         const std::string& config_path_or_text) {
  return from_vocab(tokenizer_data_from_hf_json(path_or_text, config_path_or_text));
}

}  // namespace tritune
