// lrgd demo: the README's main job. Trains (or reuses a cached) item-token model on a
// dataset, runs random / pop / markov / ZSL / ICL / LRGD under one protocol and prints the
// paper-style table with significance. Every step resumes: a killed demo picks up the
// training checkpoint and the evaluation runs where they stopped (docs/demo.md).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/hash.h"
#include "lrgd/hub.h"
#include "lrgd/llama_model.h"
#include "lrgd/llama_training.h"
#include "lrgd/metrics.h"
#include "lrgd/progress.h"
#include "lrgd/train.h"

namespace lrgd::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct DemoOptions {
  std::string data;
  std::string workdir = "lrgd-demo";
  std::string model_cache;  // empty: $LRGD_CACHE/models or ~/.cache/lrgd/models
  std::string model;        // an item-token model to use instead of the cached one
  std::size_t users = 1000;
  std::uint32_t trials = 10;
  std::size_t candidates = 50;
  std::uint64_t seed = 42;
  int threads = 0;
  std::string methods = "zsl,icl,lrgd,random,pop,markov";
  train::TrainOptions train;
  // The second table: a real pretrained LLM with text prompts ("none": skip).
  std::string real_model = "smollm2-135m";
  std::string real_type = "q8_0";  // re-quantised once for speed (docs/models.md); "" keeps the file
  std::size_t real_users = 20;
  std::uint32_t real_trials = 1;
  std::string real_methods = "zsl,icl,lrgd,random,pop";
  std::string unit = "user";  // the unit of the paired tests (eval::SignificanceUnit)
  bool holm = false;
};

// The tables' significance options; the Imp. row is LRGD's when it ran, else the last run's.
eval::ReportOptions report_options(const DemoOptions& o, const std::vector<std::string>& methods) {
  eval::ReportOptions ro;
  ro.unit = eval::parse_significance_unit(o.unit);
  ro.holm = o.holm;
  if (std::find(methods.begin(), methods.end(), "lrgd") != methods.end()) ro.ours = "lrgd";  // the run's folder
  return ro;
}

// "(paired t-test over users, * = p < 0.05)" for the tables' introductions.
std::string test_words(const eval::ReportOptions& ro) {
  return fmt::format("paired t-test over {}{}, * = p < {}",
                     ro.unit == eval::SignificanceUnit::User ? "users" : "(user, trial) records",
                     ro.holm ? ", Holm-adjusted" : "", ro.alpha);
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The cache key: the data and every training option that changes the weights, except the
// thread count (a model trained on 1 or 2 threads is the same model up to rounding).
std::string model_key(const data::Dataset& ds, const train::TrainOptions& o) {
  const std::string s = fmt::format("items-v{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", 3,
                                    ds.content_hash, o.n_layer, o.n_embd, o.n_head, o.n_head_kv, o.n_ff, o.tied,
                                    o.n_ctx, o.epochs, o.lr, o.lr_min_ratio, o.warmup_steps, o.max_history, o.demo_prob,
                                    o.seed, o.sampled_outputs, o.blas && llm::blas_available(), o.weight_decay,
                                    o.input_noise, train::averaged_epochs(o), o.separate_examples);
  return sha256_hex(s).substr(0, 16);
}

// Trains into the cache unless the model is there; returns its path and what happened.
fs::path cached_model(const data::Dataset& ds, const DemoOptions& o, nlohmann::json& info) {
  const fs::path dir = o.model_cache.empty() ? hub::default_model_dir() : fs::path(o.model_cache);
  fs::create_directories(dir);
  const std::string stem = (ds.name.empty() ? std::string("data") : ds.name) + "-items-" + model_key(ds, o.train);
  const fs::path path = dir / (stem + ".gguf");
  info["model"] = path.string();
  if (fs::exists(path)) {
    fmt::print("[demo] model: reusing {}\n", path.string());
    info["trained"] = false;
    return path;
  }
  fmt::print("[demo] model: training {} ({} epochs, {} threads; checkpoints in {}.ckpt, a rerun resumes)\n",
             path.string(), o.train.epochs, o.train.n_threads, stem);
  auto t = o.train;
  t.checkpoint_dir = dir / (stem + ".ckpt");
  // Written beside the final name and renamed, so a killed write never looks like a model.
  const fs::path partial = dir / (stem + ".partial.gguf");
  const auto t0 = Clock::now();
  const auto r = train::train_item_model(ds, partial, t);
  fs::rename(partial, path);
  info["trained"] = true;
  info["train_s"] = since(t0);
  info["train_tokens_per_s"] = r.tokens_per_s;
  if (!r.epochs.empty()) info["final_epoch_loss"] = r.epochs.back().loss;
  fmt::print("[demo] model: trained in {:.0f} s ({:.0f} tokens/s, final epoch loss {:.3f})\n", since(t0),
             r.tokens_per_s, r.epochs.empty() ? 0.0 : r.epochs.back().loss);
  return path;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

bool is_model_method(const std::string& m) { return m == "zsl" || m == "icl" || m == "lrgd"; }

// `text`: the real-model table (text prompts, constrained answers, a short LRGD loop).
int run_method(const std::string& method, const DemoOptions& o, const fs::path& model, const fs::path& dir,
               bool text = false) {
  std::vector<std::string> args{"lrgd",         "eval",
                                "--data",       o.data,
                                "--method",     method,
                                "--users",      std::to_string(text ? o.real_users : o.users),
                                "--trials",     std::to_string(text ? o.real_trials : o.trials),
                                "--candidates", std::to_string(o.candidates),
                                "--seed",       std::to_string(o.seed),
                                "--out",        dir.string()};
  if (is_model_method(method))
    args.insert(args.end(), {"--model", model.string(), "--threads", std::to_string(o.threads), "--batch", "64"});
  if (text && is_model_method(method)) args.insert(args.end(), {"--constrain", "--flash-attn"});
  if (text && method == "lrgd") args.insert(args.end(), {"--paths", "2", "--rounds", "2"});
  if (fs::exists(dir / "config.json")) args.push_back("--resume");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  return run(static_cast<int>(argv.size()), argv.data());
}

// nDCG@10 of a run over its (user, trial) records: mean and 95% t-interval.
metrics::Summary ndcg10_over_records(const fs::path& dir) {
  std::ifstream in(dir / "results.jsonl");
  std::vector<double> v;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("metrics")) v.push_back(j["metrics"].value("ndcg@10", 0.0));
  }
  return metrics::summarize(v, 0.95);
}

