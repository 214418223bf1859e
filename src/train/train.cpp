// Training item-token llama models with llama_opt_init / llama_opt_epoch (docs/train.md).
#include "lrgd/train.h"

#include <fmt/core.h>
#include <ggml-backend.h>
#include <ggml-opt.h>
#include <ggml.h>
#include <llama-cpp.h>
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numbers>
#include <set>
#include <sstream>

#include "gguf_io.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/llama_model.h"
#include "lrgd/progress.h"
#include "lrgd/rng.h"

namespace lrgd::train {

namespace {

using detail::Tensor;
using detail::Tensors;

void validate(const TrainOptions& o, const data::Dataset& ds) {
  if (ds.n_items() == 0) throw OptionError("--data", "the dataset has no items");
  if (o.n_layer < 1) throw OptionError("--layers", "must be at least 1");
  if (o.n_embd < 8) throw OptionError("--width", "must be at least 8");
  if (o.n_head < 1 || o.n_embd % o.n_head != 0) throw OptionError("--heads", "must divide the width");
  if ((o.n_embd / o.n_head) % 2 != 0) throw OptionError("--heads", "head size must be even for RoPE");
  if (o.n_head_kv < 1 || o.n_head % o.n_head_kv != 0) throw OptionError("--kv-heads", "must divide --heads");
  if (o.n_ff < 0) throw OptionError("--ff", "must be positive (or 0 for the default)");
  if (o.n_ctx < 256 || o.n_ctx % 256 != 0)
    throw OptionError("--ctx", "must be a multiple of 256 (llama.cpp pads n_ctx)");
  if (o.epochs < 1) throw OptionError("--epochs", "must be at least 1");
  if (!(o.lr > 0)) throw OptionError("--lr", "must be positive");
  if (o.lr_min_ratio < 0 || o.lr_min_ratio > 1) throw OptionError("--lr-min-ratio", "must be in [0, 1]");
  if (o.demo_prob < 0 || o.demo_prob > 1) throw OptionError("--demo-prob", "must be in [0, 1]");
  if (o.n_threads < 1) throw OptionError("--threads", "must be at least 1");
  if (o.checkpoint_every < 1) throw OptionError("--checkpoint-every", "must be at least 1");
  if (o.stop_after_steps < 0) throw OptionError("--stop-after", "must not be negative");
  if (o.weight_decay < 0 || o.weight_decay > 1) throw OptionError("--weight-decay", "must be in [0, 1]");
}

// Everything that changes the numbers of a run; a checkpoint from another fingerprint is refused.
std::string fingerprint(const TrainOptions& o, const data::Dataset& ds) {
  std::ostringstream s;
  s << "v1|" << ds.content_hash << '|' << ds.n_items() << '|' << ds.n_users() << '|' << ds.n_interactions() << '|'
    << o.n_layer << '|' << o.n_embd << '|' << o.n_head << '|' << o.n_head_kv << '|' << o.n_ff << '|' << o.tied << '|'
    << o.n_ctx << '|' << o.init_std << '|' << o.rope_theta << '|' << o.rms_eps << '|' << o.holdout << '|'
    << o.max_history << '|' << o.demo_prob << '|' << o.max_users << '|' << o.epochs << '|' << o.lr << '|'
    << o.lr_min_ratio << '|' << o.warmup_steps << '|' << o.beta1 << '|' << o.beta2 << '|' << o.eps << '|'
    << o.weight_decay << '|' << o.seed << '|' << o.n_threads << '|' << o.reset_gradients << '|' << o.train_token_embd;
  return sha256_hex(s.str()).substr(0, 32);
}

float lr_at(const TrainOptions& o, std::int64_t step, std::int64_t total) {
  if (o.warmup_steps > 0 && step < o.warmup_steps)
    return o.lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup_steps);
  const double span = static_cast<double>(std::max<std::int64_t>(1, total - o.warmup_steps));
  const double t = std::clamp(static_cast<double>(step - o.warmup_steps) / span, 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * t));
  return static_cast<float>(o.lr * (o.lr_min_ratio + (1.0 - o.lr_min_ratio) * cosine));
}

