// TrainingSession: llama_opt_init / llama_opt_epoch with AdamW state that survives a resume
// (lrgd/llama_training.h).
#include <ggml-backend.h>
#include <ggml-opt.h>
#include <ggml.h>

#include <cmath>
#include <set>

#include "llama_common.h"
#include "lrgd/error.h"
#include "lrgd/llama_training.h"

namespace lrgd::llm {

namespace {

enum class Phase { Collect, Train };

struct MomentPair {
  ggml_tensor* m = nullptr;
  ggml_tensor* v = nullptr;
};

Tensor read_tensor(const ggml_tensor* t) {
  Tensor x;
  for (int d = 0; d < ggml_n_dims(t); ++d) x.ne.push_back(t->ne[d]);
  x.data.resize(static_cast<std::size_t>(ggml_nelements(t)));
  ggml_backend_tensor_get(t, x.data.data(), 0, ggml_nbytes(t));
  return x;
}

llama_model_ptr load_for_training(const std::filesystem::path& path) {
  init_llama_once();
  if (!std::filesystem::is_regular_file(path)) throw IoError("model file not found: " + path.string());
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.load_mode = LLAMA_LOAD_MODE_NONE;  // no mmap: the optimizer writes the weights in place
  mp.lazy_mode = LLAMA_LAZY_MODE_OFF;
  mp.use_extra_bufts = false;
  llama_model_ptr m;
  {
    const auto lock = detail::registry_lock();
    m.reset(llama_model_load_from_file(path.c_str(), mp));
  }
  if (!m) throw IoError("llama.cpp could not load " + path.string() + " (run with LRGD_LLAMA_LOG=1 for details)");
  return m;
}

llama_context_ptr make_training_context(llama_model* model, const TrainingOptions& o,
                                        ggml_backend_sched_eval_callback cb, void* ud) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_batch = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_ubatch = static_cast<std::uint32_t>(o.n_ctx);
  cp.n_seq_max = 1;
  // Sequences within one context (TrainingOptions::token_sequences) need a KV cache that
  // tracks any sequence id in one buffer.
  cp.kv_unified = static_cast<bool>(o.token_sequences);
  cp.n_threads = o.n_threads;
  cp.n_threads_batch = o.n_threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.no_perf = true;
  cp.cb_eval = cb;
  cp.cb_eval_user_data = ud;
  const detail::ContextBackends backends(o.blas);
  llama_context_ptr ctx(llama_init_from_model(model, cp));
  if (!ctx) throw Error("llama.cpp could not create a training context");
  return ctx;
}

void decode_or_throw(llama_context* ctx, const std::vector<llama_token>& tokens, bool all_logits) {
  const int rc = llama_decode(ctx, *detail::sequence_batch(tokens, 0, all_logits));
  if (rc != 0) throw Error("llama_decode failed (" + std::to_string(rc) + ")");
}

}  // namespace

bool blas_available() { return detail::blas_backend() != nullptr; }

// Shared by the graph callback (cb_eval), the optimizer-parameter callback and the epoch callback.
struct TrainingSession::State {
  TrainingOptions opts;
  llama_model_ptr model;
  llama_context_ptr ctx;
  Phase phase = Phase::Collect;
  std::set<std::string> wanted;                        // weight names to find in the graph
  std::map<std::string, ggml_tensor*> weights;         // found in the collect pass
  std::map<std::string, MomentPair> moments;           // AdamW m, v per weight (seen after steps)
  std::map<std::string, Tensor> pending_m, pending_v;  // restored on the next step (resume)
  std::int64_t step = 0;                               // global optimizer steps done
  const std::function<void(std::int64_t, double)>* on_step = nullptr;
};