// The real LLM: pulled (pinned, verified) and re-quantised once into the model cache.
fs::path real_model_file(const DemoOptions& o, nlohmann::json& info) {
  const hub::ModelEntry* e = hub::find_model(o.real_model);
  if (e == nullptr) throw OptionError("--real-model", "unknown model '" + o.real_model + "' (lrgd model list)");
  hub::PullOptions po;
  po.log = [](const std::string& m) { fmt::print("[demo] pull: {}\n", m); };
  po.verify = [](const fs::path& p) { (void)llm::Model::open(p); };
  const auto pulled = hub::pull(*e, po);
  info["real_model"] = {{"name", e->name}, {"file", pulled.gguf.string()}, {"sha256", e->gguf_sha256}};
  if (o.real_type.empty()) return pulled.gguf;
  fs::path q = pulled.gguf;
  q.replace_extension();
  q += "." + o.real_type + ".gguf";
  if (!fs::exists(q)) {
    fmt::print("[demo] re-quantising {} to {} (once; see docs/models.md)\n", pulled.gguf.string(), o.real_type);
    llm::quantize_model(pulled.gguf, q, o.real_type, o.threads);
  }
  info["real_model"]["used"] = q.string();
  info["real_model"]["type"] = o.real_type;
  return q;
}

// The second table: the same protocol on a real LLM with text prompts.
std::string run_real_table(const DemoOptions& o, nlohmann::json& info) {
  const auto methods = split(o.real_methods);
  const fs::path model = real_model_file(o, info);
  std::vector<fs::path> dirs;
  for (const auto& m : methods) {
    const auto t0 = Clock::now();
    fmt::print("[demo] {} on {}: {} x {}\n", m, o.real_model, count_of(o.real_users, "user"),
               count_of(o.real_trials, "trial"));
    std::fflush(stdout);
    const auto dir = fs::path(o.workdir) / "runs-real" / m;
    if (const int rc = run_method(m, o, model, dir, true); rc != 0)
      throw Error("the " + m + " run on " + o.real_model + " failed (exit " + std::to_string(rc) +
                  "); rerun the demo to resume it");
    info["real_seconds"][m] = since(t0);
    dirs.push_back(dir);
  }
  auto ro = report_options(o, methods);
  const auto rep = eval::report_runs(dirs, ro);
  std::string md = fmt::format(
      "\n## A real LLM: {} ({}), text prompts, constrained answers\n\n"
      "Every method against `{}` ({}):\n\n{}\n"
      "nDCG@10 with its 95% interval over the (user, trial) records, to show what {} users allow:\n\n"
      "| Method | nDCG@10 | 95% CI | records |\n|:--|--:|--:|--:|\n",
      o.real_model, o.real_type.empty() ? std::string("as published") : o.real_type, methods.front(), test_words(ro),
      rep.markdown, o.real_users);
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const auto s = ndcg10_over_records(dirs[i]);
    md += fmt::format("| {} | {:.4f} | [{:.4f}, {:.4f}] | {} |\n", methods[i], s.mean, s.ci_low, s.ci_high, s.n);
  }
  const auto at = [&](const char* m) {
    const auto it = std::find(methods.begin(), methods.end(), m);
    return it == methods.end() ? fs::path() : dirs[static_cast<std::size_t>(it - methods.begin())];
  };
  if (!at("icl").empty() && !at("lrgd").empty() && methods.front() != "icl") {
    const std::vector<fs::path> pair{at("icl"), at("lrgd")};
    ro.ours = "";  // LRGD, the last of the pair
    md += "\nLRGD against ICL on the real model:\n\n" + eval::report_runs(pair, ro).markdown;
  }
  info["real_report"] = nlohmann::json::parse(rep.json);
  return md;
}