enum class Phase { Collect, Train };

struct MomentPair {
  ggml_tensor* m = nullptr;
  ggml_tensor* v = nullptr;
};

// Shared by the graph callback (cb_eval), the optimizer-parameter callback and the epoch callback.
struct State {
  const TrainOptions* opts = nullptr;
  Phase phase = Phase::Collect;
  std::set<std::string> wanted;                        // weight names to find in the graph
  std::map<std::string, ggml_tensor*> weights;         // found in the collect pass
  std::map<std::string, MomentPair> moments;           // AdamW m, v per weight (seen after steps)
  std::map<std::string, Tensor> pending_m, pending_v;  // restored on the next step (resume)
  std::int64_t step = 0;                               // global optimizer steps done
  std::int64_t steps_total = 0;
  std::int64_t adamw_nodes_seen = 0;
  // progress
  Progress* progress = nullptr;
  std::uint64_t tokens_done = 0;
  int n_ctx = 0;
};

State* g_state = nullptr;  // for ggml_opt_epoch_callback, which has no user data

bool eval_callback(ggml_tensor* t, bool ask, void* user_data) {
  auto* st = static_cast<State*>(user_data);
  if (st->phase == Phase::Collect) {
    if (ask) {
      for (int i = 0; i < GGML_MAX_SRC; ++i) {
        ggml_tensor* s = t->src[i];
        if (s != nullptr && s->op == GGML_OP_NONE && st->wanted.count(s->name) != 0) st->weights[s->name] = s;
      }
    }
    return false;
  }
  if (t->op != GGML_OP_OPT_STEP_ADAMW) return false;
  const std::string name = t->src[0]->name;
  if (ask) {
    // Bias corrections from our own step counter (the same formula as ggml_opt_eval), so that
    // a resumed run, whose fresh ggml_opt context counts from 1 again, steps exactly alike.
    const auto& o = *st->opts;
    const float iter = static_cast<float>(st->step + 1);
    const float corr[2] = {1.0f / (1.0f - std::pow(o.beta1, iter)), 1.0f / (1.0f - std::pow(o.beta2, iter))};
    ggml_backend_tensor_set(t->src[4], corr, 5 * sizeof(float), sizeof corr);
    if (auto it = st->pending_m.find(name); it != st->pending_m.end()) {
      ggml_backend_tensor_set(t->src[2], it->second.data.data(), 0, ggml_nbytes(t->src[2]));
      st->pending_m.erase(it);
    }
    if (auto it = st->pending_v.find(name); it != st->pending_v.end()) {
      ggml_backend_tensor_set(t->src[3], it->second.data.data(), 0, ggml_nbytes(t->src[3]));
      st->pending_v.erase(it);
    }
    return true;
  }
  st->moments[name] = MomentPair{t->src[2], t->src[3]};
  ++st->adamw_nodes_seen;
  // llama.cpp's dynamic-graph training never resets the gradient accumulators between
  // optimizer steps (docs/train.md): zero this weight's accumulator once its step has run.
  if (st->opts->reset_gradients) ggml_backend_tensor_memset(t->src[1], 0, 0, ggml_nbytes(t->src[1]));
  return true;
}

ggml_opt_optimizer_params optimizer_params(void* user_data) {
  const auto* st = static_cast<const State*>(user_data);
  const auto& o = *st->opts;
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = lr_at(o, st->step, st->steps_total);
  p.adamw.beta1 = o.beta1;
  p.adamw.beta2 = o.beta2;
  p.adamw.eps = o.eps;
  p.adamw.wd = o.weight_decay;
  return p;
}

