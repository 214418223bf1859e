// Training item-token llama models (docs/train.md): the data, the schedule and the
// checkpoints; the optimizer steps run in the engine's TrainingSession (lrgd/llama_training.h).
#include "lrgd/train.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <span>
#include <sstream>

#include "gguf_io.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/llama_training.h"
#include "lrgd/progress.h"
#include "lrgd/rng.h"

namespace lrgd::train {

int averaged_epochs(const TrainOptions& o) { return std::clamp(o.average_epochs, 1, std::max(1, o.epochs)); }

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
  if (o.average_epochs < 1) throw OptionError("--average-epochs", "must be at least 1");
  if (!(o.input_noise >= 0 && o.input_noise < 1)) throw OptionError("--input-noise", "must be in [0, 1)");
  if (o.sampled_outputs != 0 && o.sampled_outputs <= o.n_ctx)
    throw OptionError("--sampled-outputs", "must exceed --ctx (a step's targets are all rows), or be 0");
}

// The running mean of the weights at epoch ends (TrainOptions::average_epochs); in checkpoints
// as "avg.<weight>" tensors and the count "lrgd.train.avg_count".
struct WeightAverage {
  std::int64_t count = 0;
  llm::NamedTensors mean;

  void add(llm::NamedTensors weights) {
    ++count;
    if (count == 1) {
      mean = std::move(weights);
      return;
    }
    const float k = 1.0f / static_cast<float>(count);
    for (std::size_t i = 0; i < mean.size(); ++i) {
      auto& m = mean[i].second.data;
      const auto& w = weights.at(i).second.data;
      for (std::size_t j = 0; j < m.size(); ++j) m[j] += (w[j] - m[j]) * k;
    }
  }
  void save(std::map<std::string, std::int64_t>& ints, llm::NamedTensors& tensors) const {
    ints["lrgd.train.avg_count"] = count;
    for (const auto& [name, t] : mean) tensors.emplace_back("avg." + name, t);
  }
  // Takes the "avg." tensors out of a checkpoint's state (the rest are AdamW's moments).
  void load(const std::map<std::string, std::int64_t>& ints, std::map<std::string, Tensor>& tensors,
            const std::vector<std::string>& names) {
    const auto it = ints.find("lrgd.train.avg_count");
    count = it == ints.end() ? 0 : it->second;
    mean.clear();
    if (count == 0) return;
    for (const auto& name : names) {
      const auto t = tensors.find("avg." + name);
      if (t == tensors.end()) throw Error("checkpoint state lacks avg." + name);
      mean.emplace_back(name, std::move(t->second));
      tensors.erase(t);
    }
  }
};

// Whether the run samples its output rows (fewer rows than the vocabulary).
bool sampled_softmax(const TrainOptions& o, const data::Dataset& ds) {
  return o.sampled_outputs > 0 && o.sampled_outputs < item_model::vocab_size(ds.n_items());
}

