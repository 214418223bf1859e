// The dual-model analyser on a ~170M-parameter random model and a 600-token prompt
// (issue 7): where the time goes. Prints JSON.
//   bench_dual [--model FILE] [--features 1024] [--generate 10] [--threads 0] [--no-knob]
// Without --model, writes (once) a llama-architecture model with 12 layers, width 768,
// 12 query / 4 key-value heads, f16 weights, tied embeddings to $TMPDIR.
#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "lrgd/dual.h"
#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"

namespace fs = std::filesystem;
using namespace lrgd::analysis;

int main(int argc, char** argv) {
  std::string model;
  std::vector<int> features = {1024};
  int n_generate = 10, n_threads = 0, n_prompt = 600;
  bool knob = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model")
      model = next();
    else if (a == "--features") {
      features.clear();
      std::string list = next();
      for (std::size_t p = 0; p < list.size();) {
        const auto c = list.find(',', p);
        features.push_back(std::stoi(list.substr(p, c - p)));
        p = c == std::string::npos ? list.size() : c + 1;
      }
    } else if (a == "--generate")
      n_generate = std::stoi(next());
    else if (a == "--threads")
      n_threads = std::stoi(next());
    else if (a == "--prompt-tokens")
      n_prompt = std::stoi(next());
    else if (a == "--no-knob")
      knob = false;
    else {
      fmt::print(stderr, "unknown argument {}\n", a);
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  lrgd::model::ModelInitReport made;
  if (model.empty()) {
    const fs::path path = fs::temp_directory_path() / "lrgd_bench_dual_170m.gguf";
    lrgd::model::ModelInitOptions o;
    o.arch = "llama";
    o.n_layer = 12;
    o.n_embd = 768;
    o.n_head = 12;
    o.n_head_kv = 4;
    o.n_ff = 2048;
    o.type = "f16";
    o.tied = true;
    o.seed = 1;
    if (!fs::exists(path)) made = lrgd::model::init_model(o, path);
    model = path.string();
  }
  const double make_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // A ~600-token prompt: T ~ 20%, D ~ 30%, Q the rest (as token spans).
  auto make_text = [](int n_items) {
    std::string t;
    for (int i = 0; i < n_items; ++i) t += "item" + std::to_string(i) + " ";
    return t;
  };
  const auto t_open = std::chrono::steady_clock::now();
  const auto handle = lrgd::llm::Model::open(model);
  const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_open).count();
  const auto probe = handle->tokenize(make_text(100));
  const int n_items = static_cast<int>(100.0 * n_prompt / static_cast<double>(probe.size()));
  const std::string text = make_text(n_items);
  TokenizedPrompt prompt;
  prompt.tokens = handle->tokenize(text);
  n_prompt = static_cast<int>(prompt.tokens.size());
  const int t_end = n_prompt / 5, d_end = n_prompt / 2;
  prompt.spans = {{"T", 0, t_end}, {"D", t_end, d_end}, {"Q", d_end, n_prompt}};

  RunOptions ro;
  ro.capture.n_generate = n_generate;
  ro.capture.n_threads = n_threads;
  ro.capture.target_tokens = handle->tokenize(" item7", /*plain=*/true);
  ro.dual.features = features;
  ro.dual.round_features = 1024;
  ro.dual.n_threads = n_threads;
  // The per-head analysis is what is timed here, comparable with earlier runs; the FFN dual
  // and the chained run (a second forward pass with dual attention) are left out.
  ro.dual.ffn_layer = -1;
  ro.dual.chain = false;
  if (!knob) {
    ro.alpha = 1;
    ro.lambda = 0;
  }
  // Baseline: the same prompt decoded without the capture callback (f32 KV cache, no flash
  // attention), to separate libllama's own time from the capture's.
  lrgd::llm::LoadOptions lo;
  lo.n_threads = n_threads;
  lo.kv_f32 = true;
  lo.n_batch = n_prompt;
  const auto base = lrgd::llm::generate_greedy(*handle, text, 0, lo);
  const double baseline_ms = base.decode_ms;

  const auto t1 = std::chrono::steady_clock::now();
  const DualReport r = run_dual(*handle, prompt, ro, "bench");
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();

  double err_mean = 0;
  for (const auto& h : r.steps[0].heads) err_mean += h.dual_rel_err.empty() ? 0 : h.dual_rel_err.back();
  err_mean /= static_cast<double>(r.steps[0].heads.size());
  const auto& t = r.timing;
  nlohmann::json j = {{"bench", "dual"},
                      {"model", model},
                      {"n_params", made.n_params},
                      {"n_layer", r.n_layer},
                      {"n_head", r.n_head},
                      {"n_head_kv", r.n_head_kv},
                      {"head_dim", r.head_dim},
                      {"n_prompt", r.n_prompt},
                      {"n_generate", n_generate},
                      {"features", features},
                      {"round_features", ro.dual.round_features},
                      {"threads", n_threads},
                      {"make_model_ms", make_ms},
                      {"open_model_ms", open_ms},
                      {"baseline_prompt_decode_no_capture_ms", baseline_ms},
                      {"wall_ms", wall_ms},
                      {"breakdown_ms",
                       {{"context", t.context_ms},
                        {"prompt_decode_capture", t.prompt_ms},
                        {"generate_capture", t.generate_ms},
                        {"features_cpu", t.features_ms},
                        {"dual_accumulate_cpu", t.dual_ms},
                        {"exact_split_reference_cpu", t.exact_ms},
                        {"knob_capture", t.knob_capture_ms},
                        {"knob_analysis", t.knob_ms}}},
                      {"analysis_wall_ms", wall_ms - t.context_ms - t.prompt_ms - t.generate_ms - t.knob_capture_ms},
                      {"dual_rel_err_mean_at_max_M", err_mean},
                      {"note", "*_cpu are summed over worker threads; wall_ms is run_dual end to end"}};
  fmt::print("{}\n", j.dump(2));
  return 0;
}