void epoch_callback(bool train, ggml_opt_context_t, ggml_opt_dataset_t, ggml_opt_result_t result, int64_t, int64_t,
                    int64_t) {
  State* st = g_state;
  if (!train || st == nullptr) return;
  ++st->step;
  st->tokens_done += static_cast<std::uint64_t>(st->n_ctx);
  if (st->progress != nullptr) {
    double loss = 0, unc = 0;
    ggml_opt_result_loss(result, &loss, &unc);
    st->progress->update(st->tokens_done, fmt::format("step {}/{} loss {:.4f} lr {:.2e}", st->step, st->steps_total,
                                                      loss, lr_at(*st->opts, st->step, st->steps_total)));
  }
}

struct ModelFree {
  void operator()(llama_model* m) const { llama_model_free(m); }
};

llama_model_ptr load_for_training(const std::filesystem::path& path) {
  llm::init_llama_once();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.load_mode = LLAMA_LOAD_MODE_NONE;  // no mmap: the optimizer writes the weights in place
  mp.lazy_mode = LLAMA_LAZY_MODE_OFF;
  mp.use_extra_bufts = false;
  llama_model_ptr m(llama_model_load_from_file(path.c_str(), mp));
  if (!m) throw IoError("llama.cpp could not load " + path.string() + " (run with LRGD_LLAMA_LOG=1 for details)");
  return m;
}

llama_context_ptr make_ctx(llama_model* model, const TrainOptions& o, ggml_backend_sched_eval_callback cb, void* ud) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_batch = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_ubatch = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_seq_max = 1;
  cp.n_threads = o.n_threads;
  cp.n_threads_batch = o.n_threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.no_perf = true;
  cp.cb_eval = cb;
  cp.cb_eval_user_data = ud;
  llama_context_ptr ctx(llama_init_from_model(model, cp));
  if (!ctx) throw Error("llama.cpp could not create a training context");
  return ctx;
}

void decode_or_throw(llama_context* ctx, const std::vector<llama_token>& tokens, bool all_logits = false) {
  llama_batch b = llama_batch_init(static_cast<std::int32_t>(tokens.size()), 0, 1);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    b.token[i] = tokens[i];
    b.pos[i] = static_cast<llama_pos>(i);
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = all_logits || i + 1 == tokens.size();
  }
  b.n_tokens = static_cast<std::int32_t>(tokens.size());
  const int rc = llama_decode(ctx, b);
  llama_batch_free(b);
  if (rc != 0) throw Error("llama_decode failed (" + std::to_string(rc) + ")");
}

Tensors read_weights(const State& st, const detail::Shapes& shapes) {
  Tensors out;
  for (const auto& [name, ne] : detail::tensor_layout(shapes)) {
    const ggml_tensor* t = st.weights.at(name);
    Tensor w;
    w.ne = ne;
    w.data.resize(static_cast<std::size_t>(ggml_nelements(t)));
    ggml_backend_tensor_get(t, w.data.data(), 0, ggml_nbytes(t));
    out.emplace_back(name, std::move(w));
  }
  return out;
}

detail::ModelMeta meta_of(const data::Dataset& ds, const TrainOptions& o, std::int64_t step, const std::string& fp) {
  detail::ModelMeta m;
  m.name = "lrgd-items-" + (ds.name.empty() ? std::string("data") : ds.name);
  m.dataset = ds.name;
  m.data_hash = ds.content_hash;
  m.n_items = ds.n_items();
  m.seed = o.seed;
  m.epochs = o.epochs;
  m.step = step;
  m.fingerprint = fp;
  return m;
}

std::string step_dir_name(std::int64_t step) { return fmt::format("step-{:09}", step); }