// Everything that changes the numbers of a run; a checkpoint from another fingerprint is refused.
std::string fingerprint(const TrainOptions& o, const data::Dataset& ds) {
  std::ostringstream s;
  s << "v1|" << ds.content_hash << '|' << ds.n_items() << '|' << ds.n_users() << '|' << ds.n_interactions() << '|'
    << o.n_layer << '|' << o.n_embd << '|' << o.n_head << '|' << o.n_head_kv << '|' << o.n_ff << '|' << o.tied << '|'
    << o.n_ctx << '|' << o.init_std << '|' << o.rope_theta << '|' << o.rms_eps << '|' << o.holdout << '|'
    << o.max_history << '|' << o.demo_prob << '|' << o.max_users << '|' << o.epochs << '|' << o.lr << '|'
    << o.lr_min_ratio << '|' << o.warmup_steps << '|' << o.beta1 << '|' << o.beta2 << '|' << o.eps << '|'
    << o.weight_decay << '|' << o.seed << '|' << o.n_threads << '|' << o.reset_gradients << '|' << o.train_token_embd
    << (o.blas && llm::blas_available() ? "|blas" : "")  // BLAS sums in another order
    << (sampled_softmax(o, ds) ? "|sampled" + std::to_string(o.sampled_outputs) : "")
    << (o.input_noise > 0 ? "|noise" + std::to_string(o.input_noise) : "")
    << (averaged_epochs(o) > 1 ? "|avg" + std::to_string(averaged_epochs(o)) : "")
    << (o.separate_examples ? "|separate" : "");
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

// The weights of an item model as the file lays them out (names, shapes in file order).
Tensors with_layout(llm::NamedTensors weights, const detail::Shapes& shapes) {
  const auto layout = detail::tensor_layout(shapes);
  Tensors out;
  for (std::size_t i = 0; i < layout.size(); ++i)
    out.emplace_back(layout[i].first, Tensor{layout[i].second, std::move(weights.at(i).second.data)});
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

void save_checkpoint(const std::filesystem::path& dir, const llm::TrainingSession& session, const data::Dataset& ds,
                     const TrainOptions& o, const detail::Shapes& shapes, const std::string& fp,
                     const WeightAverage& average) {
  const std::int64_t step = session.step();
  const auto sub = dir / step_dir_name(step);
  std::filesystem::create_directories(sub);
  detail::write_model(sub / "model.gguf", o, shapes, meta_of(ds, o, step, fp), with_layout(session.weights(), shapes));
  std::map<std::string, std::int64_t> ints{{"lrgd.train.step", step}};
  auto state = session.moments();
  average.save(ints, state);
  detail::write_state(sub / "state.gguf", ints, {{"lrgd.train.fingerprint", fp}}, state);
  // The pointer file is replaced last: a kill before this line leaves the previous checkpoint.
  {
    std::ofstream out(dir / "latest.tmp", std::ios::trunc);
    out << step_dir_name(step) << "\n";
    if (!out) throw IoError("cannot write " + (dir / "latest.tmp").string());
  }
  std::filesystem::rename(dir / "latest.tmp", dir / "latest");
  // Keep only this checkpoint.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step-", 0) == 0 && n != step_dir_name(step)) std::filesystem::remove_all(e.path());
  }
}

void split_examples(std::span<const std::int32_t> tokens, std::span<std::int32_t> seq_ids,
                    std::span<std::int32_t> positions) {
  example_sequences(tokens, seq_ids, positions, llm::kMaxSequences);
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

void example_sequences(std::span<const std::int32_t> tokens, std::span<std::int32_t> seq_ids,
                       std::span<std::int32_t> positions, int max_sequences) {
  if (seq_ids.size() != tokens.size() || positions.size() != tokens.size())
    throw std::invalid_argument("example_sequences: spans of different sizes");
  std::int32_t seq = 0, pos = 0;
  bool had_query = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::int32_t t = tokens[i];
    const bool example_start = (t == item_model::kDemoToken || t == item_model::kQueryToken) && had_query;
    const bool pad_start = t == item_model::kPadToken && i > 0 && tokens[i - 1] != item_model::kPadToken;
    if (example_start || pad_start) {
      ++seq;
      pos = 0;
      had_query = false;
      if (seq >= max_sequences)
        throw Error("a training context holds more than " + std::to_string(max_sequences) +
                    " examples (llama.cpp's limit of sequences): use a shorter --ctx");
    }
    had_query = had_query || t == item_model::kQueryToken;
    seq_ids[i] = seq;
    positions[i] = pos++;
  }
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

void sample_output_rows(std::uint64_t seed, std::int64_t step, std::int32_t n_vocab,
                        std::span<const std::int32_t> labels, std::span<std::int32_t> rows, std::span<float> bias) {
  std::vector<std::uint8_t> is_label(static_cast<std::size_t>(n_vocab), 0);
  std::size_t u = 0;
  for (const std::int32_t l : labels) {
    if (is_label[static_cast<std::size_t>(l)] != 0) continue;
    if (u == rows.size()) throw Error("sampled softmax: more distinct labels than rows");
    is_label[static_cast<std::size_t>(l)] = 1;
    rows[u] = l;
    bias[u] = 0.0f;
    ++u;
  }
  std::vector<std::int32_t> others;
  others.reserve(static_cast<std::size_t>(n_vocab) - u);
  for (std::int32_t t = 0; t < n_vocab; ++t)
    if (is_label[static_cast<std::size_t>(t)] == 0) others.push_back(t);
  const std::size_t drawn = rows.size() - u;
  Rng rng = Rng::derive(seed, "train/sampled-outputs", static_cast<std::uint64_t>(step));
  for (std::size_t i = 0; i < drawn; ++i) {  // partial Fisher-Yates: distinct, uniform
    std::swap(others[i], others[i + static_cast<std::size_t>(rng.uniform(others.size() - i))]);
    rows[u + i] = others[i];
  }
  const float weight =
      drawn > 0 ? static_cast<float>(std::log(static_cast<double>(others.size()) / static_cast<double>(drawn))) : 0.0f;
  std::fill(bias.begin() + static_cast<std::ptrdiff_t>(u), bias.end(), weight);
}

void corrupt_item_inputs(std::uint64_t seed, std::int64_t step, double p, std::size_t n_items,
                         std::span<std::int32_t> inputs) {
  if (p <= 0 || n_items == 0) return;
  Rng rng = Rng::derive(seed, "train/input-noise", static_cast<std::uint64_t>(step));
  for (auto& t : inputs) {
    if (t < item_model::kFirstItemToken) continue;
    if (rng.uniform01() < p) t = item_model::item_token(static_cast<data::ItemIndex>(rng.uniform(n_items)));
  }
}

double item_model_loss(const std::filesystem::path& model, const std::vector<std::vector<std::int32_t>>& contexts,
                       int n_ctx, int n_threads) {
  llm::TrainingOptions to;
  to.n_ctx = n_ctx;
  to.n_threads = n_threads;
  to.lr = [](std::int64_t) { return 0.0f; };  // never stepped
  to.train_token_embd = false;
  to.token_sequences = split_examples;  // each example alone, as a prompt is scored
  to.warmup_tokens = {item_model::kQueryToken, item_model::kNextToken};
  llm::TrainingSession session(model, to);
  std::vector<const std::vector<std::int32_t>*> refs;
  for (const auto& c : contexts) refs.push_back(&c);
  return session.evaluate(refs, item_model::kPadToken);
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
  rep.averaged_epochs = averaged_epochs(o);

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
  std::filesystem::path model_file = ckdir / "init.gguf";
  std::int64_t first_step = 0;
  std::map<std::string, Tensor> moments;
  WeightAverage average;
  std::vector<std::string> weight_names;
  for (const auto& [name, ne] : detail::tensor_layout(shapes)) weight_names.push_back(name);
  const std::int64_t resume_step = o.resume ? latest_checkpoint(ckdir) : -1;
  if (resume_step >= 0) {
    const auto sub = ckdir / step_dir_name(resume_step);
    auto state = detail::read_state(sub / "state.gguf");
    if (state.strings["lrgd.train.fingerprint"] != fp)
      throw OptionError("--checkpoint-dir", "the checkpoint in " + ckdir.string() +
                                                " was made with other data or options (use --no-resume to start over)");
    first_step = state.ints.at("lrgd.train.step");
    average.load(state.ints, state.tensors, weight_names);
    moments = std::move(state.tensors);
    model_file = sub / "model.gguf";
    rep.resumed_from_step = first_step;
  } else {
    rep.n_params = write_initial_model(ds, o, model_file);
  }

  llm::TrainingOptions to;
  to.n_ctx = o.n_ctx;
  to.n_threads = o.n_threads;
  to.beta1 = o.beta1;
  to.beta2 = o.beta2;
  to.eps = o.eps;
  to.weight_decay = o.weight_decay;
  to.lr = [&o, total = rep.steps_total](std::int64_t step) { return lr_at(o, step, total); };
  to.reset_gradients = o.reset_gradients;
  to.train_token_embd = o.train_token_embd;
  to.blas = o.blas;
  if (sampled_softmax(o, ds)) {
    to.n_sampled_outputs = o.sampled_outputs;
    to.sample_outputs = [seed = o.seed, n_vocab = static_cast<std::int32_t>(shapes.n_vocab)](
                            std::int64_t step, std::span<const std::int32_t> labels, std::span<std::int32_t> rows,
                            std::span<float> bias) { sample_output_rows(seed, step, n_vocab, labels, rows, bias); };
  }
  if (o.input_noise > 0) {
    to.corrupt_inputs = [seed = o.seed, p = o.input_noise, n_items = ds.n_items()](std::int64_t step,
                                                                                   std::span<std::int32_t> inputs) {
      corrupt_item_inputs(seed, step, p, n_items, inputs);
    };
  }
  if (o.separate_examples) to.token_sequences = split_examples;
  to.weight_names = weight_names;
  to.warmup_tokens = {item_model::kQueryToken, item_model::kNextToken};
  llm::TrainingSession session(model_file, to, first_step, std::move(moments));
  rep.n_params = session.n_params();

  const std::int64_t stop_at = o.stop_after_steps > 0 ? std::min(o.stop_after_steps, rep.steps_total) : rep.steps_total;
  Progress progress(
      "tokens",
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, stop_at - first_step)) * static_cast<std::uint64_t>(o.n_ctx),
      o.progress);
  std::uint64_t tokens_done = 0;
  const auto on_step = [&](std::int64_t step, double loss) {
    tokens_done += static_cast<std::uint64_t>(o.n_ctx);
    progress.update(tokens_done, fmt::format("step {}/{} loss {:.4f} lr {:.2e}", step, rep.steps_total, loss,
                                             lr_at(o, step, rep.steps_total)));
  };
  const auto t_train = std::chrono::steady_clock::now();
  double curve_sum = 0;
  std::int64_t curve_n = 0;
  std::map<int, EpochStats> per_epoch;
  while (session.step() < stop_at) {
    const std::int64_t step = session.step();
    int e = 0;
    while (epoch_start[static_cast<std::size_t>(e) + 1] <= step) ++e;
    const std::int64_t next_ckpt = (step / o.checkpoint_every + 1) * o.checkpoint_every;
    const std::int64_t end = std::min({next_ckpt, epoch_start[static_cast<std::size_t>(e) + 1], stop_at});
    const std::int64_t n = end - step;
    std::vector<const std::vector<std::int32_t>*> batch;
    for (std::int64_t i = 0; i < n; ++i)
      batch.push_back(&contexts[static_cast<std::size_t>(e)]
                               [static_cast<std::size_t>(step + i - epoch_start[static_cast<std::size_t>(e)])]);
    const double loss = session.train(batch, item_model::kPadToken, on_step);
    auto& es = per_epoch[e];
    es.epoch = e;
    es.loss += loss * static_cast<double>(n);
    es.steps += n;
    curve_sum += loss * static_cast<double>(n);
    curve_n += n;
    const std::int64_t done = session.step();
    const bool epoch_end = done == epoch_start[static_cast<std::size_t>(e) + 1];
    // Epoch ends in the averaged window: e counts from 0, the window is the last n epochs.
    if (epoch_end && rep.averaged_epochs > 1 && e >= o.epochs - rep.averaged_epochs) average.add(session.weights());
    const bool boundary = done % o.checkpoint_every == 0 || epoch_end;
    if (boundary || done == stop_at) {
      rep.loss_curve.emplace_back(done, curve_sum / static_cast<double>(curve_n));
      curve_sum = 0;
      curve_n = 0;
      // A stop between checkpoints behaves like a kill: nothing is saved.
      if (boundary && done < rep.steps_total) save_checkpoint(ckdir, session, ds, o, shapes, fp, average);
    }
  }
  const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_train).count();
  rep.steps_run = session.step() - first_step;
  rep.tokens_per_s = train_s > 0 ? static_cast<double>(rep.steps_run) * o.n_ctx / train_s : 0;
  rep.blas = o.blas && llm::blas_available();
  for (auto& [e, es] : per_epoch) {
    if (es.steps > 0) es.loss /= static_cast<double>(es.steps);
    rep.epochs.push_back(es);
  }
  progress.finish(fmt::format("steps {} ({} this run)", session.step(), rep.steps_run));
  rep.finished = session.step() >= rep.steps_total;
  if (!rep.finished) {
    rep.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return rep;
  }

  // The in-training model's logits on a probe prompt, in a fresh inference context.
  if (!rep.probe_tokens.empty()) {
    if (rep.probe_tokens.size() > static_cast<std::size_t>(o.n_ctx))
      rep.probe_tokens.resize(static_cast<std::size_t>(o.n_ctx));
    rep.probe_logits = session.last_logits(rep.probe_tokens);
  }
  if (rep.averaged_epochs > 1 && average.count != rep.averaged_epochs)
    throw Error("weight average over " + std::to_string(average.count) + " epoch ends, expected " +
                std::to_string(rep.averaged_epochs));
  detail::write_model(out, o, shapes, meta_of(ds, o, session.step(), fp),
                      with_layout(rep.averaged_epochs > 1 ? std::move(average.mean) : session.weights(), shapes));
  if (!o.keep_checkpoints) std::filesystem::remove_all(ckdir);
  rep.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return rep;
}

}  // namespace lrgd::train