int run_demo(DemoOptions o) {
  const auto t_all = Clock::now();
  if (o.threads <= 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.train.n_threads = o.threads;
  const auto methods = split(o.methods);
  if (methods.empty()) throw OptionError("--methods", "name at least one method");
  for (const auto& m : methods)
    if (m != "random" && m != "pop" && m != "markov" && !is_model_method(m))
      throw OptionError("--methods", "unknown method '" + m + "' (random, pop, markov, zsl, icl, lrgd)");
  if (o.data.empty())
    throw OptionError("--data", "name a dataset (the README's demo uses ../shared/data/amazon18-games)");
  (void)eval::parse_significance_unit(o.unit);  // refuse a bad --unit before the long runs

  const auto ds = data::load_dataset(o.data);
  fmt::print("[demo] data: {} ({} users, {} items, {} interactions)\n", o.data, ds.n_users(), ds.n_items(),
             ds.n_interactions());
  nlohmann::json info;
  info["data"] = o.data;
  info["data_hash"] = ds.content_hash;
  const auto t_model = Clock::now();
  // Only the model methods need the item-token model (`--methods random,pop` skips training).
  const bool needs_model = std::any_of(methods.begin(), methods.end(), is_model_method);
  const fs::path model = !needs_model ? fs::path() : o.model.empty() ? cached_model(ds, o, info) : fs::path(o.model);
  if (!o.model.empty()) info["model"] = o.model;
  info["model_s"] = since(t_model);

  const fs::path work = o.workdir;
  fs::create_directories(work / "runs");
  std::vector<fs::path> dirs;
  for (const auto& m : methods) {
    const auto t0 = Clock::now();
    fmt::print("[demo] {}: {} x {}\n", m, count_of(o.users, "user"), count_of(o.trials, "trial"));
    std::fflush(stdout);
    const auto dir = work / "runs" / m;
    if (const int rc = run_method(m, o, model, dir); rc != 0) {
      fmt::print(stderr, "lrgd demo: the {} run failed (exit {}); rerun the demo to resume it\n", m, rc);
      return rc;
    }
    info["seconds"][m] = since(t0);
    dirs.push_back(dir);
  }

  // The main table: every method against the first one (ZSL unless --methods says otherwise),
  // then LRGD against ICL, the comparison the paper's method is about.
  auto ro = report_options(o, methods);
  const auto main = eval::report_runs(dirs, ro);
  std::string md =
      "# lrgd demo\n\nEvery method against `" + methods.front() + "` (" + test_words(ro) + "):\n\n" + main.markdown;
  std::string json_extra;
  const auto find = [&](const char* m) {
    const auto it = std::find(methods.begin(), methods.end(), m);
    return it == methods.end() ? fs::path() : dirs[static_cast<std::size_t>(it - methods.begin())];
  };
  if (!find("icl").empty() && !find("lrgd").empty() && methods.front() != "icl") {
    const std::vector<fs::path> pair{find("icl"), find("lrgd")};
    ro.ours = "";  // LRGD, the last of the pair
    const auto vs = eval::report_runs(pair, ro);
    md += "\nLRGD against ICL:\n\n" + vs.markdown;
    info["lrgd_vs_icl"] = nlohmann::json::parse(vs.json);
  }
  info["report"] = nlohmann::json::parse(main.json);
  info["users"] = o.users;
  info["trials"] = o.trials;
  info["seed"] = o.seed;
  info["threads"] = o.threads;
  md += fmt::format("\nModel: {}. Runs: {}.\n", needs_model ? model.string() : "none", (work / "runs").string());
  if (o.real_model != "none") md += run_real_table(o, info);
  info["total_s"] = since(t_all);
  md += fmt::format("\nTotal {:.0f} s.\n", since(t_all));
  std::ofstream(work / "report.md") << md;
  std::ofstream(work / "report.json") << info.dump(2) << "\n";
  fmt::print("\n{}\nwrote {} and {}\n", md, (work / "report.md").string(), (work / "report.json").string());
  return 0;
}

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<DemoOptions>();
  // The model is `lrgd model train`'s default (8 epochs of the sampled softmax at lr 6e-3:
  // about 5 min on 2 cores for Games; docs/demo.md).
  auto* demo = app.add_subcommand(
      "demo",
      "The main job: train (or reuse) an item-token model, run random/pop/markov/ZSL/ICL/LRGD, print the table");
  demo->add_option("--data", o->data, "Dataset (the README uses ../shared/data/amazon18-games)")->required();
  demo->add_option("--workdir", o->workdir, "Folder for the runs and the report")->capture_default_str();
  demo->add_option("--model-cache", o->model_cache, "Folder of trained models (default: ~/.cache/lrgd/models)");
  demo->add_option("--model", o->model, "Use this item-token model instead of training one");
  demo->add_option("--users", o->users, "Evaluation users")->capture_default_str();
  demo->add_option("--trials", o->trials, "Trials (candidate draws)")->capture_default_str();
  demo->add_option("--candidates", o->candidates, "Candidate set size")->capture_default_str();
  demo->add_option("--seed", o->seed, "Seed (protocol, training)")->capture_default_str();
  demo->add_option("--threads", o->threads, "CPU threads (0: all cores)")->capture_default_str();
  demo->add_option("--methods", o->methods, "Methods, the first is the significance baseline")->capture_default_str();
  demo->add_option("--epochs", o->train.epochs, "Training epochs of the model")->capture_default_str();
  demo->add_option("--lr", o->train.lr, "Peak learning rate of the model")->capture_default_str();
  demo->add_option("--width", o->train.n_embd, "Embedding width of the model")->capture_default_str();
  demo->add_option("--layers", o->train.n_layer, "Transformer blocks of the model")->capture_default_str();
  demo->add_option("--sampled-outputs", o->train.sampled_outputs,
                   "Sampled-softmax rows per training step (0: full softmax)")
      ->capture_default_str();
  demo->add_option("--real-model", o->real_model, "Real LLM of the second table (lrgd model list; none: skip)")
      ->capture_default_str();
  demo->add_option("--real-type", o->real_type, "Re-quantise the real LLM to this type first ('' keeps it)")
      ->capture_default_str();
  demo->add_option("--real-users", o->real_users, "Users of the real-LLM table")->capture_default_str();
  demo->add_option("--real-trials", o->real_trials, "Trials of the real-LLM table")->capture_default_str();
  demo->add_option("--real-methods", o->real_methods, "Methods of the real-LLM table")->capture_default_str();
  demo->add_option("--unit", o->unit,
                   "user | user-trial: the unit of the paired tests (as lrgd report --unit; user-trial is "
                   "anti-conservative)")
      ->capture_default_str();
  demo->add_flag("--holm", o->holm, "Holm-Bonferroni correction over each table's comparisons");
  demo->callback([&action, o] {
    o->train.seed = o->seed;
    action = [o] { return run_demo(*o); };
  });
}

}  // namespace lrgd::cli
