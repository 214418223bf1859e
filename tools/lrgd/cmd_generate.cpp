// lrgd generate: greedy generation from a GGUF model (the embedded smoke path).
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "cli.h"
#include "lrgd/llama_model.h"

namespace lrgd::cli {

namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt = "Recommend a video game:";
  int n_tokens = 16;
  int n_threads = 0;
};

int run_generate(const GenerateOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto model = llm::Model::open(o.model);
  const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto r = llm::generate_greedy(*model, o.prompt, o.n_tokens, llm::LoadOptions{.n_threads = o.n_threads});
  fmt::print("prompt ({} tokens): {}\n", r.prompt_tokens.size(), o.prompt);
  fmt::print("generated ({} tokens): {}\n", r.tokens.size(), r.text);
  std::string ids;
  for (auto t : r.tokens) ids += std::to_string(t) + " ";
  fmt::print("token ids: {}\n", ids);
  fmt::print("load {:.1f} ms, decode {:.1f} ms\n", open_ms + r.context_ms, r.decode_ms);
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* gen = app.add_subcommand("generate", "Generate greedily from a GGUF model (embedded libllama)");
  gen->add_option("--model,-m", o->model, "GGUF model file or pulled model name")->required()->transform(model_arg());
  gen->add_option("--prompt,-p", o->prompt, "Raw prompt text")->capture_default_str();
  gen->add_option("--tokens,-n", o->n_tokens, "Tokens to generate")->capture_default_str();
  gen->add_option("--threads,-t", o->n_threads, "CPU threads (0: all)")->capture_default_str();
  gen->callback([&action, o] { action = [o] { return run_generate(*o); }; });
}

}  // namespace lrgd::cli
