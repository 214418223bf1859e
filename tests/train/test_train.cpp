// Training item models with llama.cpp's training API: loss falls, the gradient-reset
// workaround is needed to overfit, saved models score like the in-training model, and a
// killed run resumes to bitwise-equal weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <span>

#include "../../src/train/gguf_io.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/item_model.h"
#include "lrgd/llama_model.h"
#include "lrgd/llama_training.h"
#include "lrgd/rng.h"
#include "lrgd/train.h"

namespace fs = std::filesystem;
using lrgd::train::TrainOptions;

namespace {

// n_users random sequences over n_items items (memorisation only: nothing generalises).
lrgd::data::Dataset random_dataset(std::size_t n_users, std::size_t n_items, std::size_t len, std::uint64_t seed) {
  lrgd::data::Dataset ds;
  ds.name = "synthetic";
  for (std::size_t i = 0; i < n_items; ++i)
    ds.items.push_back({std::to_string(i), "item " + std::to_string(i), {}, {}, {}});
  lrgd::Rng rng(seed);
  for (std::size_t u = 0; u < n_users; ++u) {
    ds.user_ids.push_back(std::to_string(u));
    std::vector<lrgd::data::ItemIndex> s;
    for (std::size_t k = 0; k < len; ++k) s.push_back(static_cast<lrgd::data::ItemIndex>(rng.uniform(n_items)));
    ds.sequences.push_back(std::move(s));
  }
  ds.content_hash = "synthetic-" + std::to_string(seed);
  return ds;
}

TrainOptions tiny() {
  TrainOptions o;
  o.n_layer = 1;
  o.n_embd = 32;
  o.n_head = 2;
  o.n_head_kv = 1;
  o.n_ctx = 256;
  o.epochs = 1;
  o.lr = 1e-2f;
  o.warmup_steps = 0;
  o.n_threads = 1;  // tiny models run fastest on one thread (and the suite runs tests in parallel)
  o.progress = false;
  o.checkpoint_every = 1000;
  o.average_epochs = 1;  // the written model is the final one (TrainAverage tests averaging)
  return o;
}

fs::path tmp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lrgd_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Train, LossFallsInAFewSteps) {
  auto ds = random_dataset(300, 200, 10, 1);
  auto o = tiny();
  o.epochs = 2;
  o.checkpoint_every = 2;
  auto dir = tmp_dir("few");
  auto rep = lrgd::train::train_item_model(ds, dir / "m.gguf", o);
  ASSERT_TRUE(rep.finished);
  ASSERT_GE(rep.loss_curve.size(), 3u);
  EXPECT_LT(rep.loss_curve.back().second, rep.loss_curve.front().second - 0.5)
      << "first " << rep.loss_curve.front().second << " last " << rep.loss_curve.back().second;
  EXPECT_FALSE(fs::exists(dir / "m.gguf.ckpt"));  // checkpoints removed after success
  fs::remove_all(dir);
}

// A few hundred sequences: with the gradient reset the model memorises them (loss far
// below the unigram level); llama.cpp's path as shipped (gradients summed over all past
// steps) stays near it.
TEST(Train, OverfitsOnlyWithGradientReset) {
  auto ds = random_dataset(200, 1000, 12, 2);
  auto o = tiny();
  o.epochs = 30;
  o.lr = 1e-2f;
  o.demo_prob = 0;
  auto dir = tmp_dir("overfit");
  auto fixed = lrgd::train::train_item_model(ds, dir / "fixed.gguf", o);
  o.reset_gradients = false;
  o.epochs = 15;  // as shipped, the loss is stuck long before
  auto broken = lrgd::train::train_item_model(ds, dir / "broken.gguf", o);
  const double f = fixed.epochs.back().loss, b = broken.epochs.back().loss;
  std::printf("uniform %.3f unigram %.3f first epoch %.3f | fixed final %.3f | broken final %.3f\n", fixed.uniform_loss,
              fixed.unigram_loss, fixed.epochs.front().loss, f, b);
  EXPECT_LT(f, 0.5 * fixed.unigram_loss);
  EXPECT_GT(b, 0.8 * fixed.unigram_loss);
  fs::remove_all(dir);
}

