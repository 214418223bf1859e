// End-to-end `lrgd eval` on the Games data with a tiny random GGUF (embedded backend):
// how much of a run's wall time is spent outside the model (sampling, prompting, parsing,
// metrics, writing). Requirement: under 2%. Prints one JSON object.
// Usage: bench_eval [DATA_DIR] [--users N] [--trials N] [--mode generate|score]
//                   [--threads N] [--batch N] [--parallel N] [--layers N] [--width N]
#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "lrgd/data.h"
#include "lrgd/eval.h"
#include "lrgd/llama_backend.h"
#include "lrgd/model_init.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  fs::path root = LRGD_SHARED_DATA_DIR;
  std::size_t n_users = 64;
  std::uint32_t n_trials = 1;
  std::string mode = "generate";
  int threads = 1, batch = 16, parallel = 8, layers = 1, width = 32;
  for (int i = 1; i < argc; ++i) {
    const auto next = [&] { return i + 1 < argc ? argv[++i] : ""; };
    if (std::strcmp(argv[i], "--users") == 0)
      n_users = std::stoul(next());
    else if (std::strcmp(argv[i], "--trials") == 0)
      n_trials = static_cast<std::uint32_t>(std::stoul(next()));
    else if (std::strcmp(argv[i], "--mode") == 0)
      mode = next();
    else if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::stoi(next());
    else if (std::strcmp(argv[i], "--batch") == 0)
      batch = std::stoi(next());
    else if (std::strcmp(argv[i], "--parallel") == 0)
      parallel = std::stoi(next());
    else if (std::strcmp(argv[i], "--layers") == 0)
      layers = std::stoi(next());
    else if (std::strcmp(argv[i], "--width") == 0)
      width = std::stoi(next());
    else
      root = argv[i];
  }
  const auto games = root / "amazon18-games";
  if (!fs::exists(games)) {
    fmt::print(stderr, "bench_eval: no Games data under {}\n", root.string());
    return 1;
  }
  const auto work = fs::temp_directory_path() / "lrgd-bench-eval";
  fs::create_directories(work);
  const auto model = work / fmt::format("tiny-mistral-{}x{}.gguf", layers, width);
  if (!fs::exists(model)) {
    lrgd::model::ModelInitOptions o;
    o.arch = "mistral";
    o.n_layer = layers;
    o.n_embd = width;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_ctx = 2048;
    lrgd::model::init_model(o, model);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto ds = lrgd::data::load_dataset(games);
  lrgd::llm::LlamaBackendOptions bo;
  bo.model = model;
  bo.n_threads = threads;
  bo.n_parallel = parallel;
  auto backend = lrgd::llm::make_llama_backend(bo);
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  lrgd::eval::EvalConfig c;
  c.method = lrgd::rec::Method::Zsl;
  c.protocol.n_users = n_users;
  c.n_trials = n_trials;
  c.llm.mode = lrgd::rec::parse_rank_mode(mode);
  c.llm.constrain = true;
  lrgd::eval::RunOptions ro;
  ro.out = work / "run";
  ro.overwrite = true;
  ro.batch_size = static_cast<std::size_t>(batch);
  ro.progress = false;
  ro.setup_s = setup_s;
  const auto r = lrgd::eval::run_eval(c, ds, backend.get(), ro);
  const auto u = backend->usage();
  nlohmann::ordered_json j{
      {"bench", "eval"},
      {"model", fmt::format("random mistral {} layer(s) x {} wide, 32k vocab", layers, width)},
      {"mode", mode},
      {"constrain", true},
      {"threads", threads},
      {"batch", batch},
      {"parallel", parallel},
      {"records", r.n_records},
      {"setup_s", setup_s},
      {"wall_s", r.wall_s},
      {"time_in_model_s", r.time_in_model_s},
      {"time_outside_model_s", r.time_outside_model_s},
      {"outside_model_fraction", r.wall_s > 0 ? r.time_outside_model_s / r.wall_s : 0.0},
      {"requirement", "outside_model_fraction < 0.02"},
      {"pass", r.wall_s > 0 && r.time_outside_model_s / r.wall_s < 0.02},
      {"records_per_s", r.wall_s > 0 ? static_cast<double>(r.n_records) / r.wall_s : 0.0},
      {"prompt_tokens", u.n_prompt_tokens},
      {"generated_tokens", u.n_generated_tokens},
      {"tokens_per_s_in_model",
       r.time_in_model_s > 0 ? static_cast<double>(u.n_prompt_tokens + u.n_generated_tokens) / r.time_in_model_s : 0.0},
      {"run_dir", ro.out.string()}};
  fmt::print("{}\n", j.dump(2));
  return 0;
}
