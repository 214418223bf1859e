// lrgd data stats | prepare | export
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"

namespace lrgd::cli {

namespace {

struct DataArgs {
  std::string data;
  DataLoadArgs load;
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
  ProtocolArgs protocol;
  std::string out;
  std::uint32_t trial = 0;
  std::string write_candidates;
  std::string candidate_format = "tsv";
};

struct ExportArgs {
  DataArgs data;
  ProtocolArgs protocol;
  std::string format;
  std::string out;
  std::uint32_t n_trials = 1;
};

void add_data_options(CLI::App* cmd, DataArgs& a, const std::string& format_option = "--format") {
  cmd->add_option("--data,-d", a.data, "Dataset folder or file")->required();
  add_data_load_options(cmd, a.load, format_option);
  cmd->add_option("--title-max-chars", a.title_max_chars, "Cut item text to this many characters (0: never)")
      ->capture_default_str();
  cmd->add_flag("--strict", a.strict, "Fail on the first skipped record instead of counting skips");
  cmd->add_option("--items", a.items, "csv: the item file (item,title[,brand,category])");
}

struct Loaded {
  data::Dataset ds;
  double seconds = 0;
};

// The protocol of trial `trial`, as `data prepare` and `data export` apply it.
protocol::ProtocolOptions trial_options(const ProtocolArgs& a, const data::Dataset& ds, std::uint32_t trial,
                                        bool strict) {
  protocol::ProtocolOptions o = protocol_options(a, ds);
  o.trial = trial;
  o.strict = strict;
  return o;
}

Loaded load(const DataArgs& a) {
  data::LoadOptions o = load_options(a.load);
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

// Repeated (user, item) interactions met while loading: kept, or dropped by --repeats first|last.
std::uint64_t count_repeats(const data::Dataset& ds) {
  std::uint64_t n = 0;
  for (const auto& i : ds.issues) {
    if (i.kind == "repeat_interaction" || i.kind == "duplicate_interaction") n += i.count;
  }
  return n;
}

int run_stats(const StatsArgs& a) {
  const Loaded l = load(a.data);
  const auto& ds = l.ds;
  const auto s = data::compute_stats(ds);
  const auto repeats = data::repeats_name(data::parse_repeats(a.data.load.repeats));
  const std::uint64_t n_repeats = count_repeats(ds);
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
                     {"repeats", repeats},
                     {"n_repeats", n_repeats},
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
  fmt::print("repeats          {} ({} repeated interaction(s) {})\n", repeats, thousands(n_repeats),
             repeats == "keep" ? "kept" : "dropped");
  fmt::print("content hash     {}\n", ds.content_hash);
  fmt::print("load time        {:.3f} s\n", l.seconds);
  print_issues(stdout, ds.issues);
  return 0;
}

int run_prepare(const PrepareArgs& a) {
  const Loaded l = load(a.data);
  const protocol::ProtocolOptions o = trial_options(a.protocol, l.ds, a.trial, a.data.strict);
  const auto t0 = std::chrono::steady_clock::now();
  protocol::PreparedSplit split;
  with_protocol_files(a.protocol, [&] { split = protocol::prepare_split(l.ds, o); });
  protocol::write_prepared_split(split, std::filesystem::path(a.out));
  if (!a.write_candidates.empty()) protocol::write_candidate_file(split, l.ds, a.candidate_format, a.write_candidates);
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

// --- lrgd data export: the prepared protocol as RecBole / UniSRec atomic files.

enum class ExportFormat { RecBole, UniSRec };

// Cleaned text for a file that lrgd reads back with clean_text: an '&' that would start a
// character reference ("&amp;", "&#38;") is written "&amp;", so one decoding pass gives the
// text back unchanged; every other character is as it is.
std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t k = 0; k < text.size(); ++k) {
    out.push_back(text[k]);
    if (text[k] != '&') continue;
    std::size_t e = k + 1;
    while (e < text.size() && e - k <= 32 &&
           ((text[e] >= 'a' && text[e] <= 'z') || (text[e] >= 'A' && text[e] <= 'Z') ||
            (text[e] >= '0' && text[e] <= '9') || text[e] == '#'))
      ++e;
    if (e > k + 1 && e < text.size() && text[e] == ';') out += "amp;";
  }
  return out;
}

// An id written as a token: no TAB or line break, and (in token_seq histories) no space.
const std::string& checked_token(const std::string& id, const char* what, bool in_sequence) {
  if (id.empty() || id.find_first_of(in_sequence ? "\t\n\r " : "\t\n\r") != std::string::npos)
    throw OptionError("--format", fmt::format("{} id '{}' cannot be a RecBole token (empty, or a tab, line break{}); "
                                              "--format unisrec writes indices instead",
                                              what, id, in_sequence ? " or space" : ""));
  return id;
}

struct ExportFile {
  std::string name;
  std::string bytes;
};

int run_export(const ExportArgs& a) {
  ExportFormat format;
  if (a.format == "recbole")
    format = ExportFormat::RecBole;
  else if (a.format == "unisrec")
    format = ExportFormat::UniSRec;
  else
    throw OptionError("--format", "unknown export format '" + a.format + "' (recbole, unisrec)");
  if (a.n_trials < 1) throw OptionError("--trials", "must be at least 1");
  const Loaded l = load(a.data);
  const auto& ds = l.ds;
  const bool indices = format == ExportFormat::UniSRec;
  std::vector<protocol::PreparedSplit> splits;
  protocol::ProtocolOptions o = trial_options(a.protocol, ds, 0, a.data.strict);  // one retriever for all trials
  for (std::uint32_t t = 0; t < a.n_trials; ++t) {
    o.trial = t;
    with_protocol_files(a.protocol, [&] { splits.push_back(protocol::prepare_split(ds, o)); });
  }

  // Tokens in the .inter files: the dataset's ids (recbole) or indices (unisrec).
  auto item_token = [&](data::ItemIndex i) {
    return indices ? std::to_string(i) : checked_token(ds.items[static_cast<std::size_t>(i)].id, "item", true);
  };
  auto user_token = [&](data::UserIndex u) {
    return indices ? std::to_string(u) : checked_token(ds.user_ids[static_cast<std::size_t>(u)], "user", false);
  };
  const std::string header = "user_id:token\titem_id_list:token_seq\titem_id:token\n";
  auto row = [&](std::string& out, data::UserIndex u, std::span<const data::ItemIndex> history,
                 data::ItemIndex target) {
    out += user_token(u);
    out.push_back('\t');
    for (std::size_t k = 0; k < history.size(); ++k) {
      if (k > 0) out.push_back(' ');
      out += item_token(history[k]);
    }
    out.push_back('\t');
    out += item_token(target);
    out.push_back('\n');
  };
  const std::string name = ds.name.empty() ? std::string("dataset") : ds.name;
  std::vector<ExportFile> files;

  // Training: every user's sequence without its last two items, one row per prefix (RecBole
  // reads benchmark files row by row, without augmentation), histories cut as in evaluation.
  std::string train = header;
  for (std::size_t u = 0; u < ds.n_users(); ++u) {
    const auto& seq = ds.sequences[u];
    const std::size_t n_train = seq.size() >= 2 ? seq.size() - 2 : 0;
    for (std::size_t t = 1; t < n_train; ++t) {
      const std::span<const data::ItemIndex> before(seq.data(), t);
      row(train, static_cast<data::UserIndex>(u), protocol::truncate_history(before, a.protocol.max_history), seq[t]);
    }
  }
  files.push_back({name + ".train.inter", std::move(train)});

  // Validation and test: the evaluated users, in the dataset's order.
  std::vector<const protocol::PreparedUser*> users;
  for (const auto& u : splits.front().users) users.push_back(&u);
  std::sort(users.begin(), users.end(), [](const auto* x, const auto* y) { return x->user < y->user; });
  std::string valid = header, test = header;
  for (const auto* u : users) {
    row(valid, u->user, u->valid_history, u->valid_target);
    row(test, u->user, u->test_history, u->test_target);
  }
  files.push_back({name + ".valid.inter", std::move(valid)});
  files.push_back({name + ".test.inter", std::move(test)});

  if (indices) {
    std::string text = "item_id:token\ttext:token_seq\n", item2index, user2index;
    for (std::size_t i = 0; i < ds.n_items(); ++i) {
      const std::string& id = checked_token(ds.items[i].id, "item", false);
      text += id + "\t" + escape_text(ds.items[i].title) + "\n";
      item2index += id + "\t" + std::to_string(i) + "\n";
    }
    for (std::size_t u = 0; u < ds.n_users(); ++u)
      user2index += checked_token(ds.user_ids[u], "user", false) + "\t" + std::to_string(u) + "\n";
    files.push_back({name + ".text", std::move(text)});
    files.push_back({name + ".item2index", std::move(item2index)});
    files.push_back({name + ".user2index", std::move(user2index)});
  } else {
    std::string item = "item_id:token\ttitle:token_seq\n";
    for (std::size_t i = 0; i < ds.n_items(); ++i)
      item += item_token(static_cast<data::ItemIndex>(i)) + "\t" + escape_text(ds.items[i].title) + "\n";
    files.push_back({name + ".item", std::move(item)});
  }

  // Candidates: one line per (trial, user), test phase, with the dataset's own ids.
  std::string candidates;
  for (std::uint32_t t = 0; t < a.n_trials; ++t) {
    std::vector<const protocol::PreparedUser*> by_user;
    for (const auto& u : splits[t].users) by_user.push_back(&u);
    std::sort(by_user.begin(), by_user.end(), [](const auto* x, const auto* y) { return x->user < y->user; });
    for (const auto* u : by_user) {
      nlohmann::ordered_json j;
      j["user"] = u->user_id;
      j["trial"] = t;
      j["target"] = ds.items[static_cast<std::size_t>(u->test_target)].id;
      auto& c = j["candidates"] = nlohmann::ordered_json::array();
      for (const auto i : u->test_candidates) c.push_back(ds.items[static_cast<std::size_t>(i)].id);
      candidates += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    }
  }
  files.push_back({"candidates.jsonl", std::move(candidates)});

  const auto& first = splits.front();
  nlohmann::ordered_json m;
  m["format"] = "lrgd-export";
  m["version"] = 1;
  m["export_format"] = a.format;
  m["dataset"] = ds.name;
  m["data_hash"] = ds.content_hash;
  m["seed"] = a.protocol.seed;
  m["options"] = {{"input_format", ds.format},
                  {"kcore", a.data.load.kcore},
                  {"repeats", data::repeats_name(data::parse_repeats(a.data.load.repeats))},
                  {"title_max_chars", a.data.title_max_chars},
                  {"users", a.protocol.n_users},
                  {"max_history", a.protocol.max_history},
                  {"candidates", a.protocol.n_candidates},
                  {"negatives", a.protocol.negatives},
                  {"candidate_file", std::filesystem::path(a.protocol.candidate_file).filename().string()},
                  {"candidate_file_hash", first.candidate_file_hash},
                  {"trials", a.n_trials}};
  m["n_users_total"] = ds.n_users();
  m["n_items"] = ds.n_items();
  m["n_eligible"] = first.n_eligible;
  m["n_selected"] = first.users.size();
  auto& list = m["files"] = nlohmann::ordered_json::array();
  for (const auto& f : files)
    list.push_back({{"name", f.name}, {"bytes", f.bytes.size()}, {"sha256", sha256_hex(f.bytes)}});

  const std::filesystem::path out(a.out);
  for (const auto& f : files) write_file_atomic(out / f.name, f.bytes);
  write_file_atomic(out / "manifest.json",
                    m.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  fmt::print(stderr, "lrgd: loaded {} ({} users, {} items, {} interactions) in {:.3f} s\n", ds.name,
             thousands(ds.n_users()), thousands(ds.n_items()), thousands(ds.n_interactions()), l.seconds);
  fmt::print(stderr, "lrgd: wrote {} ({} evaluated users of {} eligible, {} trial(s), data {}) to {}\n", a.format,
             thousands(first.users.size()), thousands(first.n_eligible), a.n_trials, ds.content_hash, a.out);
  if (!ds.issues.empty()) print_issues(stderr, ds.issues);
  return 0;
}

}  // namespace

void add_data_load_options(CLI::App* cmd, DataLoadArgs& a, const std::string& format_option) {
  cmd->add_option(format_option, a.format, "auto | lcrec | recbole | amazon-raw | csv")->capture_default_str();
  cmd->add_option("--kcore", a.kcore, "k-core filter (-1: format default, 5 for amazon-raw and csv; 0: off)")
      ->capture_default_str();
  cmd->add_option("--repeats", a.repeats,
                  "A user's repeated item: keep every occurrence | first | last (keep only that one)")
      ->capture_default_str();
}

data::LoadOptions load_options(const DataLoadArgs& a) {
  data::LoadOptions o;
  o.format = data::parse_format(a.format);
  if (a.kcore < -1) throw OptionError("--kcore", "must be -1 (format default), 0 (off) or k >= 1");
  o.kcore = a.kcore;
  o.repeats = data::parse_repeats(a.repeats);
  return o;
}

void add_data_commands(CLI::App& app, Action& action) {
  auto* data = app.add_subcommand("data", "Load datasets, print statistics, prepare and export evaluation splits");
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

  auto exp = std::make_shared<ExportArgs>();
  auto* ex = data->add_subcommand(
      "export", "Write the prepared protocol for RecBole or another trainer (inter files, item text, candidates)");
  add_data_options(ex, exp->data, "--input-format");
  ex->add_option("--format", exp->format, "recbole | unisrec")->required();
  ex->add_option("--out,-o", exp->out, "Output folder")->required();
  add_protocol_options(ex, exp->protocol);
  ex->add_option("--trials", exp->n_trials, "Trials: candidates.jsonl holds trials 0..N-1")->capture_default_str();
  ex->callback([&action, exp] { action = [exp] { return run_export(*exp); }; });
}

}  // namespace lrgd::cli