TEST(Train, SavedModelScoresLikeTheTrainingModel) {
  auto ds = random_dataset(200, 100, 8, 3);
  auto o = tiny();
  o.epochs = 2;
  auto dir = tmp_dir("save");
  auto rep = lrgd::train::train_item_model(ds, dir / "m.gguf", o);
  const auto model = lrgd::llm::Model::open(dir / "m.gguf");
  const auto& info = model->info();
  EXPECT_FALSE(info.has_text_vocab);
  EXPECT_EQ(info.n_vocab, lrgd::item_model::vocab_size(ds.n_items()));
  EXPECT_EQ(info.arch, "llama");
  ASSERT_FALSE(rep.probe_tokens.empty());
  lrgd::llm::LoadOptions lo;
  lo.n_threads = o.n_threads;
  lo.kv_f32 = true;
  auto all = lrgd::llm::reference_logits(*model, rep.probe_tokens, lo);
  const std::size_t nv = static_cast<std::size_t>(info.n_vocab);
  ASSERT_EQ(all.size(), rep.probe_tokens.size() * nv);
  std::vector<float> last(all.end() - static_cast<std::ptrdiff_t>(nv), all.end());
  ASSERT_EQ(last.size(), rep.probe_logits.size());
  for (std::size_t i = 0; i < nv; ++i) ASSERT_EQ(last[i], rep.probe_logits[i]) << "token " << i;
  fs::remove_all(dir);
}

TEST(Train, KilledRunResumesToTheSameWeights) {
  auto ds = random_dataset(400, 150, 10, 4);
  auto o = tiny();
  o.epochs = 2;
  o.checkpoint_every = 3;
  o.lr = 5e-3f;
  o.warmup_steps = 4;
  auto dir = tmp_dir("resume");
  auto full = lrgd::train::train_item_model(ds, dir / "full.gguf", o);
  ASSERT_TRUE(full.finished);
  ASSERT_GE(full.steps_total, 12);

  auto o2 = o;
  o2.checkpoint_dir = dir / "ck";
  o2.stop_after_steps = 7;  // "killed" after step 7: the last checkpoint is step 6
  auto part = lrgd::train::train_item_model(ds, dir / "resumed.gguf", o2);
  EXPECT_FALSE(part.finished);
  EXPECT_FALSE(fs::exists(dir / "resumed.gguf"));
  o2.stop_after_steps = 0;
  auto rest = lrgd::train::train_item_model(ds, dir / "resumed.gguf", o2);
  ASSERT_TRUE(rest.finished);
  EXPECT_EQ(rest.resumed_from_step, 6);
  EXPECT_EQ(rest.steps_run, full.steps_total - 6);

  auto a = lrgd::train::detail::read_state(dir / "full.gguf");
  auto b = lrgd::train::detail::read_state(dir / "resumed.gguf");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_EQ(b.tensors.count(name), 1u) << name;
    ASSERT_EQ(t.data, b.tensors.at(name).data) << name;
  }
  EXPECT_EQ(lrgd::sha256_file(dir / "full.gguf"), lrgd::sha256_file(dir / "resumed.gguf"));
  ASSERT_EQ(full.probe_logits, rest.probe_logits);

  fs::remove_all(dir);
}

TEST(Train, ResumeRefusesOtherOptions) {
  auto ds = random_dataset(200, 100, 8, 5);
  auto o = tiny();
  o.epochs = 2;
  o.checkpoint_every = 2;
  o.stop_after_steps = 3;
  auto dir = tmp_dir("refuse");
  o.checkpoint_dir = dir / "ck";
  (void)lrgd::train::train_item_model(ds, dir / "m.gguf", o);
  o.lr = 1e-3f;
  o.stop_after_steps = 0;
  EXPECT_THROW((void)lrgd::train::train_item_model(ds, dir / "m.gguf", o), lrgd::OptionError);
  // A damaged `latest` pointer names its file, not the bare word "stoll".
  std::string name;
  std::ifstream(o.checkpoint_dir / "latest") >> name;
  ASSERT_EQ(name.rfind("step-", 0), 0u);
  fs::copy(o.checkpoint_dir / name, o.checkpoint_dir / "step-x1", fs::copy_options::recursive);
  std::ofstream(o.checkpoint_dir / "latest") << "step-x1\n";
  o.lr = tiny().lr;
  o.resume = true;
  try {
    (void)lrgd::train::train_item_model(ds, dir / "m.gguf", o);
    ADD_FAILURE() << "no error";
  } catch (const lrgd::InputError& e) {
    EXPECT_EQ(e.file(), (o.checkpoint_dir / "latest").string());
    EXPECT_EQ(e.field(), "step");
  }
  fs::remove_all(dir);
}

