// Training and scoring speed of item-token models on the Games data (issue 8).
// Prints one JSON object. Usage: bench_train [DATA_DIR] [--tokens N] [--threads N] [--users N]
//   Training: the same number of tokens (default 65,536) with contexts of 256 (the baseline),
//   512 and 1024 tokens per optimizer step; ratios are tokens/s against 256.
//   Scoring: the 256-token model ranks the protocol's 50 candidates of N users (default
//   1000) through the embedded backend, zero-shot and with one demonstration (ICL).
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "lrgd/data.h"
#include "lrgd/item_model.h"
#include "lrgd/llama_backend.h"
#include "lrgd/protocol.h"
#include "lrgd/train.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  fs::path root = LRGD_SHARED_DATA_DIR;
  std::int64_t tokens = 65536;
  int threads = 2;
  std::size_t users = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) {
      tokens = std::max<std::int64_t>(1024, std::atoll(argv[++i]));
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--users") == 0 && i + 1 < argc) {
      users = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    } else {
      root = argv[i];
    }
  }
  const auto games = root / "amazon18-games";
  if (!fs::exists(games)) {
    fmt::print(stderr, "bench_train: no Games data under {}\n", root.string());
    return 1;
  }
  const auto ds = lrgd::data::load_dataset(games);
  const auto dir = fs::temp_directory_path() / ("lrgd_bench_train_" + std::to_string(::getpid()));
  fs::create_directories(dir);

  nlohmann::json out;
  out["dataset"] = ds.name;
  out["n_items"] = ds.n_items();
  out["threads"] = threads;
  out["tokens_per_config"] = tokens;
  double base = 0;
  fs::path model;
  for (int ctx : {256, 512, 1024}) {
    lrgd::train::TrainOptions o;
    o.n_ctx = ctx;
    o.n_threads = threads;
    o.progress = false;
    o.stop_after_steps = tokens / ctx;
    o.checkpoint_every = o.stop_after_steps;  // the stop is a checkpoint: its model is kept
    o.checkpoint_dir = dir / ("ckpt-" + std::to_string(ctx));
    const auto t0 = Clock::now();
    const auto r = lrgd::train::train_item_model(ds, dir / "unused.gguf", o);
    const double s = seconds_since(t0);
    if (ctx == 256) {
      base = r.tokens_per_s;
      model = o.checkpoint_dir / fmt::format("step-{:09}", o.stop_after_steps) / "model.gguf";
    }
    out["train"].push_back({{"n_ctx", ctx},
                            {"steps", r.steps_run},
                            {"tokens_per_s", r.tokens_per_s},
                            {"ratio_vs_ctx256", base > 0 ? r.tokens_per_s / base : 0.0},
                            {"wall_s", s},
                            {"n_params", r.n_params}});
    fmt::print(stderr, "train n_ctx {}: {:.0f} tokens/s\n", ctx, r.tokens_per_s);
  }

  // Scoring: one ScoreRequest per user, 50 single-token continuations each.
  lrgd::protocol::ProtocolOptions po;
  po.n_users = users;
  const auto split = lrgd::protocol::prepare_split(ds, po);
  lrgd::llm::LlamaBackendOptions bo;
  bo.model = model;
  bo.n_threads = threads;
  auto backend = lrgd::llm::make_llama_backend(bo);
  double zsl_rate = 0;
  for (bool demo : {false, true}) {
    std::vector<lrgd::llm::ScoreRequest> reqs;
    std::size_t prompt_tokens = 0;
    for (const auto& u : split.users) {
      std::vector<lrgd::item_model::Demonstration> demos;
      if (demo) demos.push_back({u.valid_history, u.valid_target});
      lrgd::llm::ScoreRequest r;
      r.context = lrgd::llm::Prompt::ids(lrgd::item_model::prompt_tokens(u.test_history, demos));
      prompt_tokens += r.context.tokens.size();
      r.token_continuations = lrgd::item_model::candidate_continuations(u.test_candidates);
      reqs.push_back(std::move(r));
    }
    const auto t0 = Clock::now();
    constexpr std::size_t kBatch = 64;
    for (std::size_t i = 0; i < reqs.size(); i += kBatch) {
      const std::span<const lrgd::llm::ScoreRequest> chunk(reqs.data() + i, std::min(kBatch, reqs.size() - i));
      (void)backend->score(chunk);
    }
    const double s = seconds_since(t0);
    const double rate = static_cast<double>(reqs.size()) / s;
    if (!demo) zsl_rate = rate;
    out["score"].push_back({{"prompt", demo ? "icl" : "zsl"},
                            {"users", reqs.size()},
                            {"mean_prompt_tokens", static_cast<double>(prompt_tokens) / reqs.size()},
                            {"users_per_s", rate},
                            {"prompt_tokens_per_s", static_cast<double>(prompt_tokens) / s},
                            {"ratio_vs_zsl", rate / zsl_rate}});
  }
  fs::remove_all(dir);
  fmt::print("{}\n", out.dump(2));
  return 0;
}
