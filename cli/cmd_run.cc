// `tritune run`, `tritune ppl`, `tritune validate`: the reference BitNet b1.58 transformer from
// the command line (generation, perplexity, kernel-vs-reference accuracy).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_common.h"
#include "kernels/error.h"
#include "kernels/memory_budget.h"
#include "model/perplexity.h"
#include "model/sampling.h"
#include "model/tokenizer.h"
#include "model/tokenizer_chat.h"
#include "model/transformer.h"
#include "model/validate.h"

namespace tritune::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Tokenizer model_tokenizer(const ModelWeights& w) {
  if (w.tokenizer.tokens.empty()) {
    throw Error("model '" + w.path + "' carries no tokenizer (a GGUF file keeps it in its " +
                "tokenizer.ggml.* metadata, a Hugging Face checkpoint in tokenizer.json beside " +
                "config.json); add one, or pass token ids with --tokens");
  }
  try {
    return Tokenizer::from_vocab(w.tokenizer);
  } catch (const Error& e) {
    throw Error(w.path + ": " + e.what());  // which file's vocabulary is broken
  }
}

std::vector<int32_t> parse_token_ids(const std::string& s) {
  std::vector<int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    // Digits only: strtol would also take a sign and leading blanks.
    const bool digits = !item.empty() && item.size() <= 10 &&
                        item.find_first_not_of("0123456789") == std::string::npos;
    const long long v = digits ? std::strtoll(item.c_str(), nullptr, 10) : -1;
    if (!digits || v > INT32_MAX) {
      throw Error("--tokens: '" + item + "' is not a token id (comma-separated integers)");
    }
    out.push_back((int32_t)v);
  }
  if (!s.empty() && s.back() == ',') throw Error("--tokens '" + s + "': ends with a comma");
  return out;
}

// -m, -t, --path, --kv, --ctx, --embd-type, and --logits-out where the command writes logits.
constexpr const char* kCtxHelp = "context (KV cache positions); 0: what the command needs";

void add_common(Args& a, const char* ctx_help = kCtxHelp,
                const char* logits_help = "write raw float32 logits of every evaluated position") {
  a.option("-m", "FILE", "model file (GGUF, .safetensors or HF directory)");
  a.option("-t", "N", "threads", std::to_string(default_threads()));
  a.option("--path", "PATH", "kernel (dispatched kernels) or reference (scalar fake-quant math)",
           "kernel");
  a.option("--kv", "TYPE", "KV cache type: f32 or f16", "f32");
  a.option("--ctx", "N", ctx_help, "0");
  if (logits_help != nullptr) a.option("--logits-out", "FILE", logits_help);
  a.option("--embd-type", "T", kEmbdTypeHelp);
}

void add_sampling(Args& a) {
  a.option("--temp", "T", "temperature (0: greedy)", "0.8");
  a.option("--top-k", "K", "keep the K most likely tokens (0: off)", "40");
  a.option("--top-p", "P", "nucleus: smallest set with probability >= P (1: off)", "0.95");
  a.option("--seed", "S", "sampling seed", "0");
}

SamplerOptions sampler_options(const Args& a) {
  SamplerOptions so;
  const double temp = a.get_double("--temp");
  if (temp < 0 || temp > 1e6) throw Error("--temp " + a.get("--temp") + ": must be in [0, 1e6]");
  so.temperature = (float)temp;
  so.top_k = a.get_int("--top-k");
  so.top_p = (float)a.get_double("--top-p");
  so.seed = seed_arg(a);
  return so;
}

