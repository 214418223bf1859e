// Training a GGUF model in place with libllama's training API (llama_opt_init /
// llama_opt_epoch, AdamW): the engine's side of `lrgd model train` (docs/train.md). The
// data, the schedule and the checkpoint files are lrgd_train's; libllama and ggml stay here.
// No llama.h in this header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lrgd/gguf_file.h"

namespace lrgd::llm {

// The f32 tensors of the GGUF files (lrgd/gguf_file.h): weights and optimizer moments go to
// and come from those files as they are.
using Tensor = gguf::Tensor;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct TrainingOptions {
  int n_ctx = 256;  // tokens per context; one optimizer step per context
  int n_threads = 2;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;  // AdamW
  // Learning rate of optimizer step `step` (0-based, counted over the whole run).
  std::function<float(std::int64_t step)> lr;
  // llama.cpp's dynamic-graph training never resets the gradient accumulators between
  // optimizer steps (docs/train.md): true zeroes each weight's accumulator after its step.
  bool reset_gradients = true;
  // llama.cpp never marks token_embd trainable (FIXME in llama_set_param): in a tied model
  // that would freeze both the input embeddings and the output layer.
  bool train_token_embd = true;
  // Matrix products through ggml's BLAS backend (OpenBLAS) where llama.cpp was built with it;
  // false keeps them on ggml's own CPU kernels.
  bool blas = true;
  // Sampled softmax (docs/train.md). With n_sampled_outputs > 0 a step's logits and loss cover
  // only that many rows of the output matrix: sample_outputs(step, labels, rows, bias) fills
  // `rows` (token ids; every label among them, its first occurrence is its row) and `bias`
  // (added to each row's logit) for the step's labels. 0: the whole vocabulary.
  int n_sampled_outputs = 0;
  std::function<void(std::int64_t step, std::span<const std::int32_t> labels, std::span<std::int32_t> rows,
                     std::span<float> bias)>
      sample_outputs;
  // Optional: rewrites the input tokens of the context that step `step` trains on (the
  // labels stay the clean next tokens), e.g. to replace some items by random ones. Not
  // called by evaluate().
  std::function<void(std::int64_t step, std::span<std::int32_t> inputs)> corrupt_inputs;
  // Optional: splits a context into sequences that do not attend to each other. Gets the
  // context's n_ctx input tokens and fills each token's sequence id (0 <= id < kMaxSequences,
  // each sequence one contiguous run) and its position within the sequence (0, 1, 2, ...).
  // Used by train() and evaluate(). Empty: the whole context is one sequence.
  std::function<void(std::span<const std::int32_t> tokens, std::span<std::int32_t> seq_ids,
                     std::span<std::int32_t> positions)>
      token_sequences;
  // Weights to read back (checkpoints, the final model); each must be in the graph.
  std::vector<std::string> weight_names;
  // A short sequence of valid token ids decoded once before training (finds the weights).
  std::vector<std::int32_t> warmup_tokens;
};

// Whether this build's ggml has the BLAS backend (llama.cpp built with GGML_BLAS).
bool blas_available();

// The most sequences one training context can hold (llama.cpp's LLAMA_MAX_SEQ).
inline constexpr int kMaxSequences = 256;

class TrainingSession {
 public:
  // Loads `model_file` for training (no mmap: the optimizer writes the weights in place).
  // `first_step` and the AdamW moments ("m.<weight>", "v.<weight>") continue a run; empty
  // moments start from zero. Throws IoError if the model cannot be loaded, Error if a
  // weight is not in the graph.
  TrainingSession(const std::filesystem::path& model_file, const TrainingOptions& options, std::int64_t first_step = 0,
                  std::map<std::string, Tensor> moments = {});
  ~TrainingSession();
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;

  std::int64_t n_params() const;
  std::int64_t step() const;  // optimizer steps done, over the whole run

  // One optimizer step per context (each of n_ctx tokens; labels are the next tokens, the
  // last one `pad_label`). `on_step(step, running_loss)` after each step. Returns the mean
  // loss; throws Error if it is not finite.
  double train(const std::vector<const std::vector<std::int32_t>*>& contexts, std::int32_t pad_label,
               const std::function<void(std::int64_t step, double loss)>& on_step = {});

  // The mean full-softmax loss over `contexts` (labels as in train), without a step: the
  // measure that sampled and full-softmax training share.
  double evaluate(const std::vector<const std::vector<std::int32_t>*>& contexts, std::int32_t pad_label);

  NamedTensors weights() const;  // options.weight_names, in that order
  NamedTensors moments() const;  // "m.<weight>" and "v.<weight>" of every weight stepped so far
  // The logits of the last position of `tokens` in a fresh inference context (same kernels
  // as llm::reference_logits).
  std::vector<float> last_logits(const std::vector<std::int32_t>& tokens) const;

  struct State;  // libllama's model and context, the optimizer state (training.cpp)

 private:
  double run_epoch(const std::vector<const std::vector<std::int32_t>*>& contexts, std::int32_t pad_label, bool train,
                   const std::function<void(std::int64_t, double)>& on_step);
  std::unique_ptr<State> state_;
};

}  // namespace lrgd::llm