namespace {

TrainingSession::State* g_state = nullptr;  // for ggml_opt_epoch_callback, which has no user data

bool eval_callback(ggml_tensor* t, bool ask, void* user_data) {
  auto* st = static_cast<TrainingSession::State*>(user_data);
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
    const auto& o = st->opts;
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
  if (st->opts.reset_gradients) ggml_backend_tensor_memset(t->src[1], 0, 0, ggml_nbytes(t->src[1]));
  return true;
}

ggml_opt_optimizer_params optimizer_params(void* user_data) {
  const auto* st = static_cast<const TrainingSession::State*>(user_data);
  const auto& o = st->opts;
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = o.lr(st->step);
  p.adamw.beta1 = o.beta1;
  p.adamw.beta2 = o.beta2;
  p.adamw.eps = o.eps;
  p.adamw.wd = o.weight_decay;
  return p;
}

void sample_outputs(void* user_data, const llama_token* labels, int32_t n_labels, llama_token* rows, float* bias,
                    int32_t n_rows) {
  const auto* st = static_cast<const TrainingSession::State*>(user_data);
  const auto n = static_cast<std::size_t>(n_rows);
  st->opts.sample_outputs(st->step, {labels, static_cast<std::size_t>(n_labels)}, {rows, n}, {bias, n});
}

void token_sequences(void* user_data, const llama_token* tokens, int32_t n_tokens, llama_seq_id* seq_ids,
                     llama_pos* positions) {
  const auto* st = static_cast<const TrainingSession::State*>(user_data);
  const auto n = static_cast<std::size_t>(n_tokens);
  static_assert(sizeof(llama_seq_id) == sizeof(std::int32_t) && sizeof(llama_pos) == sizeof(std::int32_t));
  std::span<std::int32_t> seq(reinterpret_cast<std::int32_t*>(seq_ids), n);
  std::span<std::int32_t> pos(reinterpret_cast<std::int32_t*>(positions), n);
  st->opts.token_sequences({tokens, n}, seq, pos);
  // A bad split would make llama.cpp reject the batch without saying why: check it here.
  for (std::size_t i = 0; i < n; ++i) {
    const bool starts = i == 0 || seq[i] != seq[i - 1];
    if (seq[i] < 0 || seq[i] >= kMaxSequences || (starts ? pos[i] != 0 : pos[i] != pos[i - 1] + 1) ||
        (starts && i > 0 && seq[i] <= seq[i - 1]))
      throw Error("training: token_sequences gave token " + std::to_string(i) + " sequence " + std::to_string(seq[i]) +
                  " at position " + std::to_string(pos[i]) + " (ids must increase from run to run, below " +
                  std::to_string(kMaxSequences) + ", positions count from 0 in each run)");
  }
}

void epoch_callback(bool train, ggml_opt_context_t, ggml_opt_dataset_t, ggml_opt_result_t result, int64_t, int64_t,
                    int64_t) {
  TrainingSession::State* st = g_state;
  if (!train || st == nullptr) return;
  ++st->step;
  if (st->on_step != nullptr && *st->on_step) {
    double loss = 0, unc = 0;
    ggml_opt_result_loss(result, &loss, &unc);
    (*st->on_step)(st->step, loss);
  }
}

}  // namespace

TrainingSession::TrainingSession(const std::filesystem::path& model_file, const TrainingOptions& options,
                                 std::int64_t first_step, std::map<std::string, Tensor> moments)
    : state_(std::make_unique<State>()) {
  if (!options.lr) throw Error("training: no learning-rate schedule (TrainingOptions::lr)");
  State& st = *state_;
  st.opts = options;
  st.step = first_step;
  st.wanted.insert(options.weight_names.begin(), options.weight_names.end());
  for (auto& [name, t] : moments) {
    if (name.rfind("m.", 0) == 0) st.pending_m[name.substr(2)] = std::move(t);
    if (name.rfind("v.", 0) == 0) st.pending_v[name.substr(2)] = std::move(t);
  }
  st.model = load_for_training(model_file);
  st.ctx = make_training_context(st.model.get(), options, eval_callback, &st);
  // One decode first: it sets the thread count and the eval callback on the scheduler that
  // the training path then uses, and lets us find the weight tensors (token_embd among them).
  decode_or_throw(st.ctx.get(), options.warmup_tokens, false);
  llama_memory_clear(llama_get_memory(st.ctx.get()), true);
  for (const auto& name : st.wanted)
    if (st.weights.count(name) == 0) throw Error("training: weight " + name + " not found in the graph");

  llama_opt_params lp{};
  lp.n_ctx_train = static_cast<std::uint32_t>(options.n_ctx);
  lp.param_filter = llama_opt_param_filter_all;
  lp.param_filter_ud = nullptr;
  lp.get_opt_pars = optimizer_params;
  lp.get_opt_pars_ud = &st;
  lp.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  if (options.n_sampled_outputs > 0) {
    if (!options.sample_outputs) throw Error("training: n_sampled_outputs without a sample_outputs function");
    lp.n_sampled_outputs = static_cast<std::uint32_t>(options.n_sampled_outputs);
    lp.sample_outputs = sample_outputs;
    lp.sample_outputs_ud = &st;
  }
  if (options.token_sequences) {
    lp.token_sequences = token_sequences;
    lp.token_sequences_ud = &st;
  }
  llama_opt_init(st.ctx.get(), st.model.get(), lp);
  if (options.train_token_embd) {
    const auto it = st.weights.find("token_embd.weight");
    if (it == st.weights.end()) throw Error("training: token_embd.weight is not among the weights read back");
    ggml_set_param(it->second);
  }
  st.phase = Phase::Train;
}

TrainingSession::~TrainingSession() {
  if (g_state == state_.get()) g_state = nullptr;
  state_->ctx.reset();  // before the model it was made from
}

std::int64_t TrainingSession::n_params() const {
  return static_cast<std::int64_t>(llama_model_n_params(state_->model.get()));
}

std::int64_t TrainingSession::step() const { return state_->step; }

