// Training and scoring speed of item-token models on the Games data (issues 8 and 18).
// Prints one JSON object. Usage: bench_train [DATA_DIR] [--tokens N] [--threads N] [--users N]
//   Training: the same number of tokens (default 65,536) per configuration, 256 tokens per
//   step, from the same seed. The baseline is ggml's own CPU kernels with the full softmax
//   (the path before issue 18); then BLAS, the sampled softmax, and both (the default).
//   Ratios are tokens/s against the baseline. Each trained model's full-softmax loss on
//   held-out contexts says whether the faster paths learn as much.
//   GEMM peak: OpenBLAS's sgemm on square matrices with the same threads; each training row
//   gives the FLOP/s its steps really do (6 x (parameters - output rows not computed) x
//   tokens/s) as a fraction of it.
//   Scoring: the baseline's model ranks the protocol's 50 candidates of N users (default
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

#ifdef LRGD_HAVE_CBLAS
#include <cblas.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The best of a few sgemm runs on n x n matrices, in GFLOP/s (0 without OpenBLAS).
double gemm_peak_gflops(int threads, int n) {
#ifdef LRGD_HAVE_CBLAS
  openblas_set_num_threads(threads);
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size(), 0.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
#else
  (void)threads;
  (void)n;
  return 0;
#endif
}

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
  const double peak = gemm_peak_gflops(threads, 1024);
  out["gemm_peak_gflops"] = peak;
  double base = 0;
  fs::path model;
  // Held-out contexts: the last ones of epoch 0's order, which no configuration reaches.
  lrgd::train::TrainOptions defaults;
  auto heldout = lrgd::train::pack_contexts(lrgd::train::epoch_examples(ds, defaults, 0), defaults.n_ctx);
  const std::size_t n_heldout = std::min<std::size_t>(32, heldout.size() / 2);
  heldout.erase(heldout.begin(), heldout.end() - static_cast<std::ptrdiff_t>(n_heldout));
  struct Config {
    const char* path;
    bool blas;
    int sampled;
  };
  // The baseline is the path before issue 18 (ggml's kernels, full softmax); the last row is
  // `lrgd model train`'s default (BLAS and the sampled softmax).
  for (const Config c : {Config{"ggml", false, 0}, Config{"blas", true, 0}, Config{"ggml+sampled", false, 1024},
                         Config{"blas+sampled", true, defaults.sampled_outputs}}) {
    lrgd::train::TrainOptions o;
    o.blas = c.blas;
    o.sampled_outputs = c.sampled;
    o.n_threads = threads;
    o.progress = false;
    o.stop_after_steps = tokens / o.n_ctx;
    o.checkpoint_every = o.stop_after_steps;  // the stop is a checkpoint: its model is kept
    o.checkpoint_dir = dir / fmt::format("ckpt-{}", c.path);
    const auto t0 = Clock::now();
    const auto r = lrgd::train::train_item_model(ds, dir / "unused.gguf", o);
    const double s = seconds_since(t0);
    if (base == 0) base = r.tokens_per_s;
    const auto trained = o.checkpoint_dir / fmt::format("step-{:09}", o.stop_after_steps) / "model.gguf";
    if (model.empty()) model = trained;  // scoring uses the baseline's model: inference is unchanged
    const double heldout_loss = lrgd::train::item_model_loss(trained, heldout, o.n_ctx, threads);
    // FLOPs the step really does: 6 x (transformer weights + the output rows it computes).
    const double out_rows = c.sampled > 0 ? c.sampled : static_cast<double>(r.n_vocab);
    const double flop_params = static_cast<double>(r.n_params) - static_cast<double>(r.n_vocab - out_rows) * o.n_embd;
    const double gflops = 6.0 * flop_params * r.tokens_per_s / 1e9;
    out["train"].push_back({{"path", c.path},
                            {"blas_used", r.blas},
                            {"sampled_outputs", c.sampled},
                            {"n_ctx", o.n_ctx},
                            {"steps", r.steps_run},
                            {"tokens_per_s", r.tokens_per_s},
                            {"ratio_vs_ggml", r.tokens_per_s / base},
                            {"model_gflops", gflops},
                            {"fraction_of_gemm_peak", peak > 0 ? gflops / peak : 0.0},
                            {"train_loss", r.loss_curve.empty() ? 0.0 : r.loss_curve.back().second},
                            {"heldout_full_softmax_loss", heldout_loss},
                            {"wall_s", s},
                            {"n_params", r.n_params}});
    fmt::print(stderr, "train {}: {:.0f} tokens/s ({:.2f}x), held-out loss {:.4f}\n", c.path, r.tokens_per_s,
               r.tokens_per_s / base, heldout_loss);
  }
  out["heldout_contexts"] = n_heldout;

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
