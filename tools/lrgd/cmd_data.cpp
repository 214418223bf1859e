// lrgd data stats | prepare
#include <fmt/core.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/protocol.h"

namespace lrgd::cli {

namespace {

struct DataArgs {
  std::string data;
  std::string format = "auto";
  int kcore = -1;
  std::size_t title_max_chars = 0;
  bool strict = false;
  std::string items;
};

struct StatsArgs {
  DataArgs data;
  bool json = false;
};

struct PrepareArgs {
  DataArgs data;
  std::string out;
  ProtocolArgs protocol;
  std::uint32_t trial = 0;
  std::string write_candidates;
  std::string candidate_format = "tsv";
};

void add_data_options(CLI::App* cmd, DataArgs& a) {
  cmd->add_option("--data,-d", a.data, "Dataset folder or file")->required();
  cmd->add_option("--format", a.format, "auto | lcrec | recbole | amazon-raw | csv")->capture_default_str();
  cmd->add_option("--kcore", a.kcore, "k-core filter (-1: format default, 5 for amazon-raw and csv; 0: off)")
      ->capture_default_str();
  cmd->add_option("--title-max-chars", a.title_max_chars, "Cut item text to this many characters (0: never)")
      ->capture_default_str();
  cmd->add_flag("--strict", a.strict, "Fail on the first skipped record instead of counting skips");
  cmd->add_option("--items", a.items, "csv: the item file (item,title[,brand,category])");
}

struct Loaded {
  data::Dataset ds;
  double seconds = 0;
};

Loaded load(const DataArgs& a) {
  data::LoadOptions o;
  o.format = data::parse_format(a.format);
  if (a.kcore < -1) throw OptionError("--kcore", "must be -1 (format default), 0 (off) or k >= 1");
  o.kcore = a.kcore;
  o.title_max_chars = a.title_max_chars;
  o.strict = a.strict;
  o.items_file = a.items;
  const auto t0 = std::chrono::steady_clock::now();
  Loaded l{data::load_dataset(a.data, o), 0};
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return l;
}

std::string thousands(std::uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

void print_issues(std::FILE* f, const std::vector<data::LoadIssue>& issues) {
  if (issues.empty()) {
    fmt::print(f, "issues           none\n");
    return;
  }
  fmt::print(f, "issues           {} kind(s); each: kind, count, first place, detail\n", issues.size());
  for (const auto& i : issues) {
    std::string where = i.file.empty() ? std::string("-") : i.file;
    if (i.line > 0) where += ":" + std::to_string(i.line);
    fmt::print(f, "  {:<22} {:>9} {}{}  {}\n", i.kind, thousands(i.count), i.dropped ? "" : "(kept) ", where, i.detail);
  }
}

nlohmann::json issues_json(const std::vector<data::LoadIssue>& issues) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& i : issues) {
    a.push_back({{"kind", i.kind},
                 {"count", i.count},
                 {"file", i.file},
                 {"line", i.line},
                 {"detail", i.detail},
                 {"dropped", i.dropped}});
  }
  return a;
}

int run_stats(const StatsArgs& a) {
  const Loaded l = load(a.data);
  const auto& ds = l.ds;
  const auto s = data::compute_stats(ds);
  if (a.json) {
    nlohmann::json j{{"dataset", ds.name},
                     {"format", ds.format},
                     {"content_hash", ds.content_hash},
                     {"n_users", s.n_users},
                     {"n_items", s.n_items},
                     {"n_interactions", s.n_interactions},
                     {"sparsity", s.sparsity},
                     {"seq_len_mean", s.seq_len_mean},
                     {"seq_len_median", s.seq_len_median},
                     {"seq_len_min", s.seq_len_min},
                     {"seq_len_max", s.seq_len_max},
                     {"item_degree_mean", s.item_degree_mean},
                     {"n_items_with_title", s.n_items_with_title},
                     {"title_coverage", s.title_coverage},
                     {"load_seconds", l.seconds},
                     {"issues", issues_json(ds.issues)}};
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
  }
  fmt::print("dataset          {} ({})\n", ds.name, ds.format);
  fmt::print("users            {}\n", thousands(s.n_users));
  fmt::print("items            {}\n", thousands(s.n_items));
  fmt::print("interactions     {}\n", thousands(s.n_interactions));
  fmt::print("sparsity         {:.4f}%\n", 100.0 * s.sparsity);
  fmt::print("history length   mean {:.2f}, median {:g}, min {}, max {}\n", s.seq_len_mean, s.seq_len_median,
             s.seq_len_min, s.seq_len_max);
  fmt::print("item degree      mean {:.2f}\n", s.item_degree_mean);
  fmt::print("title coverage   {:.2f}% ({} of {} items)\n", 100.0 * s.title_coverage, thousands(s.n_items_with_title),
             thousands(s.n_items));
  fmt::print("content hash     {}\n", ds.content_hash);
  fmt::print("load time        {:.3f} s\n", l.seconds);
  print_issues(stdout, ds.issues);
  return 0;
}

int run_prepare(const PrepareArgs& a) {
  const Loaded l = load(a.data);
  protocol::ProtocolOptions o = protocol_options(a.protocol, l.ds);
  o.trial = a.trial;
  o.strict = a.data.strict;
  const auto t0 = std::chrono::steady_clock::now();
  const auto split = protocol::prepare_split(l.ds, o);
  protocol::write_prepared_split(split, std::filesystem::path(a.out));
  if (!a.write_candidates.empty())
    protocol::write_candidate_file(split, l.ds, a.candidate_format, a.write_candidates);
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr, "lrgd: loaded {} ({} users, {} items, {} interactions) in {:.3f} s\n", l.ds.name,
             thousands(l.ds.n_users()), thousands(l.ds.n_items()), thousands(l.ds.n_interactions()), l.seconds);
  fmt::print(stderr, "lrgd: wrote {} users of {} eligible to {} in {:.3f} s (seed {}, trial {}, data {})\n",
             thousands(split.users.size()), thousands(split.n_eligible), a.out, t, o.seed, o.trial, l.ds.content_hash);
  if (!l.ds.issues.empty()) print_issues(stderr, l.ds.issues);
  if (!split.issues.empty()) {
    fmt::print(stderr, "protocol:\n");
    print_issues(stderr, split.issues);
  }
  return 0;
}

}  // namespace

