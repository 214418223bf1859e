// Embedded backend throughput vs llama-bench on the same model and threads.
//   bench_llm [--model F.gguf] [--threads 2] [--prompts 32] [--out result.json]
// Makes a ~174M-parameter Llama-3-style q8_0 model (128k vocabulary, tied) when none is given.
// Prints JSON: llama-bench pp512, our prompt tokens/s on recommendation-sized prompts,
// their ratio, and the speed-up of prefix reuse on prompts sharing a 300-token prefix.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lrgd/llama_backend.h"
#include "lrgd/model_init.h"
#include "lrgd/process.h"
#include "lrgd/rng.h"

namespace fs = std::filesystem;
using namespace lrgd::llm;

namespace {

std::string words(lrgd::Rng& rng, int n) {
  static const char* vocab[] = {"game",    "adventure",  "Mario",    "Zelda",  "racing",  "puzzle",
                                "shooter", "strategy",   "Halo",     "Portal", "classic", "edition",
                                "deluxe",  "controller", "wireless", "RPG"};
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(vocab[rng.uniform(16)]) + " ";
  return s;
}

// Prompts of about `n_tokens` tokens; the first `shared` words are the same in all.
std::vector<Prompt> make_prompts(int n, int n_words, int shared_words, std::uint64_t seed) {
  lrgd::Rng common(seed);
  const std::string prefix = words(common, shared_words);
  std::vector<Prompt> out;
  for (int i = 0; i < n; ++i) {
    lrgd::Rng r = lrgd::Rng::derive(seed, "prompt", static_cast<std::uint64_t>(i));
    out.push_back(Prompt::raw(prefix + words(r, n_words - shared_words)));
  }
  return out;
}

struct Run {
  double seconds;
  std::uint64_t prompt_tokens;
  std::uint64_t reused;
};

Run prefill(const fs::path& model, int threads, const std::vector<Prompt>& prompts, bool reuse, bool unified) {
  LlamaBackendOptions o;
  o.model = model;
  o.n_threads = threads;
  o.n_parallel = static_cast<int>(prompts.size());
  o.n_ctx_seq = 1024;
  o.prefix_reuse = reuse;
  o.kv_unified = unified;
  auto b = make_llama_backend(o);
  GenerationParams gp;
  gp.max_tokens = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const auto res = b->generate(prompts, gp);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& g : res)
    if (!g.ok()) throw std::runtime_error(g.error);
  const auto u = b->usage();
  return {s, u.n_prompt_tokens, u.n_reused_tokens};
}

// llama-bench's pp512 tokens/s; a failing llama-bench throws ToolError naming its status.
double llama_bench_pp512(const fs::path& bin, const fs::path& model, int threads) {
  const auto r = lrgd::run_tool_checked({bin.string(), "-m", model.string(), "-p", "512", "-n", "0", "-t",
                                         std::to_string(threads), "-r", "3", "-o", "json"},
                                        "pp512 on " + model.string());
  try {
    return nlohmann::json::parse(r.out).at(0).at("avg_ts").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw lrgd::Error(bin.string() + " exited 0 but its output is not the expected JSON (" + e.what() +
                      "); first bytes: " + r.out.substr(0, 200));
  }
}

}  // namespace

int run(int argc, char** argv) {
  fs::path model;
  fs::path out;
  int threads = 2, n_prompts = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") model = argv[i + 1];
    if (a == "--threads") threads = std::stoi(argv[i + 1]);
    if (a == "--prompts") n_prompts = std::stoi(argv[i + 1]);
    if (a == "--out") out = argv[i + 1];
  }
  if (model.empty()) {
    model = fs::temp_directory_path() / "lrgd_bench_llama_174m_q8.gguf";
    if (!fs::exists(model)) {
      lrgd::model::ModelInitOptions o;
      o.n_layer = 12;
      o.n_embd = 768;
      o.n_head = 12;
      o.n_head_kv = 4;
      o.n_ff = 2048;
      o.tied = true;
      o.type = "q8_0";
      o.n_ctx = 4096;
      std::fprintf(stderr, "making %s\n", model.c_str());
      lrgd::model::init_model(o, model);
    }
  }
  // Load time of a tiny (~8M parameters, 128k vocabulary) model, median of 5.
  const auto tiny = fs::temp_directory_path() / "lrgd_bench_tiny_llama.gguf";
  {
    lrgd::model::ModelInitOptions o;
    o.n_embd = 32;
    lrgd::model::init_model(o, tiny);
  }
  std::vector<double> load_ms;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)lrgd::llm::Model::open(tiny);
    load_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(load_ms.begin(), load_ms.end());
  const fs::path bench_bin = fs::path(LRGD_LLAMA_BIN_DIR) / "llama-bench";
  std::fprintf(stderr, "llama-bench pp512...\n");
  const double pp512 = llama_bench_pp512(bench_bin, model, threads);

  // ~600-token recommendation-sized prompts, all different (no shared prefix).
  const auto distinct = make_prompts(n_prompts, 600, 0, 1);
  std::fprintf(stderr, "embedded, %d distinct prompts (per-sequence KV)...\n", n_prompts);
  const Run ours = prefill(model, threads, distinct, false, false);
  std::fprintf(stderr, "embedded, %d distinct prompts (unified KV)...\n", n_prompts);
  const Run ours_unified = prefill(model, threads, distinct, false, true);
  // Sharing a 300-word prefix: with and without reuse.
  const auto shared = make_prompts(n_prompts, 600, 300, 2);
  std::fprintf(stderr, "prefix sharing, no reuse...\n");
  const Run no_reuse = prefill(model, threads, shared, false, false);
  std::fprintf(stderr, "prefix sharing, reuse...\n");
  const Run reuse = prefill(model, threads, shared, true, false);

  const double ours_tps = static_cast<double>(ours.prompt_tokens) / ours.seconds;
  const double unified_tps = static_cast<double>(ours_unified.prompt_tokens) / ours_unified.seconds;
  nlohmann::json j{
      {"bench", "llm_prefill"},
      {"model", model.string()},
      {"threads", threads},
      {"tiny_model_load_ms", load_ms[2]},
      {"prompts", n_prompts},
      {"llama_bench_pp512_tps", pp512},
      {"embedded_prompt_tps", ours_tps},
      {"embedded_prompt_tokens", ours.prompt_tokens},
      {"embedded_vs_pp512", ours_tps / pp512},
      {"embedded_unified_kv_tps", unified_tps},
      {"unified_vs_pp512", unified_tps / pp512},
      {"prefix_no_reuse_s", no_reuse.seconds},
      {"prefix_reuse_s", reuse.seconds},
      {"prefix_reuse_speedup", no_reuse.seconds / reuse.seconds},
      {"prefix_tokens_reused", reuse.reused},
      {"prefix_prompt_tokens", reuse.prompt_tokens},
  };
  const std::string text = j.dump(2);
  std::printf("%s\n", text.c_str());
  if (!out.empty()) std::ofstream(out) << text << "\n";
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_llm: error: %s\n", e.what());
    return 1;
  }
}
