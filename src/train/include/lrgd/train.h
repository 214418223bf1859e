// Training small item-token llama models on a dataset's training histories with
// llama.cpp's own training API (llama_opt_init / llama_opt_epoch), written as GGUF and
// usable through the embedded backend like any model. Layout: lrgd/item_model.h.
// Workarounds for llama.cpp's training path, checkpoints and exact resume: docs/train.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "lrgd/dataset.h"
#include "lrgd/item_model.h"

namespace lrgd::train {

struct TrainOptions {
  // Model (llama architecture: RoPE, GQA, SwiGLU, RMSNorm; output tied to token_embd by default).
  int n_layer = 2;
  int n_embd = 128;  // 128 ranks better than 64 on Games at 1.4x the time (docs/train.md)
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 0;  // 0: about 8/3 * n_embd rounded up to a multiple of 32
  bool tied = true;
  int n_ctx = 256;  // tokens per training context (one optimizer step); a multiple of 256
  float init_std = 0.02f;
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;

  // Data: each user's sequence minus its last `holdout` items (validation and test targets).
  std::size_t holdout = 2;
  std::size_t max_history = 20;  // query items kept before the target
  double demo_prob = 0.5;        // chance that an example carries one demonstration
  std::size_t max_users = 0;     // 0: all users (else the first max_users by index)

  // Optimisation: AdamW, linear warm-up then cosine decay to lr * lr_min_ratio.
  // 8 epochs at 6e-3 with the sampled softmax, the last 4 epoch ends averaged (docs/train.md).
  int epochs = 8;
  float lr = 6e-3f;
  float lr_min_ratio = 0.1f;
  std::int64_t warmup_steps = 100;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  std::uint64_t seed = 42;
  int n_threads = 2;  // training and probe threads (results are bitwise reproducible per thread count)
  // Matrix products through ggml's BLAS backend (OpenBLAS) where llama.cpp was built with it;
  // false keeps them on ggml's own CPU kernels (the path before BLAS; same model up to rounding).
  bool blas = true;
  // Sampled softmax: each step's loss over its distinct targets and uniformly drawn other
  // tokens, `sampled_outputs` rows in all, each drawn row weighted to stand for the tokens not
  // drawn (docs/train.md). 0, or a value not below the vocabulary: the full softmax.
  int sampled_outputs = 1024;
  // Input noise: each item token of a training context's inputs is replaced, with this
  // probability, by a uniformly drawn item; the labels stay the true next items. A denoising
  // regulariser in place of dropout, which ggml lacks (docs/train.md). 0: off.
  double input_noise = 0.0;
  // Each example of a packed context is its own sequence: its tokens attend only to its own
  // earlier tokens and its positions start at 0, as a prompt does at inference. false: the
  // context is one sequence and examples see the unrelated users packed before them (the
  // behaviour before; docs/train.md).
  bool separate_examples = true;
  // Weight averaging: the model written is the mean of the weights at the ends of the last
  // `average_epochs` epochs (the last one included; at most `epochs`). 1: the final weights.
  // The running mean is part of every checkpoint, so a resumed run writes the same model.
  int average_epochs = 4;

  // Checkpoints: every `checkpoint_every` steps and at every epoch end, into checkpoint_dir
  // (empty: "<out>.ckpt"). A run finds the latest checkpoint there and resumes from it
  // (resume = false starts over). The directory is removed after a successful run unless
  // keep_checkpoints.
  std::filesystem::path checkpoint_dir;
  std::int64_t checkpoint_every = 500;
  bool resume = true;
  bool keep_checkpoints = false;
  // Stop (as if killed) after this many global steps, leaving checkpoints behind; 0: never.
  // For tests and for splitting a long run.
  std::int64_t stop_after_steps = 0;

  // llama.cpp workarounds (docs/train.md). Turning them off reproduces the upstream behaviour.
  bool reset_gradients = true;   // zero each AdamW step's gradient accumulator after it runs
  bool train_token_embd = true;  // make token_embd.weight trainable (upstream FIXME skips it)