// --- Sampled softmax (issue 18) ---

TEST(TrainSampled, RowsAreTheLabelsThenDistinctUniformDraws) {
  const std::int32_t n_vocab = 1000;
  const std::vector<std::int32_t> labels = {5, 7, 5, 999, 0, 7};
  std::vector<std::int32_t> rows(64);
  std::vector<float> bias(64);
  lrgd::train::sample_output_rows(42, 3, n_vocab, labels, rows, bias);
  EXPECT_EQ((std::vector<std::int32_t>(rows.begin(), rows.begin() + 4)), (std::vector<std::int32_t>{5, 7, 999, 0}));
  std::set<std::int32_t> seen(rows.begin(), rows.end());
  EXPECT_EQ(seen.size(), rows.size());  // distinct
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(bias[i], 0.0f);
  for (std::size_t i = 4; i < rows.size(); ++i) {
    EXPECT_GE(rows[i], 0);
    EXPECT_LT(rows[i], n_vocab);
    EXPECT_FLOAT_EQ(bias[i], static_cast<float>(std::log((1000.0 - 4) / (64.0 - 4))));
  }
  // The same seed and step draw alike (resume); another step draws otherwise.
  std::vector<std::int32_t> again(64), other(64);
  std::vector<float> b2(64);
  lrgd::train::sample_output_rows(42, 3, n_vocab, labels, again, b2);
  lrgd::train::sample_output_rows(42, 4, n_vocab, labels, other, b2);
  EXPECT_EQ(rows, again);
  EXPECT_NE(rows, other);
  // Uniform: over many steps every non-label token is drawn about equally often.
  std::vector<int> count(n_vocab, 0);
  const int steps = 2000;
  for (int step = 0; step < steps; ++step) {
    lrgd::train::sample_output_rows(1, step, n_vocab, labels, rows, bias);
    for (std::size_t i = 4; i < rows.size(); ++i) ++count[static_cast<std::size_t>(rows[i])];
  }
  const double expected = steps * 60.0 / 996.0;  // about 120 per token
  for (std::int32_t t = 0; t < n_vocab; ++t) {
    if (t == 5 || t == 7 || t == 999 || t == 0) {
      EXPECT_EQ(count[static_cast<std::size_t>(t)], 0);
    } else {
      EXPECT_NEAR(count[static_cast<std::size_t>(t)], expected, 6 * std::sqrt(expected)) << "token " << t;
    }
  }
  // Too few rows for the labels is an error, not an overflow.
  std::vector<std::int32_t> two(2);
  std::vector<float> tb(2);
  EXPECT_THROW(lrgd::train::sample_output_rows(1, 0, n_vocab, labels, two, tb), lrgd::Error);
}

TEST(TrainSampled, RefusesTooFewRows) {
  auto ds = random_dataset(50, 800, 8, 6);
  auto o = tiny();
  o.sampled_outputs = o.n_ctx;  // a step's 256 targets could fill every row
  auto dir = tmp_dir("sampled_refuse");
  EXPECT_THROW((void)lrgd::train::train_item_model(ds, dir / "m.gguf", o), lrgd::OptionError);
  fs::remove_all(dir);
}

namespace {

// A training session on a fresh seeded model of `ds` (the first epoch's contexts in `contexts`).
struct SessionFixture {
  fs::path model;
  std::vector<std::vector<std::int32_t>> contexts;
  std::int32_t n_vocab = 0;
};

SessionFixture session_fixture(const lrgd::data::Dataset& ds, const TrainOptions& o, const fs::path& dir) {
  SessionFixture f;
  f.model = dir / "init.gguf";
  (void)lrgd::train::write_initial_model(ds, o, f.model);
  f.contexts = lrgd::train::pack_contexts(lrgd::train::epoch_examples(ds, o, 0), o.n_ctx);
  f.n_vocab = static_cast<std::int32_t>(lrgd::item_model::vocab_size(ds.n_items()));
  return f;
}

lrgd::llm::TrainingOptions session_options(const TrainOptions& o, float lr) {
  lrgd::llm::TrainingOptions to;
  to.n_ctx = o.n_ctx;
  to.n_threads = o.n_threads;
  to.lr = [lr](std::int64_t) { return lr; };
  to.weight_names = {"token_embd.weight"};
  to.warmup_tokens = {lrgd::item_model::kQueryToken, lrgd::item_model::kNextToken};
  return to;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    d = std::max(d, static_cast<double>(std::abs(a[i] - b[i])));
  return d;
}

std::vector<const std::vector<std::int32_t>*> refs(const std::vector<std::vector<std::int32_t>>& v, std::size_t n) {
  std::vector<const std::vector<std::int32_t>*> out;
  for (std::size_t i = 0; i < std::min(n, v.size()); ++i) out.push_back(&v[i]);
  return out;
}

}  // namespace