// The latest complete checkpoint of `dir` (its step), or -1.
std::int64_t latest_checkpoint(const std::filesystem::path& dir) {
  std::ifstream in(dir / "latest");
  std::string name;
  if (!(in >> name)) return -1;
  if (name.rfind("step-", 0) != 0) return -1;
  if (!std::filesystem::is_regular_file(dir / name / "model.gguf") ||
      !std::filesystem::is_regular_file(dir / name / "state.gguf"))
    return -1;
  // Written by save_checkpoint as step-<9 digits>; anything else is a damaged file.
  const std::string digits = name.substr(5);
  if (digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw InputError((dir / "latest").string(), 1, "step", "'" + name + "' is not a checkpoint name (step-NNNNNNNNN)");
  return std::stoll(digits);
}

void save_checkpoint(const std::filesystem::path& dir, const State& st, const data::Dataset& ds, const TrainOptions& o,
                     const detail::Shapes& shapes, const std::string& fp) {
  const auto sub = dir / step_dir_name(st.step);
  std::filesystem::create_directories(sub);
  detail::write_model(sub / "model.gguf", o, shapes, meta_of(ds, o, st.step, fp), read_weights(st, shapes));
  Tensors moments;
  for (const auto& [name, mv] : st.moments) {
    for (int k = 0; k < 2; ++k) {
      const ggml_tensor* t = k == 0 ? mv.m : mv.v;
      Tensor x;
      for (int d = 0; d < ggml_n_dims(t); ++d) x.ne.push_back(t->ne[d]);
      x.data.resize(static_cast<std::size_t>(ggml_nelements(t)));
      ggml_backend_tensor_get(t, x.data.data(), 0, ggml_nbytes(t));
      moments.emplace_back((k == 0 ? "m." : "v.") + name, std::move(x));
    }
  }
  detail::write_state(sub / "state.gguf", {{"lrgd.train.step", st.step}}, {{"lrgd.train.fingerprint", fp}}, moments);
  // The pointer file is replaced last: a kill before this line leaves the previous checkpoint.
  {
    std::ofstream out(dir / "latest.tmp", std::ios::trunc);
    out << step_dir_name(st.step) << "\n";
    if (!out) throw IoError("cannot write " + (dir / "latest.tmp").string());
  }
  std::filesystem::rename(dir / "latest.tmp", dir / "latest");
  // Keep only this checkpoint.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step-", 0) == 0 && n != step_dir_name(st.step))
      std::filesystem::remove_all(e.path());
  }
}

}  // namespace

std::vector<std::vector<std::int32_t>> epoch_examples(const data::Dataset& ds, const TrainOptions& o, int epoch) {
  std::size_t n_users = ds.n_users();
  if (o.max_users != 0) n_users = std::min(n_users, o.max_users);
  std::vector<data::UserIndex> order(n_users);
  for (std::size_t u = 0; u < n_users; ++u) order[u] = static_cast<data::UserIndex>(u);
  Rng rng = Rng::derive(o.seed, "train/order", static_cast<std::uint64_t>(epoch));
  rng.shuffle(std::span<data::UserIndex>(order));
  item_model::LayoutOptions layout;
  layout.max_history = o.max_history;
  layout.max_demo_history = o.max_history;
  std::vector<std::vector<std::int32_t>> out;
  out.reserve(n_users);
  for (auto u : order) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(u)];
    if (seq.size() <= o.holdout) continue;
    const std::span<const data::ItemIndex> train(seq.data(), seq.size() - o.holdout);
    const auto history = train.first(train.size() - 1);
    const data::ItemIndex target = train.back();
    std::vector<item_model::Demonstration> demos;
    Rng drng =
        Rng::derive(o.seed, "train/demo", (static_cast<std::uint64_t>(epoch) << 32) | static_cast<std::uint32_t>(u));
    if (history.size() >= 2 && drng.uniform01() < o.demo_prob) {
      // An earlier window of this user and the item that followed it: history[..c), history[c].
      const std::size_t c = 1 + static_cast<std::size_t>(drng.uniform(history.size() - 1));
      item_model::Demonstration d;
      d.history.assign(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(c));
      d.next = history[c];
      demos.push_back(std::move(d));
    }
    auto ex = item_model::example_tokens(history, target, demos, layout);
    if (ex.size() + 1 > static_cast<std::size_t>(o.n_ctx)) ex.erase(ex.begin(), ex.end() - (o.n_ctx - 1));
    out.push_back(std::move(ex));
  }
  return out;
}