// ---- run --------------------------------------------------------------------------------------
int run_run(const std::vector<std::string>& argv) {
  Args a("run",
         "Generate text: prefill the prompt (one batch), then decode token by token.\n"
         "Prints tokens/s for prompt processing (pp) and generation (tg) like\n"
         "llama-bench (tokenization and sampling are not timed).");
  add_common(a);
  a.option("-p", "TEXT", "prompt", "Once upon a time");
  a.option("--tokens", "IDS", "prompt as comma-separated token ids instead of -p");
  a.flag("--chat", "treat -p as a user message in the model's chat template");
  a.option("-n", "N", "tokens to generate", "64");
  add_sampling(a);
  a.flag("--no-stop", "do not stop at end-of-generation tokens");
  if (!a.parse(argv)) return 0;
  // Every option is checked before the model loads (a 2B4T load takes seconds).
  const int threads = apply_threads(a.get_int("-t"));
  const int64_t n_gen = positions_arg("-n", a.get_int("-n"), 0);
  if (a.has("--tokens") && (a.has("-p") || a.has("--chat"))) {
    throw Error("--tokens is the prompt as token ids: drop -p and --chat");
  }
  const std::string logits_out = logits_out_arg(a);
  Sampler sampler(sampler_options(a));
  TransformerOptions to = transformer_options(a, threads);
  std::vector<int32_t> prompt;
  if (a.has("--tokens")) prompt = parse_token_ids(a.get("--tokens"));
  const LoadedModel m = load_for_run(a.get("-m"), embd_type_arg(a), threads);
  std::unique_ptr<Tokenizer> tok;
  if (!a.has("--tokens")) {
    tok = std::make_unique<Tokenizer>(model_tokenizer(*m.weights));
    prompt = a.has("--chat") ? tok->encode_chat({{"user", a.get("-p")}}, true)
                             : tok->encode(a.get("-p"), true);
  }
  if (prompt.empty()) throw Error("the prompt is empty");
  // --ctx 0: just what this run needs (a 4096-position f32 cache of 2B4T is 630 MB), up to the
  // model's context.
  const bool auto_ctx = to.context == 0;
  if (auto_ctx) {
    to.context = std::min<int64_t>((int64_t)prompt.size() + n_gen, m.weights->hp.context);
  }
  if ((int64_t)prompt.size() + n_gen > to.context) {
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) + -n " +
                std::to_string(n_gen) + " exceed " +
                (auto_ctx ? "the model's context of " + std::to_string(to.context) +
                                " positions (--ctx N runs a longer cache, beyond what the model "
                                "was trained for)"
                          : "--ctx " + std::to_string(to.context)));
  }
  auto tfp = make_transformer(m, to);
  Transformer& tf = *tfp;
  LogitsWriter lw(logits_out);
  const int64_t V = tf.hp().vocab;

  // Text without the special tokens (BOS, the chat template's markers), and generated tokens
  // printed a whole UTF-8 character at a time.
  if (tok) std::printf("%s", tok->decode(prompt, true).c_str());
  std::unique_ptr<StreamDecoder> sd;
  if (tok) sd = std::make_unique<StreamDecoder>(*tok);
  std::fflush(stdout);
  // Prefill: all positions' logits only when they are written out.
  const int64_t np = (int64_t)prompt.size();
  const int64_t from = lw.enabled() ? 0 : np - 1;
  std::vector<float> logits((size_t)((np - from) * V));
  auto t0 = Clock::now();
  tf.forward(prompt.data(), np, from, logits.data());
  const double pp_s = seconds_since(t0);
  lw.write(logits.data(), (int64_t)logits.size());
  std::vector<float> last(logits.end() - V, logits.end());
  double tg_s = 0;
  int64_t generated = 0;
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n_gen; ++i) {
    const int32_t next = sampler.sample(last.data(), V);
    out.push_back(next);
    ++generated;
    if (tok) {
      std::printf("%s", sd->push(next).c_str());
    } else {
      std::printf("%s%d", i ? "," : "", next);
    }
    std::fflush(stdout);
    if (tok && !a.has("--no-stop") && tok->is_eog(next)) break;
    if (i + 1 == n_gen) break;  // the last token needs no logits
    t0 = Clock::now();
    tf.forward(&next, 1, 0, last.data());
    tg_s += seconds_since(t0);
    lw.write(last.data(), V);
  }
  std::printf("%s\n", sd ? sd->flush().c_str() : "");
  const int64_t tg_tokens = std::max<int64_t>(0, generated - 1);
  std::fprintf(stderr, "\nmodel      %s (%s path, %d threads, KV %s)\n",
               model_label(*m.weights).c_str(), path_name(tf.path()), threads, kv_type_name(to.kv));
  std::fprintf(stderr, "pp%-7lld %10.2f t/s  (%lld tokens in %.3f s)\n", (long long)np, np / pp_s,
               (long long)np, pp_s);
  if (tg_tokens > 0) {
    std::fprintf(stderr, "tg%-7lld %10.2f t/s  (%lld tokens in %.3f s)\n", (long long)tg_tokens,
                 tg_tokens / tg_s, (long long)tg_tokens, tg_s);
  }
  if (lw.enabled()) {
    lw.close();
    std::fprintf(stderr, "logits     %lld positions x %lld floats -> %s\n",
                 (long long)lw.rows_written(V), (long long)V, logits_out.c_str());
  }
  return 0;
}