// Reference against fast path: the patched llama.cpp's sampled softmax over every row (in
// another order, bias 0) is the full softmax, so both steps give the same losses and weights.
TEST(TrainSampled, EveryRowSampledIsTheFullSoftmax) {
  auto ds = random_dataset(300, 300, 10, 7);
  auto o = tiny();
  auto dir = tmp_dir("sampled_all");
  const auto f = session_fixture(ds, o, dir);
  ASSERT_GE(f.contexts.size(), 4u);
  const auto batch = refs(f.contexts, 4);

  auto full_opts = session_options(o, 1e-2f);
  lrgd::llm::TrainingSession full(f.model, full_opts);
  std::vector<double> full_losses;
  (void)full.train(batch, lrgd::item_model::kPadToken, [&](std::int64_t, double l) { full_losses.push_back(l); });

  auto all_opts = session_options(o, 1e-2f);
  all_opts.n_sampled_outputs = f.n_vocab;
  all_opts.sample_outputs = [n = f.n_vocab](std::int64_t, std::span<const std::int32_t> labels,
                                            std::span<std::int32_t> rows, std::span<float> bias) {
    std::vector<bool> is_label(static_cast<std::size_t>(n), false);
    std::size_t k = 0;
    for (auto l : labels)
      if (!is_label[static_cast<std::size_t>(l)]) {
        is_label[static_cast<std::size_t>(l)] = true;
        rows[k++] = l;
      }
    for (std::int32_t t = n - 1; t >= 0; --t)
      if (!is_label[static_cast<std::size_t>(t)]) rows[k++] = t;
    std::fill(bias.begin(), bias.end(), 0.0f);
  };
  lrgd::llm::TrainingSession all(f.model, all_opts);
  std::vector<double> all_losses;
  (void)all.train(batch, lrgd::item_model::kPadToken, [&](std::int64_t, double l) { all_losses.push_back(l); });

  ASSERT_EQ(full_losses.size(), all_losses.size());
  for (std::size_t i = 0; i < full_losses.size(); ++i) EXPECT_NEAR(full_losses[i], all_losses[i], 1e-4) << "step " << i;
  const auto a = full.weights().at(0).second.data, b = all.weights().at(0).second.data;
  const double max_diff = max_abs_diff(a, b);
  // The weights moved (the comparison is not of two untouched models), both alike: AdamW's
  // normalisation turns the other summation order into differences far below the steps.
  lrgd::llm::TrainingSession untouched(f.model, session_options(o, 0.0f));
  const auto c = untouched.weights().at(0).second.data;
  const double moved = max_abs_diff(a, c);
  EXPECT_GT(moved, 1e-2);
  EXPECT_LT(max_diff, 0.01 * moved);
  fs::remove_all(dir);
}