  bool progress = true;  // progress lines on stderr
};

struct EpochStats {
  int epoch = 0;
  double loss = 0;  // mean training loss (per token, nats) over the epoch's steps run in this process
  std::int64_t steps = 0;
};

struct TrainReport {
  std::filesystem::path path;
  std::int64_t n_params = 0;
  std::int32_t n_vocab = 0;
  std::int64_t steps_total = 0;         // optimizer steps of the whole schedule
  std::int64_t steps_run = 0;           // steps run in this process
  std::int64_t resumed_from_step = -1;  // -1: started from scratch
  bool finished = false;                // false: stopped by stop_after_steps
  std::vector<std::int64_t> contexts_per_epoch;
  std::uint64_t tokens_per_epoch = 0;  // of the first epoch (non-pad tokens)
  std::vector<EpochStats> epochs;
  // Loss curve: (global step, mean loss of the steps since the previous point), one point per checkpoint interval.
  std::vector<std::pair<std::int64_t, double>> loss_curve;
  double uniform_loss = 0;  // ln(n_vocab)
  double unigram_loss = 0;  // entropy of the training token distribution (a bigram-free floor)
  double wall_s = 0;
  double tokens_per_s = 0;  // context tokens (pads included) per second of training
  bool blas = false;        // the training context ran matrix products through BLAS
  int averaged_epochs = 1;  // epoch ends whose weights the written model averages
  // Probe: logits of the last position of `probe_tokens`, computed on the in-memory trained
  // model in a fresh context (f32 KV) right before the file was written (the final weights:
  // the written model itself when averaged_epochs == 1).
  std::vector<std::int32_t> probe_tokens;
  std::vector<float> probe_logits;
};

// The number of epoch ends the written model averages: average_epochs within [1, epochs].
int averaged_epochs(const TrainOptions& options);

// The training examples of one epoch, in training order (users shuffled with
// Rng::derive(seed, "train/order", epoch); demonstrations drawn per user and epoch).
std::vector<std::vector<std::int32_t>> epoch_examples(const data::Dataset& dataset, const TrainOptions& options,
                                                      int epoch);

// Packs examples into contexts of n_ctx tokens (an example never straddles two contexts;
// the rest of a context is kPadToken; every context ends with at least one pad).
std::vector<std::vector<std::int32_t>> pack_contexts(const std::vector<std::vector<std::int32_t>>& examples, int n_ctx);

// Splits a packed context into its examples (TrainOptions::separate_examples): an example
// starts at a <demo> or <query> token once the current example has had its <query>, and the
// pads at the end form one more sequence. Fills each token's sequence id (0, 1, ... in
// context order) and position within its sequence. Throws Error past `max_sequences`.
void example_sequences(std::span<const std::int32_t> tokens, std::span<std::int32_t> seq_ids,
                       std::span<std::int32_t> positions, int max_sequences);

// Writes the initial (seeded random) item model. Returns the number of parameters.
std::int64_t write_initial_model(const data::Dataset& dataset, const TrainOptions& options,
                                 const std::filesystem::path& out);

// The rows of one sampled-softmax step (TrainOptions::sampled_outputs = rows.size()): the
// step's distinct labels first, then distinct other tokens drawn uniformly from a stream of
// (seed, step); bias 0 for a label row, log((V - u) / (S - u)) for a drawn one (u labels, S
// rows, V = n_vocab), so the sampled denominator is an unbiased estimate of the full one.
// Needs rows.size() >= the number of distinct labels and <= n_vocab.
void sample_output_rows(std::uint64_t seed, std::int64_t step, std::int32_t n_vocab,
                        std::span<const std::int32_t> labels, std::span<std::int32_t> rows, std::span<float> bias);

// Input noise (TrainOptions::input_noise) for the context of optimizer step `step`: each item
// token is replaced with probability p by an item drawn uniformly from n_items, from a stream
// of (seed, step); special tokens stay.
void corrupt_item_inputs(std::uint64_t seed, std::int64_t step, double p, std::size_t n_items,
                         std::span<std::int32_t> inputs);

// The mean full-softmax loss (nats per token) of an item model on packed contexts
// (pack_contexts), without training: how sampled-softmax and full-softmax runs compare.
double item_model_loss(const std::filesystem::path& model, const std::vector<std::vector<std::int32_t>>& contexts,
                       int n_ctx, int n_threads);

// Trains and writes `out`. Throws OptionError for impossible options, IoError for files.
TrainReport train_item_model(const data::Dataset& dataset, const std::filesystem::path& out,
                             const TrainOptions& options = {});

}  // namespace lrgd::train