namespace {

// One ggml_opt dataset of whole contexts; labels are the next tokens, the last one pad_label.
// With `corrupt`, context i's inputs are rewritten by corrupt(first_step + i, inputs).
ggml_opt_dataset_t context_dataset(const std::vector<const std::vector<std::int32_t>*>& contexts, int n_ctx,
                                   std::int32_t pad_label,
                                   const std::function<void(std::int64_t, std::span<std::int32_t>)>* corrupt,
                                   std::int64_t first_step) {
  const auto n = static_cast<std::int64_t>(contexts.size());
  ggml_opt_dataset_t dset = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, n_ctx, n_ctx, n, /*ndata_shard=*/1);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n_ctx));
  std::vector<std::int32_t> inputs;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& c = *contexts[static_cast<std::size_t>(i)];
    if (c.size() != static_cast<std::size_t>(n_ctx)) {
      ggml_opt_dataset_free(dset);
      throw Error("training: a context of " + std::to_string(c.size()) + " tokens, not " + std::to_string(n_ctx));
    }
    for (std::size_t p = 0; p < c.size(); ++p) labels[p] = p + 1 < c.size() ? c[p + 1] : pad_label;
    const std::size_t bytes = c.size() * sizeof(std::int32_t);
    const std::int32_t* data = c.data();
    if (corrupt != nullptr && *corrupt) {
      inputs.assign(c.begin(), c.end());
      (*corrupt)(first_step + i, inputs);
      data = inputs.data();
    }
    ggml_backend_tensor_set(ggml_opt_dataset_data(dset), data, static_cast<std::size_t>(i) * bytes, bytes);
    ggml_backend_tensor_set(ggml_opt_dataset_labels(dset), labels.data(), static_cast<std::size_t>(i) * bytes, bytes);
  }
  return dset;
}

}  // namespace

double TrainingSession::train(const std::vector<const std::vector<std::int32_t>*>& contexts, std::int32_t pad_label,
                              const std::function<void(std::int64_t, double)>& on_step) {
  return run_epoch(contexts, pad_label, /*train=*/true, on_step);
}

double TrainingSession::evaluate(const std::vector<const std::vector<std::int32_t>*>& contexts,
                                 std::int32_t pad_label) {
  return run_epoch(contexts, pad_label, /*train=*/false, {});
}

double TrainingSession::run_epoch(const std::vector<const std::vector<std::int32_t>*>& contexts, std::int32_t pad_label,
                                  bool train, const std::function<void(std::int64_t, double)>& on_step) {
  State& st = *state_;
  const auto n = static_cast<std::int64_t>(contexts.size());
  if (n == 0) return 0;
  ggml_opt_dataset_t dset =
      context_dataset(contexts, st.opts.n_ctx, pad_label, train ? &st.opts.corrupt_inputs : nullptr, st.step);
  ggml_opt_result_t result = ggml_opt_result_init();
  st.on_step = &on_step;
  g_state = &st;
  try {
    // idata_split: the contexts before it train, the rest are only evaluated (full softmax).
    llama_opt_epoch(st.ctx.get(), dset, train ? result : nullptr, train ? nullptr : result, train ? n : 0,
                    train ? epoch_callback : nullptr, nullptr);
  } catch (const std::exception& e) {  // the patched llama.cpp refuses a model it cannot sample
    g_state = nullptr;
    st.on_step = nullptr;
    ggml_opt_result_free(result);
    ggml_opt_dataset_free(dset);
    throw Error(std::string("training: ") + e.what());
  }
  g_state = nullptr;
  st.on_step = nullptr;
  double loss = 0, unc = 0;
  ggml_opt_result_loss(result, &loss, &unc);
  ggml_opt_result_free(result);
  ggml_opt_dataset_free(dset);
  if (!std::isfinite(loss)) throw Error("training diverged (loss " + std::to_string(loss) + ")");
  return loss;
}

NamedTensors TrainingSession::weights() const {
  NamedTensors out;
  for (const auto& name : state_->opts.weight_names) out.emplace_back(name, read_tensor(state_->weights.at(name)));
  return out;
}

NamedTensors TrainingSession::moments() const {
  NamedTensors out;
  for (const auto& [name, mv] : state_->moments) {
    out.emplace_back("m." + name, read_tensor(mv.m));
    out.emplace_back("v." + name, read_tensor(mv.v));
  }
  return out;
}

std::vector<float> TrainingSession::last_logits(const std::vector<std::int32_t>& tokens) const {
  TrainingOptions inference = state_->opts;
  inference.blas = false;  // inference contexts keep ggml's kernels (llama_common.cpp)
  llama_context_ptr ctx = make_training_context(state_->model.get(), inference, nullptr, nullptr);
  // Logits at every position, as llm::reference_logits computes them (same kernels).
  decode_or_throw(ctx.get(), tokens, true);
  const float* lg = llama_get_logits_ith(ctx.get(), -1);
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(state_->model.get()));
  return std::vector<float>(lg, lg + n_vocab);
}

}  // namespace lrgd::llm