void add_data_commands(CLI::App& app, Action& action) {
  auto* data = app.add_subcommand("data", "Load datasets, print statistics, prepare evaluation splits");
  data->require_subcommand(1);

  auto stats = std::make_shared<StatsArgs>();
  auto* st = data->add_subcommand("stats", "Print the dataset's Table 1 (users, items, interactions, sparsity, ...)");
  add_data_options(st, stats->data);
  st->add_flag("--json", stats->json, "Print JSON");
  st->callback([&action, stats] { action = [stats] { return run_stats(*stats); }; });

  auto prep = std::make_shared<PrepareArgs>();
  auto* pr = data->add_subcommand("prepare", "Write the evaluation split (users, histories, targets, candidates)");
  add_data_options(pr, prep->data);
  pr->add_option("--out,-o", prep->out, "Output file (JSON Lines, docs/formats.md)")->required();
  add_protocol_options(pr, prep->protocol);
  pr->add_option("--trial", prep->trial, "Trial number (candidate draws differ per trial)")->capture_default_str();
  pr->add_option("--write-candidates", prep->write_candidates,
                 "Also write the test candidates as a candidate file (--candidate-format)");
  pr->add_option("--candidate-format", prep->candidate_format,
                 "tsv (user<TAB>candidates) | llmrank (user<TAB>negatives) | more (MoRE's JSON)")
      ->capture_default_str();
  pr->callback([&action, prep] { action = [prep] { return run_prepare(*prep); }; });
}

}  // namespace lrgd::cli