std::vector<std::vector<std::int32_t>> pack_contexts(const std::vector<std::vector<std::int32_t>>& examples,
                                                     int n_ctx) {
  const auto cap = static_cast<std::size_t>(n_ctx);
  std::vector<std::vector<std::int32_t>> out;
  std::vector<std::int32_t> cur;
  cur.reserve(cap);
  auto flush = [&] {
    if (cur.empty()) return;
    cur.resize(cap, item_model::kPadToken);
    out.push_back(std::move(cur));
    cur = {};
    cur.reserve(cap);
  };
  for (const auto& ex : examples) {
    if (ex.size() + 1 > cap) throw std::invalid_argument("pack_contexts: example longer than the context");
    if (cur.size() + ex.size() + 1 > cap) flush();  // keep at least one pad at the end
    cur.insert(cur.end(), ex.begin(), ex.end());
  }
  flush();
  return out;
}

std::int64_t write_initial_model(const data::Dataset& ds, const TrainOptions& o, const std::filesystem::path& out) {
  validate(o, ds);
  const auto shapes = detail::shapes_of(o, ds.n_items());
  Tensors tensors;
  std::int64_t n_params = 0;
  for (const auto& [name, ne] : detail::tensor_layout(shapes)) {
    Tensor t;
    t.ne = ne;
    std::int64_t n = 1;
    for (auto d : ne) n *= d;
    n_params += n;
    t.data.resize(static_cast<std::size_t>(n));
    if (ne.size() == 1) {
      std::fill(t.data.begin(), t.data.end(), 1.0f);  // RMSNorm weights
    } else {
      Rng rng = Rng::derive(o.seed, "train/init/" + name);
      for (auto& v : t.data) v = static_cast<float>(rng.normal()) * o.init_std;
    }
    tensors.emplace_back(name, std::move(t));
  }
  detail::write_model(out, o, shapes, meta_of(ds, o, 0, fingerprint(o, ds)), tensors);
  return n_params;
}