// The drawn rows' weight makes the sampled loss an estimate of the full one; without it the
// loss would sit near ln(rows) instead of near the full softmax's.
TEST(TrainSampled, SampledLossEstimatesTheFullLoss) {
  auto ds = random_dataset(400, 3000, 12, 8);
  auto o = tiny();
  o.epochs = 2;
  o.sampled_outputs = 400;
  auto dir = tmp_dir("sampled_estimate");
  const auto rep = lrgd::train::train_item_model(ds, dir / "m.gguf", o);
  ASSERT_TRUE(rep.finished);
  const auto contexts = lrgd::train::pack_contexts(lrgd::train::epoch_examples(ds, o, 0), o.n_ctx);
  const double full = lrgd::train::item_model_loss(dir / "m.gguf", contexts, o.n_ctx, o.n_threads);
  // The sampled loss of the same model on the same contexts (steps of 1e-12 leave it as it is;
  // ggml's AdamW refuses 0).
  auto so = session_options(o, 1e-12f);
  const auto n_vocab = static_cast<std::int32_t>(lrgd::item_model::vocab_size(ds.n_items()));
  so.n_sampled_outputs = o.sampled_outputs;
  so.sample_outputs = [n_vocab](std::int64_t step, std::span<const std::int32_t> labels, std::span<std::int32_t> rows,
                                std::span<float> bias) {
    lrgd::train::sample_output_rows(9, step, n_vocab, labels, rows, bias);
  };
  lrgd::llm::TrainingSession session(dir / "m.gguf", so);
  const double sampled = session.train(refs(contexts, contexts.size()), lrgd::item_model::kPadToken);
  std::printf("full %.4f sampled %.4f (uniform %.4f, ln rows %.4f)\n", full, sampled, rep.uniform_loss,
              std::log(400.0));
  EXPECT_LT(full, rep.uniform_loss - 0.3);  // the model learnt something
  EXPECT_NEAR(sampled, full, 0.05 * full);
  fs::remove_all(dir);
}

TEST(TrainSampled, KilledRunResumesToTheSameWeights) {
  auto ds = random_dataset(400, 800, 10, 9);
  auto o = tiny();
  o.epochs = 2;
  o.checkpoint_every = 3;
  o.sampled_outputs = 300;
  auto dir = tmp_dir("sampled_resume");
  auto full = lrgd::train::train_item_model(ds, dir / "full.gguf", o);
  ASSERT_TRUE(full.finished);
  ASSERT_GE(full.steps_total, 8);
  auto o2 = o;
  o2.checkpoint_dir = dir / "ck";
  o2.stop_after_steps = 4;
  (void)lrgd::train::train_item_model(ds, dir / "resumed.gguf", o2);
  o2.stop_after_steps = 0;
  auto rest = lrgd::train::train_item_model(ds, dir / "resumed.gguf", o2);
  ASSERT_TRUE(rest.finished);
  EXPECT_EQ(rest.resumed_from_step, 3);
  EXPECT_EQ(lrgd::sha256_file(dir / "full.gguf"), lrgd::sha256_file(dir / "resumed.gguf"));
  // Another sample size is another run: its checkpoint is refused.
  o2.sampled_outputs = 400;
  o2.stop_after_steps = 0;
  o2.checkpoint_dir = dir / "ck2";
  o2.stop_after_steps = 4;
  (void)lrgd::train::train_item_model(ds, dir / "other.gguf", o2);
  o2.sampled_outputs = 300;
  o2.stop_after_steps = 0;
  EXPECT_THROW((void)lrgd::train::train_item_model(ds, dir / "other.gguf", o2), lrgd::OptionError);
  fs::remove_all(dir);
}

// Input noise replaces item tokens only, at the asked rate, the same for the same (seed, step).
TEST(TrainNoise, ReplacesItemsOnlyAtTheAskedRate) {
  const std::size_t n_items = 1000;
  std::vector<std::int32_t> clean;
  lrgd::Rng rng(11);
  for (int i = 0; i < 40000; ++i)
    clean.push_back(i % 5 == 0
                        ? static_cast<std::int32_t>(rng.uniform(lrgd::item_model::kFirstItemToken))
                        : lrgd::item_model::item_token(static_cast<lrgd::data::ItemIndex>(rng.uniform(n_items))));
  auto a = clean, b = clean, c = clean, zero = clean;
  lrgd::train::corrupt_item_inputs(42, 7, 0.3, n_items, a);
  lrgd::train::corrupt_item_inputs(42, 7, 0.3, n_items, b);
  lrgd::train::corrupt_item_inputs(42, 8, 0.3, n_items, c);
  lrgd::train::corrupt_item_inputs(42, 7, 0.0, n_items, zero);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(zero, clean);
  std::size_t items = 0, changed = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    if (clean[i] < lrgd::item_model::kFirstItemToken) {
      ASSERT_EQ(a[i], clean[i]) << "special token changed at " << i;
      continue;
    }
    ASSERT_GE(a[i], lrgd::item_model::kFirstItemToken);
    ASSERT_LT(a[i], lrgd::item_model::vocab_size(n_items));
    ++items;
    changed += a[i] != clean[i];
  }
  // A replacement draws the same item with chance 1/n_items; 32,000 items: sd of the rate 0.0026.
  const double rate = static_cast<double>(changed) / static_cast<double>(items);
  EXPECT_NEAR(rate, 0.3 * (1.0 - 1.0 / n_items), 0.012) << changed << " of " << items;
}

