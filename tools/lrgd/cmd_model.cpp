// lrgd model init | info
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"

namespace lrgd::cli {

namespace {

int run_init(const model::ModelInitOptions& o, const std::string& out) {
  const auto r = model::init_model(o, out);
  fmt::print("wrote {} ({} arch, {} vocab tokens from {}, {:.2f}M parameters, {:.1f} MiB)\n", r.path.string(), r.arch,
             r.n_vocab, r.vocab_file, static_cast<double>(r.n_params) / 1e6,
             static_cast<double>(r.file_bytes) / (1024.0 * 1024.0));
  return 0;
}

int run_info(const std::string& path, bool as_json) {
  const auto info = llm::read_model_info(path);
  nlohmann::json j{{"path", path},
                   {"arch", info.arch},
                   {"name", info.name},
                   {"description", info.description},
                   {"n_params", info.n_params},
                   {"n_vocab", info.n_vocab},
                   {"n_ctx_train", info.n_ctx_train},
                   {"n_embd", info.n_embd},
                   {"n_layer", info.n_layer},
                   {"text_vocab", info.has_text_vocab},
                   {"chat_template", !info.chat_template.empty()}};
  if (as_json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    for (auto it = j.begin(); it != j.end(); ++it) fmt::print("{:<14} {}\n", it.key(), it.value().dump());
  }
  return 0;
}

}  // namespace

void add_model_commands(CLI::App& app, Action& action) {
  auto* model = app.add_subcommand("model", "Make, train and inspect GGUF models");
  model->require_subcommand(1);

  auto opts = std::make_shared<model::ModelInitOptions>();
  auto out = std::make_shared<std::string>();
  auto* init = model->add_subcommand("init", "Write a GGUF model with seeded random weights");
  init->add_option("--out,-o", *out, "Output .gguf file")->required();
  init->add_option("--arch", opts->arch, "llama | qwen2 | phi3 | mistral")->capture_default_str();
  init->add_option("--vocab", opts->vocab,
                   "Tokenizer: llama-bpe | qwen2 | phi-3 | llama-spm or a ggml-vocab-*.gguf path "
                   "(default: the architecture's own)");
  init->add_option("--layers", opts->n_layer, "Transformer blocks")->capture_default_str();
  init->add_option("--width", opts->n_embd, "Embedding width")->capture_default_str();
  init->add_option("--heads", opts->n_head, "Attention heads")->capture_default_str();
  init->add_option("--kv-heads", opts->n_head_kv, "Key/value heads (GQA)")->capture_default_str();
  init->add_option("--ff", opts->n_ff, "Feed-forward width (0: about 8/3 * width)")->capture_default_str();
  init->add_option("--ctx", opts->n_ctx, "Context length")->capture_default_str();
  init->add_option("--type", opts->type, "Weight type: f32 | f16 | q8_0")->capture_default_str();
  init->add_flag("--tied", opts->tied, "Share token embedding and output weights");
  init->add_option("--seed", opts->seed, "Seed of the random weights")->capture_default_str();
  init->add_option("--init-std", opts->init_std, "Standard deviation of weights")->capture_default_str();
  init->add_option("--name", opts->name, "general.name written into the file");
  init->callback([&action, opts, out] { action = [opts, out] { return run_init(*opts, *out); }; });

  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto* info = model->add_subcommand("info", "Show what libllama reads from a GGUF model");
  info->add_option("model", *path, "GGUF file")->required();
  info->add_flag("--json", *as_json, "Print JSON");
  info->callback([&action, path, as_json] { action = [path, as_json] { return run_info(*path, *as_json); }; });

  add_train_command(model, action);
}

}  // namespace lrgd::cli
