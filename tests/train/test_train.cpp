// Training item models with llama.cpp's training API: loss falls, the gradient-reset
// workaround is needed to overfit, saved models score like the in-training model, and a
// killed run resumes to bitwise-equal weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../../src/train/gguf_io.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/item_model.h"
#include "lrgd/llama_model.h"
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