TrainReport train_item_model(const data::Dataset& ds, const std::filesystem::path& out, const TrainOptions& o) {
  validate(o, ds);
  const auto t_start = std::chrono::steady_clock::now();
  const auto shapes = detail::shapes_of(o, ds.n_items());
  const std::string fp = fingerprint(o, ds);
  TrainReport rep;
  rep.path = out;
  rep.n_vocab = static_cast<std::int32_t>(shapes.n_vocab);
  rep.uniform_loss = std::log(static_cast<double>(shapes.n_vocab));

  // The whole schedule up front: contexts of every epoch, in order.
  std::vector<std::vector<std::vector<std::int32_t>>> contexts(static_cast<std::size_t>(o.epochs));
  std::vector<std::int64_t> epoch_start(static_cast<std::size_t>(o.epochs) + 1, 0);
  for (int e = 0; e < o.epochs; ++e) {
    const auto ex = epoch_examples(ds, o, e);
    if (e == 0) {
      for (const auto& x : ex) rep.tokens_per_epoch += x.size();
      if (!ex.empty()) rep.probe_tokens.assign(ex.front().begin(), ex.front().end() - 1);
    }
    contexts[static_cast<std::size_t>(e)] = pack_contexts(ex, o.n_ctx);
    rep.contexts_per_epoch.push_back(static_cast<std::int64_t>(contexts[static_cast<std::size_t>(e)].size()));
    epoch_start[static_cast<std::size_t>(e) + 1] =
        epoch_start[static_cast<std::size_t>(e)] + rep.contexts_per_epoch.back();
  }
  rep.steps_total = epoch_start.back();
  if (rep.steps_total == 0) throw OptionError("--data", "no user has a training history");
  {
    // Unigram floor: entropy of the label distribution (next tokens of epoch 0, pads included).
    std::vector<std::uint64_t> counts(static_cast<std::size_t>(shapes.n_vocab), 0);
    std::uint64_t n = 0;
    for (const auto& c : contexts[0])
      for (std::size_t i = 1; i < c.size(); ++i, ++n) counts[static_cast<std::size_t>(c[i])]++;
    for (auto k : counts)
      if (k > 0) {
        const double p = static_cast<double>(k) / static_cast<double>(n);
        rep.unigram_loss -= p * std::log(p);
      }
  }

  const std::filesystem::path ckdir =
      o.checkpoint_dir.empty() ? std::filesystem::path(out.string() + ".ckpt") : o.checkpoint_dir;
  std::filesystem::create_directories(ckdir);
  State st;
  st.opts = &o;
  st.steps_total = rep.steps_total;
  st.n_ctx = o.n_ctx;
  for (const auto& [name, ne] : detail::tensor_layout(shapes)) st.wanted.insert(name);

  std::filesystem::path model_file = ckdir / "init.gguf";
  const std::int64_t resume_step = o.resume ? latest_checkpoint(ckdir) : -1;
  if (resume_step >= 0) {
    const auto sub = ckdir / step_dir_name(resume_step);
    auto state = detail::read_state(sub / "state.gguf");
    if (state.strings["lrgd.train.fingerprint"] != fp)
      throw OptionError("--checkpoint-dir", "the checkpoint in " + ckdir.string() +
                                                " was made with other data or options (use --no-resume to start over)");
    st.step = state.ints.at("lrgd.train.step");
    for (auto& [name, t] : state.tensors) {
      if (name.rfind("m.", 0) == 0) st.pending_m[name.substr(2)] = std::move(t);
      if (name.rfind("v.", 0) == 0) st.pending_v[name.substr(2)] = std::move(t);
    }
    model_file = sub / "model.gguf";
    rep.resumed_from_step = st.step;
  } else {
    rep.n_params = write_initial_model(ds, o, model_file);
  }

  llama_model_ptr model = load_for_training(model_file);
  rep.n_params = static_cast<std::int64_t>(llama_model_n_params(model.get()));
  llama_context_ptr ctx = make_ctx(model.get(), o, eval_callback, &st);
  // One decode first: it sets the thread count and the eval callback on the scheduler that
  // the training path then uses, and lets us find the weight tensors (token_embd among them).
  decode_or_throw(ctx.get(), {item_model::kQueryToken, item_model::kNextToken});
  llama_memory_clear(llama_get_memory(ctx.get()), true);
  for (const auto& name : st.wanted)
    if (st.weights.count(name) == 0) throw Error("training: weight " + name + " not found in the graph");

  llama_opt_params lp{};
  lp.n_ctx_train = static_cast<std::uint32_t>(o.n_ctx);
  lp.param_filter = llama_opt_param_filter_all;
  lp.param_filter_ud = nullptr;
  lp.get_opt_pars = optimizer_params;
  lp.get_opt_pars_ud = &st;
  lp.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  llama_opt_init(ctx.get(), model.get(), lp);
  // llama.cpp never marks token_embd trainable (FIXME in llama_set_param): in a tied model
  // that would freeze both the input embeddings and the output layer.
  if (o.train_token_embd) ggml_set_param(st.weights.at("token_embd.weight"));
  st.phase = Phase::Train;

  const std::int64_t stop_at = o.stop_after_steps > 0 ? std::min(o.stop_after_steps, rep.steps_total) : rep.steps_total;
  Progress progress(
      "tokens",
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, stop_at - st.step)) * static_cast<std::uint64_t>(o.n_ctx),
      o.progress);
  st.progress = &progress;
  g_state = &st;
  const auto t_train = std::chrono::steady_clock::now();
  const std::int64_t first_step = st.step;
  std::vector<std::int32_t> labels(static_cast<std::size_t>(o.n_ctx));
  double curve_sum = 0;
  std::int64_t curve_n = 0;
  std::map<int, EpochStats> per_epoch;
  try {
    while (st.step < stop_at) {
      int e = 0;
      while (epoch_start[static_cast<std::size_t>(e) + 1] <= st.step) ++e;
      const std::int64_t next_ckpt = (st.step / o.checkpoint_every + 1) * o.checkpoint_every;
      const std::int64_t end = std::min({next_ckpt, epoch_start[static_cast<std::size_t>(e) + 1], stop_at});
      const std::int64_t n = end - st.step;
      ggml_opt_dataset_t dset =
          ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, o.n_ctx, o.n_ctx, n, /*ndata_shard=*/1);
      for (std::int64_t i = 0; i < n; ++i) {
        const auto& c = contexts[static_cast<std::size_t>(e)]
                                [static_cast<std::size_t>(st.step + i - epoch_start[static_cast<std::size_t>(e)])];
        for (std::size_t p = 0; p < c.size(); ++p) labels[p] = p + 1 < c.size() ? c[p + 1] : item_model::kPadToken;
        const std::size_t bytes = c.size() * sizeof(std::int32_t);
        ggml_backend_tensor_set(ggml_opt_dataset_data(dset), c.data(), static_cast<std::size_t>(i) * bytes, bytes);
        ggml_backend_tensor_set(ggml_opt_dataset_labels(dset), labels.data(), static_cast<std::size_t>(i) * bytes,
                                bytes);
      }
      ggml_opt_result_t result = ggml_opt_result_init();
      llama_opt_epoch(ctx.get(), dset, result, nullptr, n, epoch_callback, nullptr);
      double loss = 0, unc = 0;
      ggml_opt_result_loss(result, &loss, &unc);
      ggml_opt_result_free(result);
      ggml_opt_dataset_free(dset);
      if (!std::isfinite(loss)) throw Error("training diverged (loss " + std::to_string(loss) + ")");
      auto& es = per_epoch[e];
      es.epoch = e;
      es.loss += loss * static_cast<double>(n);
      es.steps += n;
      curve_sum += loss * static_cast<double>(n);
      curve_n += n;
      const bool boundary =
          st.step % o.checkpoint_every == 0 || st.step == epoch_start[static_cast<std::size_t>(e) + 1];
      if (boundary || st.step == stop_at) {
        rep.loss_curve.emplace_back(st.step, curve_sum / static_cast<double>(curve_n));
        curve_sum = 0;
        curve_n = 0;
        // A stop between checkpoints behaves like a kill: nothing is saved.
        if (boundary && st.step < rep.steps_total) save_checkpoint(ckdir, st, ds, o, shapes, fp);
      }
    }
  } catch (...) {
    g_state = nullptr;
    throw;
  }
  g_state = nullptr;
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_train).count();
  rep.steps_run = st.step - first_step;
  rep.tokens_per_s = train_s > 0 ? static_cast<double>(rep.steps_run) * o.n_ctx / train_s : 0;
  for (auto& [e, es] : per_epoch) {
    if (es.steps > 0) es.loss /= static_cast<double>(es.steps);
    rep.epochs.push_back(es);
  }
  progress.finish(fmt::format("steps {} ({} this run)", st.step, rep.steps_run));
  rep.finished = st.step >= rep.steps_total;
  if (!rep.finished) {
    rep.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return rep;
  }

  // The in-training model's logits on a probe prompt, in a fresh inference context.
  if (!rep.probe_tokens.empty()) {
    if (rep.probe_tokens.size() > static_cast<std::size_t>(o.n_ctx))
      rep.probe_tokens.resize(static_cast<std::size_t>(o.n_ctx));
    llama_context_ptr pctx = make_ctx(model.get(), o, nullptr, nullptr);
    // Logits at every position, as llm::reference_logits computes them (same kernels).
    decode_or_throw(pctx.get(), rep.probe_tokens, true);
    const float* lg = llama_get_logits_ith(pctx.get(), -1);
    rep.probe_logits.assign(lg, lg + shapes.n_vocab);
  }
  detail::write_model(out, o, shapes, meta_of(ds, o, st.step, fp), read_weights(st, shapes));
  ctx.reset();
  model.reset();
  if (!o.keep_checkpoints) std::filesystem::remove_all(ckdir);
  rep.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return rep;
}

}  // namespace lrgd::train