// ---- chat -------------------------------------------------------------------------------------
// A conversation on stdin, one user message per line. Each turn appends its tokens to the
// conversation's, and only those not yet in the KV cache are evaluated, so a turn costs its own
// tokens, not the history's.
int run_chat(const std::vector<std::string>& argv) {
  Args a("chat",
         "Chat with the model: one user message per line on stdin, each answered in the\n"
         "model's chat template (BitNet 2B4T's, or LLaMA-3's when the model's template uses\n"
         "its headers). The KV cache carries the conversation: a turn evaluates only its new\n"
         "tokens. Lines \"/reset\" (forget the conversation) and \"/exit\"; end of input ends\n"
         "the chat. After each reply, stderr gets the turn's tokens and speeds.");
  add_common(a, "context (KV cache positions); 0: the model's, at most 4096", nullptr);
  a.option("--system", "TEXT", "a system message that opens the conversation");
  a.option("-n", "N", "most tokens per reply", "256");
  add_sampling(a);
  if (!a.parse(argv)) return 0;
  const int threads = apply_threads(a.get_int("-t"));
  const int64_t n_gen = positions_arg("-n", a.get_int("-n"), 1);
  Sampler sampler(sampler_options(a));
  TransformerOptions to = transformer_options(a, threads);
  const LoadedModel m = load_for_run(a.get("-m"), embd_type_arg(a), threads);
  const Tokenizer tok = model_tokenizer(*m.weights);
  if (to.context == 0) to.context = std::min<int64_t>(4096, m.weights->hp.context);
  auto tfp = make_transformer(m, to);
  Transformer& tf = *tfp;
  const int64_t V = tf.hp().vocab;
  // The conversation as the model saw it: its own reply tokens (not their text re-encoded),
  // each reply closed by <|eot_id|> as the template renders an assistant message, then the
  // next user turn rendered on its own and appended.
  const std::vector<ChatMessage> opening =
      a.has("--system") ? std::vector<ChatMessage>{{"system", a.get("--system")}}
                        : std::vector<ChatMessage>{};
  int32_t end_of_turn = tok.find_token("<|eot_id|>");
  if (end_of_turn < 0) end_of_turn = tok.eot() >= 0 ? tok.eot() : tok.eos();
  // Every turn so far. The KV cache holds its first tf.pos() tokens: all of it but the last
  // reply token (sampled, never fed back) and the closing <|eot_id|>.
  std::vector<int32_t> history;
  std::vector<float> logits((size_t)V);
  // A system message the context cannot hold with a reply would fail every turn.
  if (!opening.empty()) {
    const int64_t sys = (int64_t)tok.encode_chat(opening, false, true).size();
    if (sys + n_gen >= tf.context()) {
      throw Error("--system takes " + std::to_string(sys) + " tokens; with a reply of up to -n " +
                  std::to_string(n_gen) + " it leaves no room in the context of " +
                  std::to_string(tf.context()) + " positions (shorten it, lower -n or raise --ctx)");
    }
  }
  const bool tty = isatty(0) != 0;
  std::string line;
  int64_t unanswered = 0;
  for (;;) {
    if (tty) {
      std::printf("> ");
      std::fflush(stdout);
    }
    errno = 0;
    if (!std::getline(std::cin, line)) {
      // std::cin reads through stdio (synced): a read error, not the end, sets ferror(stdin).
      if (std::cin.bad() || std::ferror(stdin)) {
        throw Error(std::string("reading the standard input failed: ") + std::strerror(errno));
      }
      break;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF input
    const std::string command = jinja_trim(line);
    if (command == "/exit" || command == "/quit") break;
    if (command == "/reset") {
      history.clear();
      tf.reset();
      std::fprintf(stderr, "[conversation reset]\n");
      continue;
    }
    if (jinja_trim(line).empty()) continue;
    std::vector<int32_t> prompt = history;
    std::vector<ChatMessage> turn = history.empty() ? opening : std::vector<ChatMessage>{};
    turn.push_back({"user", line});
    const std::vector<int32_t> add = tok.encode_chat(turn, true, history.empty());
    prompt.insert(prompt.end(), add.begin(), add.end());
    if ((int64_t)prompt.size() + n_gen > tf.context()) {
      std::fprintf(stderr,
                   "chat: the conversation (%zu tokens) and a reply of up to -n %lld exceed the "
                   "context of %lld positions: /reset, or raise --ctx or lower -n\n",
                   prompt.size(), (long long)n_gen, (long long)tf.context());
      ++unanswered;
      continue;
    }
    // The cache holds a prefix of the conversation: evaluate the rest.
    const size_t keep = (size_t)tf.pos();
    auto t0 = Clock::now();
    tf.forward(prompt.data() + keep, (int64_t)(prompt.size() - keep),
               (int64_t)(prompt.size() - keep - 1), logits.data());
    const double pp_s = seconds_since(t0);
    std::vector<int32_t> reply;
    StreamDecoder sd(tok);
    double tg_s = 0;
    for (int64_t i = 0; i < n_gen; ++i) {
      const int32_t next = sampler.sample(logits.data(), V);
      if (tok.is_eog(next)) break;
      reply.push_back(next);
      std::printf("%s", sd.push(next).c_str());
      std::fflush(stdout);
      if (i + 1 == n_gen) break;
      t0 = Clock::now();
      tf.forward(&next, 1, 0, logits.data());
      tg_s += seconds_since(t0);
    }
    std::printf("%s\n", sd.flush().c_str());
    std::fflush(stdout);
    history = prompt;
    history.insert(history.end(), reply.begin(), reply.end());
    history.push_back(end_of_turn);
    const size_t fed = prompt.size() - keep;
    std::fprintf(stderr, "[prompt %zu tokens, %zu from the cache, %zu evaluated at %.1f t/s",
                 prompt.size(), keep, fed, (double)fed / pp_s);
    if (reply.size() > 1 && tg_s > 0) {
      std::fprintf(stderr, "; reply %zu tokens at %.1f t/s", reply.size(),
                   (double)(reply.size() - 1) / tg_s);
    }
    std::fprintf(stderr, "; context %lld of %lld]\n", (long long)tf.pos(), (long long)tf.context());
  }
  if (unanswered > 0) {
    std::fprintf(stderr, "chat: %lld message(s) not answered (see above)\n", (long long)unanswered);
    return 1;
  }
  return 0;
}

// ---- ppl --------------------------------------------------------------------------------------
int run_ppl(const std::vector<std::string>& argv) {
  Args a("ppl",
         "Perplexity of a text file with strided windows (each token scored once, with\n"
         "at least ctx - stride tokens of context after the first window).");
  add_common(a, kCtxHelp,
             "write raw float32 logits, one row per scored token in text order: the logits "
             "that predicted it (positions a window reads only as context are not written)");
  a.option("-f", "TEXTFILE", "text to score");
  a.option("--stride", "N", "window start spacing (0: ctx / 2)", "0");
  a.option("--max-tokens", "N", "score only the first N tokens (0: all)", "0");
  a.flag("--json", "print the result as JSON");
  if (!a.parse(argv)) return 0;
  if (!a.has("-f")) throw Error("pass the text with -f TEXTFILE");
  const int threads = apply_threads(a.get_int("-t"));
  const std::string path = a.get("-f");
  struct stat st;
  if (stat(path.c_str(), &st) == 0 &&
      (S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
    throw Error("-f '" + path + "' is a " + (S_ISDIR(st.st_mode) ? "directory" : "device") +
                "; give a text file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read '" + path + "': " + std::strerror(errno));
  // Read in blocks up to a limit: a pipe may never end.
  constexpr size_t kMaxText = size_t(1) << 30;
  std::string text;
  std::vector<char> block(size_t(1) << 20);
  while (f.read(block.data(), (std::streamsize)block.size()) || f.gcount() > 0) {
    text.append(block.data(), (size_t)f.gcount());
    if (text.size() > kMaxText) {
      throw Error("'" + path +
                  "' is larger than 1 GiB; give a smaller text (--max-tokens "
                  "limits what is scored of it)");
    }
  }
  if (text.empty()) {
    throw Error("'" + path + "' is empty: perplexity needs a text of at least one token");
  }
  const std::string logits_out = logits_out_arg(a);
  const int64_t cap = a.get_int("--max-tokens");
  if (cap < 0 || cap == 1) throw Error("--max-tokens " + a.get("--max-tokens") + ": 0 (all) or >= 2");
  TransformerOptions to = transformer_options(a, threads);
  if (to.context == 1) throw Error("--ctx 1: a perplexity window needs 2 or more positions");
  PerplexityOptions po;
  po.stride = positions_arg("--stride", a.get_int("--stride"), 0);
  const LoadedModel m = load_for_run(a.get("-m"), embd_type_arg(a), threads);
  const Tokenizer tok = model_tokenizer(*m.weights);
  std::vector<int32_t> tokens = tok.encode(text, true);
  if (cap > 0 && (int64_t)tokens.size() > cap) tokens.resize((size_t)cap);
  if (to.context == 0) to.context = std::min<int64_t>(512, m.weights->hp.context);
  const int64_t ctx = to.context;
  auto tfp = make_transformer(m, to);
  Transformer& tf = *tfp;
  LogitsWriter lw(logits_out);
  po.ctx = ctx;
  po.on_logits = [&](const float* l, int64_t rows) { lw.write(l, rows * tf.hp().vocab); };
  po.on_window = [&](int64_t done, int64_t total) {
    if (!a.has("--json") && isatty(2)) {
      std::fprintf(stderr, "\rwindow %lld/%lld", (long long)done, (long long)total);
    }
  };
  const PerplexityResult r = perplexity(tf, tokens, po);
  lw.close();
  if (r.scored + 1 < (int64_t)tokens.size()) {
    std::fprintf(stderr,
                 "note: %lld tokens not scored: a window's first token has no context of its own "
                 "(a --stride below --ctx %lld scores them)\n",
                 (long long)((int64_t)tokens.size() - 1 - r.scored), (long long)ctx);
  }
  if (a.has("--json")) {
    std::printf(
        "{\"ppl\": %.9g, \"mean_nll\": %.9g, \"tokens\": %zu, \"scored\": %lld, "
        "\"windows\": %lld, \"ctx\": %lld, \"path\": \"%s\", \"seconds\": %.3f}\n",
        r.ppl, r.mean_nll, tokens.size(), (long long)r.scored, (long long)r.windows, (long long)ctx,
        path_name(tf.path()), r.seconds);
  } else {
    if (isatty(2)) std::fprintf(stderr, "\n");
    std::printf(
        "perplexity %.4f  (%lld tokens scored of %zu, %lld windows of %lld, %s path, "
        "%.1f s)\n",
        r.ppl, (long long)r.scored, tokens.size(), (long long)r.windows, (long long)ctx,
        path_name(tf.path()), r.seconds);
  }
  return 0;
}

// ---- validate ---------------------------------------------------------------------------------
int run_validate(const std::vector<std::string>& argv) {
  Args a("validate",
         "Kernel path vs reference path on the same weights and tokens: max/mean absolute\n"
         "logit difference, top-1 agreement, perplexity of each, and how many activations\n"
         "quantized differently (rounding-tie flips). A second reference run forced onto the\n"
         "kernel's quantized inputs must agree to float summation order, and every linear\n"
         "layer must match its integer reference bit for bit. Exits 1 beyond tolerance.");
  a.option("-m", "FILE", "model file");
  a.option("-t", "N", "threads", std::to_string(default_threads()));
  a.option("-n", "TOKENS", "tokens to evaluate", "256");
  a.option("-p", "TEXT", "text to evaluate (default: pseudo-random tokens, --seed)");
  a.option("--seed", "S", "seed of the pseudo-random tokens", "1");
  a.option("--kv", "TYPE", "KV cache type: f32 or f16", "f32");
  a.option("--min-top1", "F", "minimum top-1 agreement", "0.99");
  a.option("--max-ppl-diff", "F", "maximum relative perplexity difference", "0.005");
  a.option("--tol", "F", "forced-run tolerance, relative to the largest logit", "1e-4");
  a.flag("--no-forced", "skip the forced run and the per-layer bit-exact check");
  a.option("--logits-out", "FILE", "write the kernel path's logits (raw float32)");
  a.option("--embd-type", "T",
           std::string(kEmbdTypeHelp) +
               "; both paths then use it, and the report adds what it costs: the kernel path "
               "over the stored head against the re-encoded one");
  a.flag("--json", "print the report as JSON");
  if (!a.parse(argv)) return 0;
  const int threads = apply_threads(a.get_int("-t"));
  const int64_t n = positions_arg("-n", a.get_int("-n"), 2);
  const uint64_t seed = seed_arg(a);
  ValidateOptions vo;
  vo.threads = threads;
  vo.kv = parse_kv_type(a.get("--kv"));
  vo.forced = !a.has("--no-forced");
  vo.min_top1 = a.get_double("--min-top1");
  vo.max_ppl_rel = a.get_double("--max-ppl-diff");
  vo.forced_rel_tol = a.get_double("--tol");
  if (vo.min_top1 < 0 || vo.min_top1 > 1) {
    throw Error("--min-top1 " + a.get("--min-top1") + ": a fraction, in [0, 1]");
  }
  if (vo.max_ppl_rel < 0) {
    throw Error("--max-ppl-diff " + a.get("--max-ppl-diff") + ": a relative difference, >= 0");
  }
  if (vo.forced_rel_tol < 0) throw Error("--tol " + a.get("--tol") + ": must be >= 0");
  vo.logits_out = logits_out_arg(a);
  const uint32_t embd_type = embd_type_arg(a);
  // With --embd-type: the model as stored, and a copy with the head re-encoded that both paths
  // run (the stored one is the baseline of the re-encoding's cost, below).
  const LoadedModel stored = load_for_run(a.get("-m"));
  if (n > stored.weights->hp.context) {
    throw Error("-n " + std::to_string(n) + " exceeds the model's context of " +
                std::to_string(stored.weights->hp.context) + " positions");
  }
  {
    // Three runs' logits (kernel, reference, forced) and every quantized input the kernel run
    // records: about 6 GB of logits alone at -n 4096 on 2B4T.
    const HParams& hp = stored.weights->hp;
    const double acts = (double)hp.layers * (double)(2 * hp.hidden + hp.heads * hp.head_dim + hp.ffn);
    require_memory((double)n * (3.0 * 4.0 * (double)hp.vocab + acts),
                   "validate -n " + std::to_string(n) + " (logits of three runs and the recorded "
                   "inputs)",
                   "lower -n");
  }
  LoadedModel m = stored;
  if (a.has("--embd-type")) {
    m.weights = std::make_shared<ModelWeights>(*stored.weights);
    reencode_embeddings(*m.weights, embd_type, threads);
  }
  std::vector<int32_t> tokens;
  if (a.has("-p")) {
    tokens = model_tokenizer(*m.weights).encode(a.get("-p"), true);
    if ((int64_t)tokens.size() > n) tokens.resize((size_t)n);
    if (tokens.size() < 2) throw Error("the text gives fewer than 2 tokens");
  } else {
    tokens = random_tokens(n, m.weights->hp.vocab, seed);
  }
  const auto t0 = Clock::now();
  ValidateReport r = validate_model(m.weights, tokens, vo);
  if (a.has("--embd-type")) {
    r.embedding = compare_embeddings(stored.weights, m.weights, tokens, threads, vo.kv);
  }
  if (a.has("--json")) {
    std::printf("%s\n", r.to_json().c_str());
  } else {
    std::printf("model             %s (%s)\n%s", model_label(*m.weights).c_str(),
                m.weights->path.c_str(), r.to_text().c_str());
    std::printf("time              %.1f s\n", seconds_since(t0));
  }
  if (!r.pass()) {
    std::fprintf(stderr, "validate: FAILED (%zu checks beyond tolerance)\n", r.failures.size());
    return 1;
  }
  return 0;
}

CommandRegistrar reg_run({"run", "generate text with the BitNet transformer (pp/tg tokens/s)",
                          run_run});
CommandRegistrar reg_chat({"chat",
                           "a conversation on stdin in the model's chat template (KV cache kept)",
                           run_chat});
CommandRegistrar reg_ppl({"ppl", "perplexity of a text file (strided windows)", run_ppl});
CommandRegistrar reg_validate({"validate",
                               "kernel path vs reference path: logits, top-1, perplexity, "
                               "tie flips, bit-exact linear layers",
                               run_validate});

}  // namespace
}  // namespace tritune::cli