// The corrupted inputs reach the graph, the labels stay the clean next tokens, and evaluate()
// never corrupts.
TEST(TrainNoise, InputsChangeLabelsDoNot) {
  auto ds = random_dataset(300, 300, 10, 9);
  auto o = tiny();
  auto dir = tmp_dir("noise");
  const auto f = session_fixture(ds, o, dir);
  ASSERT_GE(f.contexts.size(), 3u);
  const auto batch = refs(f.contexts, 3);
  const auto one_step = [&](const std::function<void(std::int64_t, std::span<std::int32_t>)>& corrupt, double* eval) {
    auto to = session_options(o, 1e-2f);
    to.corrupt_inputs = corrupt;
    lrgd::llm::TrainingSession s(f.model, to);
    *eval = s.evaluate(batch, lrgd::item_model::kPadToken);
    std::vector<double> losses;
    (void)s.train(batch, lrgd::item_model::kPadToken, [&](std::int64_t, double l) { losses.push_back(l); });
    return losses;
  };
  double e_clean = 0, e_same = 0, e_noisy = 0;
  std::vector<std::int64_t> steps_seen;
  const auto clean = one_step({}, &e_clean);
  const auto same = one_step([&](std::int64_t step, std::span<std::int32_t>) { steps_seen.push_back(step); }, &e_same);
  // Every item becomes item 0. Labels taken from the corrupted inputs would be item 0 nearly
  // everywhere, as when training on contexts corrupted beforehand, and the loss would fall fast.
  const auto to_item0 = [](std::span<std::int32_t> in) {
    for (auto& t : in)
      if (t >= lrgd::item_model::kFirstItemToken) t = lrgd::item_model::item_token(0);
  };
  const auto noisy = one_step([&](std::int64_t, std::span<std::int32_t> in) { to_item0(in); }, &e_noisy);
  auto corrupted_contexts = f.contexts;
  for (auto& c : corrupted_contexts) to_item0(c);
  auto to = session_options(o, 1e-2f);
  lrgd::llm::TrainingSession s(f.model, to);
  std::vector<double> corrupted_labels;
  (void)s.train(refs(corrupted_contexts, 3), lrgd::item_model::kPadToken,
                [&](std::int64_t, double l) { corrupted_labels.push_back(l); });
  EXPECT_EQ(steps_seen, (std::vector<std::int64_t>{0, 1, 2}));
  ASSERT_EQ(clean.size(), 3u);
  ASSERT_EQ(same.size(), 3u);
  ASSERT_EQ(noisy.size(), 3u);
  ASSERT_EQ(corrupted_labels.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(clean[i], same[i]) << "step " << i;
  EXPECT_NE(noisy.back(), clean.back());  // the corrupted inputs reached the graph
  EXPECT_GT(noisy.back(), corrupted_labels.back() + 0.5)
      << "clean " << clean.back() << " noisy " << noisy.back() << " corrupted labels " << corrupted_labels.back();
  EXPECT_EQ(e_clean, e_same);
  EXPECT_EQ(e_clean, e_noisy);
  fs::remove_all(dir);
}

// The written model is the mean of the weights at the last `average_epochs` epoch ends
// (reference: the plain run's checkpoint at the end of epoch 2 and its final weights), and a
// run killed inside the averaged window resumes to the same file.
TEST(TrainAverage, WrittenModelIsTheMeanOfTheLastEpochEnds) {
  auto ds = random_dataset(300, 200, 10, 12);
  auto o = tiny();
  o.epochs = 3;
  o.lr = 5e-3f;
  std::int64_t end_of_epoch_2 = 0;
  for (int e = 0; e < 2; ++e)
    end_of_epoch_2 +=
        static_cast<std::int64_t>(lrgd::train::pack_contexts(lrgd::train::epoch_examples(ds, o, e), o.n_ctx).size());
  auto dir = tmp_dir("average");

  auto plain = o;
  plain.checkpoint_dir = dir / "plain.ck";
  plain.stop_after_steps = end_of_epoch_2;  // an epoch end: its checkpoint stays
  ASSERT_FALSE(lrgd::train::train_item_model(ds, dir / "plain.gguf", plain).finished);
  char step_dir[32];
  std::snprintf(step_dir, sizeof step_dir, "step-%09lld", static_cast<long long>(end_of_epoch_2));
  const auto epoch2 = lrgd::train::detail::read_state(plain.checkpoint_dir / step_dir / "model.gguf");
  plain.stop_after_steps = 0;
  const auto plain_rep = lrgd::train::train_item_model(ds, dir / "plain.gguf", plain);
  ASSERT_TRUE(plain_rep.finished);
  EXPECT_EQ(plain_rep.averaged_epochs, 1);
  const auto epoch3 = lrgd::train::detail::read_state(dir / "plain.gguf");

  auto avg = o;
  avg.average_epochs = 2;
  const auto avg_rep = lrgd::train::train_item_model(ds, dir / "avg.gguf", avg);
  EXPECT_EQ(avg_rep.averaged_epochs, 2);
  const auto averaged = lrgd::train::detail::read_state(dir / "avg.gguf");
  ASSERT_EQ(averaged.tensors.size(), epoch3.tensors.size());
  double moved = 0;
  for (const auto& [name, t] : averaged.tensors) {
    const auto& a = epoch2.tensors.at(name).data;
    const auto& b = epoch3.tensors.at(name).data;
    ASSERT_EQ(t.data.size(), a.size()) << name;
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(t.data[i], 0.5f * (a[i] + b[i]), 1e-6f) << name << " [" << i << "]";
      moved = std::max(moved, static_cast<double>(std::abs(a[i] - b[i])));
    }
  }
  EXPECT_GT(moved, 1e-3);  // epoch 3 moved the weights: the mean is not either end

  auto killed = avg;
  killed.checkpoint_dir = dir / "killed.ck";
  killed.stop_after_steps = end_of_epoch_2 + 2;  // inside epoch 3: the last checkpoint is epoch 2's end
  ASSERT_FALSE(lrgd::train::train_item_model(ds, dir / "killed.gguf", killed).finished);
  killed.stop_after_steps = 0;
  const auto resumed = lrgd::train::train_item_model(ds, dir / "killed.gguf", killed);
  ASSERT_TRUE(resumed.finished);
  EXPECT_EQ(resumed.resumed_from_step, end_of_epoch_2);
  EXPECT_EQ(lrgd::sha256_file(dir / "avg.gguf"), lrgd::sha256_file(dir / "killed.gguf"));

  avg.average_epochs = 0;
  EXPECT_THROW(lrgd::train::train_item_model(ds, dir / "bad.gguf", avg), lrgd::OptionError);
  fs::remove_all(dir);
}

