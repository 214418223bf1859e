// `lrgd model train` and `lrgd model eval-items`: item-token models (docs/train.md).
#include <fmt/core.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/item_model.h"
#include "lrgd/llama_backend.h"
#include "lrgd/llama_model.h"
#include "lrgd/metrics.h"
#include "lrgd/rec.h"
#include "lrgd/train.h"

namespace lrgd::cli {

namespace {

struct TrainArgs {
  std::string data;
  DataLoadArgs load;
  std::string out;
  std::string checkpoint_dir;
  bool no_resume = false;
  bool quiet = false;
  bool untied = false;
  bool no_grad_reset = false;
  bool freeze_token_embd = false;
  bool no_blas = false;
  bool attend_across_examples = false;
  train::TrainOptions o;
};

data::Dataset load(const std::string& path, const DataLoadArgs& args) {
  return data::load_dataset(path, load_options(args));
}

int run_train(TrainArgs a) {
  a.o.checkpoint_dir = a.checkpoint_dir;
  a.o.resume = !a.no_resume;
  a.o.progress = !a.quiet;
  a.o.tied = !a.untied;
  a.o.reset_gradients = !a.no_grad_reset;
  a.o.train_token_embd = !a.freeze_token_embd;
  a.o.blas = !a.no_blas;
  a.o.separate_examples = !a.attend_across_examples;
  const auto ds = load(a.data, a.load);
  const auto r = train::train_item_model(ds, a.out, a.o);
  nlohmann::json j{{"path", r.path.string()},
                   {"finished", r.finished},
                   {"n_params", r.n_params},
                   {"n_vocab", r.n_vocab},
                   {"steps_total", r.steps_total},
                   {"steps_run", r.steps_run},
                   {"resumed_from_step", r.resumed_from_step},
                   {"contexts_per_epoch", r.contexts_per_epoch},
                   {"tokens_per_epoch", r.tokens_per_epoch},
                   {"uniform_loss", r.uniform_loss},
                   {"unigram_loss", r.unigram_loss},
                   {"tokens_per_s", r.tokens_per_s},
                   {"blas", r.blas},
                   {"averaged_epochs", r.averaged_epochs},
                   {"wall_s", r.wall_s}};
  for (const auto& e : r.epochs) j["epoch_loss"].push_back({{"epoch", e.epoch}, {"loss", e.loss}, {"steps", e.steps}});
  for (const auto& [s, l] : r.loss_curve) j["loss_curve"].push_back({s, l});
  fmt::print("{}\n", j.dump(2));
  return r.finished ? 0 : 3;
}

struct EvalArgs {
  std::string data;
  DataLoadArgs load;
  std::string model;
  std::size_t n_users = 1000;
  std::uint64_t seed = 42;
  std::uint32_t trial = 0;
  std::size_t max_history = 20;
  int n_threads = 2;
  bool demonstration = false;
  bool valid = false;
};

// The item model and the baselines ranked on the same queries by the evaluation harness
// (eval::evaluate: the protocol's users, rec's rankers, run_eval's scoring), in memory.
int run_eval_items(const EvalArgs& a) {
  const auto ds = load(a.data, a.load);
  const auto t0 = std::chrono::steady_clock::now();
  // As `lrgd eval --model` configures an item-token model (score mode, item tokens); the
  // demonstration, when asked for, is the query history's last step.
  rec::LlmRankerOptions lo;
  lo.method = a.demonstration ? rec::Method::Icl : rec::Method::Zsl;
  configure_item_model(a.model, ds, "", lo);
  if (lo.prompt_form != rec::PromptForm::ItemTokens)
    throw OptionError("--model", a.model + " is not an item-token model (lrgd model train)");
  llm::LlamaBackendOptions bo;
  bo.model = a.model;
  bo.n_threads = a.n_threads;
  bo.n_parallel = 1;
  bo.kv_f32 = true;
  auto backend = llm::make_llama_backend(bo);
  baselines::BaselineOptions base;
  base.seed = a.seed;
  constexpr int kListLength = 10;
  const auto item_model = rec::make_llm_ranker(ds, *backend, lo);
  const auto pop = rec::make_baseline_ranker(ds, rec::Method::Pop, base, kListLength);
  const auto markov = rec::make_baseline_ranker(ds, rec::Method::Markov, base, kListLength);
  const auto random = rec::make_baseline_ranker(ds, rec::Method::Random, base, kListLength);
  const std::vector<eval::NamedRanker> rankers{
      {"item_model", item_model.get()}, {"pop", pop.get()}, {"markov", markov.get()}, {"random", random.get()}};

  eval::MemoryEvalOptions eo;
  eo.protocol.seed = a.seed;
  eo.protocol.trial = a.trial;
  eo.protocol.n_users = a.n_users;
  eo.protocol.max_history = a.max_history;
  eo.phase = a.valid ? eval::Phase::Valid : eval::Phase::Test;
  eo.demonstration = a.demonstration ? eval::DemoSource::LastStep : eval::DemoSource::None;
  eo.batch_size = 64;
  eo.metrics = metrics::parse_metrics("ndcg@10,recall@10,ndcg@1,mrr@10");
  const auto r = eval::evaluate(ds, rankers, eo);
  for (const auto& o : r.rankers)
    if (o.n_failed > 0)
      throw Error(fmt::format("{}: scoring failed for {} users; {}", o.name, o.n_failed, o.first_error));

  nlohmann::json j{{"model", a.model},
                   {"n_users", r.users.size()},
                   {"phase", eval::phase_name(eo.phase)},
                   {"demonstration", a.demonstration},
                   {"seed", a.seed},
                   {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  for (const auto& o : r.rankers) {
    nlohmann::json m;
    for (std::size_t k = 0; k < eo.metrics.size(); ++k) m[eo.metrics[k].key()] = o.means[k];
    j["rankers"][o.name] = std::move(m);
  }
  fmt::print("{}\n", j.dump(2));
  return 0;
}

}  // namespace

void configure_item_model(const std::string& model, const data::Dataset& dataset, const std::string& mode,
                          rec::LlmRankerOptions& options) {
  const auto meta = llm::read_item_model_meta(model);
  if (meta.layout == 0) return;
  if (meta.layout != item_model::kLayoutVersion)
    throw OptionError("--model", fmt::format("{} uses item-token layout {}; this lrgd reads layout {}", model,
                                             meta.layout, item_model::kLayoutVersion));
  // Item tokens are positions in the dataset's item table: on other data they would name
  // other items.
  if (meta.n_items != dataset.n_items() || meta.data_hash != dataset.content_hash)
    throw OptionError("--model", fmt::format("{} was trained on dataset '{}' ({} items, data hash {}), not on this one "
                                             "('{}', {} items, data hash {})",
                                             model, meta.dataset, meta.n_items, meta.data_hash.substr(0, 16),
                                             dataset.name, dataset.n_items(), dataset.content_hash.substr(0, 16)));
  if (!mode.empty() && rec::parse_rank_mode(mode) != rec::RankMode::Score)
    throw OptionError("--mode", "an item-token model ranks in score mode only (it writes no text)");
  options.mode = rec::RankMode::Score;
  options.prompt_form = rec::PromptForm::ItemTokens;
}

void add_train_command(CLI::App* model, Action& action) {
  auto a = std::make_shared<TrainArgs>();
  auto* t = model->add_subcommand("train", "Train an item-token llama model on a dataset's training histories");
  t->add_option("--data", a->data, "Dataset folder or file")->required();
  add_data_load_options(t, a->load);
  t->add_option("--out,-o", a->out, "Output .gguf file")->required();
  t->add_option("--layers", a->o.n_layer, "Transformer blocks")->capture_default_str();
  t->add_option("--width", a->o.n_embd, "Embedding width")->capture_default_str();
  t->add_option("--heads", a->o.n_head, "Attention heads")->capture_default_str();
  t->add_option("--kv-heads", a->o.n_head_kv, "Key/value heads (GQA)")->capture_default_str();
  t->add_option("--ff", a->o.n_ff, "Feed-forward width (0: about 8/3 * width)")->capture_default_str();
  t->add_flag("--untied", a->untied, "Separate output layer (default: tied to token_embd)");
  t->add_option("--ctx", a->o.n_ctx, "Tokens per training context (multiple of 256)")->capture_default_str();
  t->add_option("--epochs", a->o.epochs, "Passes over the training users")->capture_default_str();
  t->add_option("--lr", a->o.lr, "Peak AdamW learning rate")->capture_default_str();
  t->add_option("--lr-min-ratio", a->o.lr_min_ratio, "Final learning rate / peak (cosine)")->capture_default_str();
  t->add_option("--warmup", a->o.warmup_steps, "Linear warm-up steps")->capture_default_str();
  t->add_option("--weight-decay", a->o.weight_decay, "AdamW weight decay")->capture_default_str();
  t->add_option("--max-history", a->o.max_history, "Query items kept before the target")->capture_default_str();
  t->add_option("--demo-prob", a->o.demo_prob, "Chance that an example carries a demonstration")->capture_default_str();
  t->add_option("--max-users", a->o.max_users, "Train on the first N users only (0: all)")->capture_default_str();
  t->add_option("--seed", a->o.seed, "Seed (weights, user order, demonstrations)")->capture_default_str();
  t->add_option("--threads", a->o.n_threads, "CPU threads (results are reproducible per thread count)")
      ->capture_default_str();
  t->add_option("--checkpoint-dir", a->checkpoint_dir, "Checkpoint folder (default: <out>.ckpt)");
  t->add_option("--checkpoint-every", a->o.checkpoint_every, "Optimizer steps between checkpoints")
      ->capture_default_str();
  t->add_flag("--no-resume", a->no_resume, "Ignore an existing checkpoint and start over");
  t->add_flag("--keep-checkpoints", a->o.keep_checkpoints, "Keep the checkpoint folder after success");
  t->add_option("--stop-after", a->o.stop_after_steps, "Stop after this global step (exit code 3; resume later)");
  t->add_option("--sampled-outputs", a->o.sampled_outputs,
                "Sampled softmax: output rows per step (targets + uniform draws; 0: full softmax)")
      ->capture_default_str();
  t->add_option("--input-noise", a->o.input_noise,
                "Chance that an input item is replaced by a random one (labels stay true; 0: off)")
      ->capture_default_str();
  t->add_option("--average-epochs", a->o.average_epochs,
                "Write the mean of the weights at the last N epoch ends (1: the final weights)")
      ->capture_default_str();
  t->add_flag("--no-blas", a->no_blas, "Keep matrix products on ggml's own kernels (no OpenBLAS)");
  t->add_flag("--attend-across-examples", a->attend_across_examples,
              "Pack examples into one sequence per context, each seeing the users before it (the old way)");
  t->add_flag("--no-grad-reset", a->no_grad_reset, "Do not reset gradients between steps (llama.cpp as shipped)");
  t->add_flag("--freeze-token-embd", a->freeze_token_embd, "Leave token_embd untrained (llama.cpp as shipped)");
  t->add_flag("--quiet,-q", a->quiet, "No progress lines");
  t->callback([&action, a] { action = [a] { return run_train(*a); }; });

  auto e = std::make_shared<EvalArgs>();
  auto* ev = model->add_subcommand("eval-items", "Rank test candidates with an item model, next to pop/markov/random");
  ev->add_option("--data", e->data, "Dataset folder or file")->required();
  add_data_load_options(ev, e->load);
  ev->add_option("--model,-m", e->model, "Item model .gguf (lrgd model train)")->required();
  ev->add_option("--users", e->n_users, "Evaluation users (0: all)")->capture_default_str();
  ev->add_option("--seed", e->seed, "Protocol seed")->capture_default_str();
  ev->add_option("--trial", e->trial, "Candidate draw")->capture_default_str();
  ev->add_option("--max-history", e->max_history, "History items in the prompt")->capture_default_str();
  ev->add_option("--threads", e->n_threads, "CPU threads")->capture_default_str();
  ev->add_flag("--demo", e->demonstration, "Prepend the last-step demonstration of the history");
  ev->add_flag("--valid", e->valid, "Validation targets instead of test targets");
  ev->callback([&action, e] { action = [e] { return run_eval_items(*e); }; });
}

}  // namespace lrgd::cli
