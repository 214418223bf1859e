// lrgd generate: greedy generation from a GGUF model (the embedded smoke path).
// lrgd demo: the README's main job.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "cli.h"
#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"

namespace lrgd::cli {

namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt = "Recommend a video game:";
  int n_tokens = 16;
  int n_threads = 0;
};

int run_generate(const GenerateOptions& o) {
  const auto r = llm::generate_greedy(o.model, o.prompt, o.n_tokens, llm::LoadOptions{.n_threads = o.n_threads});
  fmt::print("prompt ({} tokens): {}\n", r.prompt_tokens.size(), o.prompt);
  fmt::print("generated ({} tokens): {}\n", r.tokens.size(), r.text);
  std::string ids;
  for (auto t : r.tokens) ids += std::to_string(t) + " ";
  fmt::print("token ids: {}\n", ids);
  fmt::print("load {:.1f} ms, decode {:.1f} ms\n", r.load_ms, r.decode_ms);
  return 0;
}

int run_demo(const std::string& workdir) {
  std::filesystem::create_directories(workdir);
  const auto path = std::filesystem::path(workdir) / "tiny-llama.gguf";
  if (!std::filesystem::exists(path)) {
    model::ModelInitOptions o;
    o.n_layer = 2;
    o.n_embd = 32;
    o.n_head = 4;
    o.n_head_kv = 2;
    const auto r = model::init_model(o, path);
    fmt::print("made {} ({:.2f}M parameters)\n", r.path.string(), static_cast<double>(r.n_params) / 1e6);
  }
  GenerateOptions g;
  g.model = path.string();
  return run_generate(g);
}

}  // namespace

void add_generate_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* gen = app.add_subcommand("generate", "Generate greedily from a GGUF model (embedded libllama)");
  gen->add_option("--model,-m", o->model, "GGUF model file")->required();
  gen->add_option("--prompt,-p", o->prompt, "Raw prompt text")->capture_default_str();
  gen->add_option("--tokens,-n", o->n_tokens, "Tokens to generate")->capture_default_str();
  gen->add_option("--threads,-t", o->n_threads, "CPU threads (0: all)")->capture_default_str();
  gen->callback([&action, o] { action = [o] { return run_generate(*o); }; });
}

void add_demo_command(CLI::App& app, Action& action) {
  auto dir = std::make_shared<std::string>("lrgd-demo");
  auto* demo = app.add_subcommand("demo", "The main job on the embedded default (see README)");
  demo->add_option("--workdir", *dir, "Folder for models and results")->capture_default_str();
  demo->callback([&action, dir] { action = [dir] { return run_demo(*dir); }; });
}

}  // namespace lrgd::cli