// The split of a packed context: a demonstration stays with the query it precedes, the next
// <demo> or <query> after a query starts the next example, the pads are one more sequence.
TEST(TrainSequences, ExampleSequencesSplitAtEachExample) {
  using namespace lrgd::item_model;
  const std::int32_t a = item_token(0), b = item_token(1), c = item_token(2);
  const std::vector<std::int32_t> tokens = {
      kDemoToken,  a,          b,          kNextToken,  c,          kQueryToken, a,          kNextToken, b,
      kQueryToken, c,          kNextToken, a,           kDemoToken, b,           kNextToken, c,          kDemoToken,
      a,           kNextToken, b,          kQueryToken, c,          kNextToken,  a,          kPadToken,  kPadToken};
  std::vector<std::int32_t> seq(tokens.size()), pos(tokens.size());
  lrgd::train::example_sequences(tokens, seq, pos, 256);
  EXPECT_EQ(seq, (std::vector<std::int32_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2,
                                            2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3}));
  EXPECT_EQ(pos, (std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 0,  1,  2, 3, 0,
                                            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1}));
  // Past the limit of sequences: a clear error, not a batch llama.cpp rejects.
  EXPECT_THROW(lrgd::train::example_sequences(tokens, seq, pos, 3), lrgd::Error);
  // The training data's own contexts split into their examples, each starting at position 0.
  auto ds = random_dataset(200, 100, 8, 13);
  auto o = tiny();
  const auto examples = lrgd::train::epoch_examples(ds, o, 0);
  const auto contexts = lrgd::train::pack_contexts(examples, o.n_ctx);
  std::size_t seen = 0;
  for (const auto& ctx : contexts) {
    seq.assign(ctx.size(), -1);
    pos.assign(ctx.size(), -1);
    lrgd::train::example_sequences(ctx, seq, pos, 256);
    std::size_t start = 0;
    for (std::size_t i = 1; i <= ctx.size(); ++i)
      if (i == ctx.size() || seq[i] != seq[i - 1]) {
        for (std::size_t k = start; k < i; ++k) EXPECT_EQ(pos[k], static_cast<std::int32_t>(k - start));
        if (ctx[start] != kPadToken) {
          ASSERT_LT(seen, examples.size());
          EXPECT_EQ(std::vector<std::int32_t>(ctx.begin() + static_cast<std::ptrdiff_t>(start),
                                              ctx.begin() + static_cast<std::ptrdiff_t>(i)),
                    examples[seen]);
          ++seen;
        }
        start = i;
      }
  }
  EXPECT_EQ(seen, examples.size());
}

// With separate examples a token's loss does not depend on the example packed before it: the
// change of the context's loss when the first example changes is the same whichever example
// follows. One sequence per context (the old way) lets the second example see the first.
TEST(TrainSequences, AnExampleNoLongerSeesTheExampleBeforeIt) {
  using namespace lrgd::item_model;
  auto ds = random_dataset(300, 60, 10, 14);
  auto o = tiny();
  o.epochs = 3;
  o.demo_prob = 0;
  auto dir = tmp_dir("sequences");
  ASSERT_TRUE(lrgd::train::train_item_model(ds, dir / "m.gguf", o).finished);  // attention worth the name
  const auto example = [](std::initializer_list<int> items) {
    std::vector<std::int32_t> e{kQueryToken};
    for (int i : items) e.push_back(item_token(static_cast<lrgd::data::ItemIndex>(i)));
    e.insert(e.end() - 1, kNextToken);
    return e;
  };
  const auto first = example({1, 2, 3, 4, 5, 6}), first_other = example({7, 8, 9, 10, 11, 12});
  const auto second = example({13, 14, 15, 16}), second_other = example({17, 18, 19, 20});
  const auto context = [&](const std::vector<std::int32_t>& x, const std::vector<std::int32_t>& y) {
    std::vector<std::int32_t> c = x;
    c.insert(c.end(), y.begin(), y.end());
    c.resize(static_cast<std::size_t>(o.n_ctx), kPadToken);
    return std::vector<std::vector<std::int32_t>>{c};
  };
  const auto loss = [&](bool separate, const std::vector<std::vector<std::int32_t>>& contexts) {
    auto to = session_options(o, 1e-12f);
    if (separate)
      to.token_sequences = [](std::span<const std::int32_t> t, std::span<std::int32_t> s, std::span<std::int32_t> p) {
        lrgd::train::example_sequences(t, s, p, lrgd::llm::kMaxSequences);
      };
    lrgd::llm::TrainingSession session(dir / "m.gguf", to);
    return session.evaluate(refs(contexts, 1), kPadToken);
  };
  for (const bool separate : {true, false}) {
    const double change_before_second =
        loss(separate, context(first, second)) - loss(separate, context(first_other, second));
    const double change_before_other =
        loss(separate, context(first, second_other)) - loss(separate, context(first_other, second_other));
    const double interaction = std::abs(change_before_second - change_before_other);
    std::printf("separate %d: %.7f vs %.7f (interaction %.2e)\n", separate, change_before_second, change_before_other,
                interaction);
    EXPECT_GT(std::abs(change_before_second), 1e-3);  // the first example matters to the context's loss
    if (separate)
      EXPECT_LT(interaction, 2e-6);
    else
      EXPECT_GT(interaction, 3e-5);  // the test can tell: one sequence gives about 1.5e-4
  }
  // item_model_loss scores examples as prompts are scored: separately.
  const auto packed = context(first, second);
  const double separate = loss(true, packed);
  EXPECT_NEAR(lrgd::train::item_model_loss(dir / "m.gguf", packed, o.n_ctx, o.n_threads), separate, 1e-6);
  fs::remove_all(dir);
}
