// `lrgd eval`: the run directory, the evaluation loop, resume.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "eval_internal.h"
#include "lrgd/error.h"
#include "lrgd/external.h"
#include "lrgd/file.h"
#include "lrgd/hash.h"
#include "lrgd/progress.h"
#include "lrgd/prompt.h"
#include "lrgd/rng.h"
#include "lrgd/version.h"

namespace lrgd::eval {

namespace {

using detail::ojson;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The options the ranker really uses (auto max_tokens resolved), so config.json records them.
rec::LlmRankerOptions effective_llm(const EvalConfig& c) {
  rec::LlmRankerOptions o = c.llm;
  o.method = c.method;
  o.list_length = c.list_length;
  if (o.template_name.empty())
    o.template_name = std::string(rec::method_name(c.method == rec::Method::Lrgd ? rec::Method::Icl : c.method));
  if (o.generation.max_tokens <= 0) o.generation.max_tokens = o.constrain ? 4 * o.list_length + 8 : 32 * o.list_length;
  o.parse.list_length = c.list_length;
  return o;
}

// ICL shows the user's validation window; LRGD's ranker chooses its own demonstrations.
DemoSource demo_source(rec::Method method) {
  return method == rec::Method::Icl ? DemoSource::ValidWindow : DemoSource::None;
}

std::string template_sha256(const std::string& name) {
  const auto names = prompt::Template::builtin_names();
  if (std::find(names.begin(), names.end(), name) != names.end())
    return sha256_hex(prompt::Template::builtin_text(name));
  return sha256_file(name);
}

ojson hashed_part(ojson doc) {
  doc.erase("runtime");
  doc.erase("config_hash");
  if (doc.contains("dataset")) {
    doc["dataset"].erase("path");
    doc["dataset"].erase("repeats");  // its effect on the data is in the content hash
  }
  if (doc.contains("external")) {
    doc["external"].erase("scores_path");
    doc["external"].erase("label");
  }
  if (doc.contains("model")) {
    doc["model"].erase("path");
    doc["model"].erase("endpoint");
  }
  return doc;
}

std::string record_line(const data::Dataset& ds, const rec::Query& q, std::size_t draw, const std::string& user_id,
                        const rec::Ranked& r, const std::vector<metrics::MetricSpec>& specs, detail::Record& rec_out) {
  const auto target_pos =
      static_cast<std::int32_t>(std::find(q.candidates.begin(), q.candidates.end(), q.target) - q.candidates.begin());
  const int rank = target_rank(q, r);
  ojson j;
  j["trial"] = q.trial;
  j["draw"] = draw;
  j["user"] = user_id;
  j["target"] = ds.items[static_cast<std::size_t>(q.target)].id;
  j["target_number"] = target_pos + 1;
  j["n_history"] = static_cast<int>(q.history.size()) - r.n_history_dropped;
  j["n_history_dropped"] = r.n_history_dropped;
  j["n_demo_dropped"] = r.n_demo_dropped;
  j["prompt_hash"] = r.prompt_hash;
  j["raw_answer"] = r.raw_answer;
  j["answer_format"] = r.answer_format;
  ojson numbers = ojson::array();
  ojson items = ojson::array();
  for (int p : r.ranking) {
    numbers.push_back(p + 1);
    items.push_back(ds.items[static_cast<std::size_t>(q.candidates[static_cast<std::size_t>(p)])].id);
  }
  j["ranking"] = std::move(numbers);
  j["ranked_items"] = std::move(items);
  j["valid"] = r.valid;
  j["n_hallucinated"] = r.n_hallucinated;
  j["n_duplicates"] = r.n_duplicates;
  j["target_rank"] = rank == metrics::kNotRanked ? ojson(nullptr) : ojson(rank);
  ojson m = ojson::object();
  for (const auto& s : specs) m[s.key()] = s.value(rank);
  j["metrics"] = std::move(m);
  j["n_prompt_tokens"] = r.n_prompt_tokens;
  j["n_scored_tokens"] = r.n_scored_tokens;
  j["n_generated_tokens"] = r.n_generated_tokens;
  j["finish"] = r.finish;
  j["error"] = r.error;
  rec_out.trial = q.trial;
  rec_out.draw = draw;
  rec_out.user = user_id;
  rec_out.target_rank = rank;
  rec_out.valid = r.valid;
  rec_out.failed = !r.error.empty();
  rec_out.n_hallucinated = r.n_hallucinated;
  rec_out.n_duplicates = r.n_duplicates;
  rec_out.n_prompt_tokens = r.n_prompt_tokens;
  rec_out.n_scored_tokens = r.n_scored_tokens;
  rec_out.n_generated_tokens = r.n_generated_tokens;
  rec_out.n_history_dropped = r.n_history_dropped;
  rec_out.n_demo_dropped = r.n_demo_dropped;
  rec_out.line = j.dump(-1, ' ', false, ojson::error_handler_t::replace);
  return rec_out.line;
}

// Top-level keys whose hashed content differs (for the refusal message).
std::string changed_keys(const ojson& before, const ojson& now) {
  std::set<std::string> keys;
  for (auto it = before.begin(); it != before.end(); ++it) keys.insert(it.key());
  for (auto it = now.begin(); it != now.end(); ++it) keys.insert(it.key());
  std::string out;
  for (const auto& k : keys) {
    const bool same = before.contains(k) && now.contains(k) && before[k] == now[k];
    if (!same) out += (out.empty() ? "" : ", ") + k;
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace

namespace detail {

ojson config_document(const EvalConfig& c, const data::Dataset& ds, const std::string& model_id) {
  ojson d;
  d["lrgd_version"] = lrgd::version();
  d["method"] = rec::method_name(c.method);
  d["dataset"] = {{"name", ds.name},         {"hash", ds.content_hash}, {"format", ds.format},
                  {"n_users", ds.n_users()}, {"n_items", ds.n_items()}, {"n_interactions", ds.n_interactions()},
                  {"repeats", ds.repeats},   {"path", c.data_path}};
  const auto& p = c.protocol;
  d["protocol"] = {{"seed", p.seed},
                   {"n_users", p.n_users},
                   {"max_history", p.max_history},
                   {"n_candidates", p.n_candidates},
                   {"negatives", protocol::negatives_name(p.negatives)},
                   {"retriever", p.retriever ? p.retriever->name() : std::string()},
                   {"candidates_per_trial", protocol::candidates_per_trial_name(p.fixed_across_trials)},
                   {"candidate_file_sha256", p.candidate_file.empty() ? std::string() : sha256_file(p.candidate_file)},
                   {"users_file_sha256", p.users_file.empty() ? std::string() : sha256_file(p.users_file)},
                   {"phase", "test"}};
  d["trials"] = c.n_trials;
  d["list_length"] = c.list_length;
  ojson seeds;
  seeds["protocol"] = p.seed;
  seeds["users"] = "Rng::derive(protocol, \"users\")";
  seeds["candidates"] = p.fixed_across_trials ? "Rng::derive(protocol, \"candidates/test\", user << 32)"
                                              : "Rng::derive(protocol, \"candidates/test\", (user << 32) | trial)";
  if (rec::needs_llm(c.method)) {
    const auto o = effective_llm(c);
    ojson per_trial = ojson::array();
    for (std::uint32_t t = 0; t < c.n_trials; ++t)
      per_trial.push_back(Rng::derive(o.generation.seed, "generate", t).next_u64());
    seeds["generation"] = o.generation.seed;
    seeds["generation_per_trial"] = std::move(per_trial);
    d["model"] = {{"id", model_id}, {"path", c.model_path}, {"endpoint", c.endpoint}};
    const bool items = o.prompt_form == rec::PromptForm::ItemTokens;
    d["prompt"] = {{"form", rec::prompt_form_name(o.prompt_form)},
                   {"template", items ? "item_model_layout_v1" : o.template_name},
                   {"template_sha256", items ? "" : template_sha256(o.template_name)},
                   {"regularisation", o.regularisation},
                   {"demonstration", c.method == rec::Method::Icl    ? "valid_window"
                                     : c.method == rec::Method::Lrgd ? "lrgd_best_valid"
                                                                     : "none"}};
    ojson stop = ojson::array();
    for (const auto& s : o.generation.stop) stop.push_back(s);
    d["ranking"] = {{"mode", rec::rank_mode_name(o.mode)},
                    {"constrain", o.constrain},
                    {"max_tokens", o.generation.max_tokens},
                    {"temperature", o.generation.temperature},
                    {"top_p", o.generation.top_p},
                    {"top_k", o.generation.top_k},
                    {"stop", std::move(stop)},
                    {"score_on", rec::score_target_name(o.score_target)},
                    {"score_norm", rec::score_norm_name(o.score_norm)},
                    {"overflow_policy", "drop_oldest_history"},
                    {"min_history", o.min_history}};
    d["parse"] = {{"fuzzy_threshold", o.parse.fuzzy_threshold},
                  {"partial_min_coverage", o.parse.partial_min_coverage},
                  {"match_titles", o.parse.match_titles},
                  {"match_numbers", o.parse.match_numbers}};
  } else if (c.method == rec::Method::External) {
    d["external"] = {{"scores_path", c.scores_path},
                     {"scores_sha256", sha256_file(c.scores_path)},
                     {"tie_break", "candidate_order"},
                     {"label", c.label}};
  } else {
    seeds["baseline"] = p.seed;
    d["baseline"] = {{"name", rec::method_name(c.method)},
                     {"holdout", c.baseline.holdout},
                     {"seed", p.seed},
                     {"markov_window", c.baseline.markov_window},
                     {"markov_decay", c.baseline.markov_decay}};
  }
  d["seeds"] = std::move(seeds);
  if (!c.method_config.empty()) d["method_config"] = ojson::parse(c.method_config);
  ojson keys = ojson::array();
  for (const auto& m : c.metrics) keys.push_back(m.key());
  d["metrics"] = std::move(keys);
  d["confidence"] = c.confidence;
  ojson runtime = ojson::object();
  for (const auto& [k, v] : c.runtime) runtime[k] = v;
  d["runtime"] = std::move(runtime);
  d["config_hash"] = sha256_hex(hashed_part(d).dump());
  return d;
}

}  // namespace detail

std::string config_json(const EvalConfig& config, const data::Dataset& dataset, const std::string& model_id) {
  return detail::config_document(config, dataset, model_id).dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

RunResult run_eval(const EvalConfig& config, const data::Dataset& dataset, llm::Backend* backend,
                   const RunOptions& options) {
  const bool llm_method = rec::needs_llm(config.method);
  if (llm_method && backend == nullptr)
    throw OptionError("--model",
                      "method " + std::string(rec::method_name(config.method)) + " needs --model or --endpoint");
  if (config.n_trials < 1) throw OptionError("--trials", "must be >= 1");
  if (options.batch_size < 1) throw OptionError("--batch", "must be >= 1");
  if (config.list_length < 1) throw OptionError("--list-length", "must be >= 1");
  if (options.out.empty()) throw OptionError("--out", "a run directory is required");
  protocol::validate(config.protocol, dataset);
  const bool external_method = config.method == rec::Method::External;
  if (!config.scores_path.empty() && !external_method)
    throw OptionError("--scores", "a score file is read by --method external only");

  // External: the whole score file is read and checked against every query of the run
  // before the run directory is touched, so a bad file leaves nothing behind.
  std::vector<protocol::PreparedSplit> splits;
  std::unique_ptr<rec::Ranker> ranker;
  if (external_method) {
    if (config.scores_path.empty()) throw OptionError("--scores", "--method external needs --scores FILE");
    const auto file = external::read_score_file(config.scores_path, dataset);
    std::map<std::pair<data::UserIndex, std::uint32_t>, std::vector<int>> rankings;
    for (std::uint32_t trial = 0; trial < config.n_trials; ++trial) {
      protocol::ProtocolOptions po = config.protocol;
      po.trial = trial;
      splits.push_back(protocol::prepare_split(dataset, po));
      for (const auto& u : splits.back().users)
        rankings[{u.user, trial}] = external::order_candidates(
            file, make_query(u, trial, Phase::Test, demo_source(config.method)), dataset, config.list_length);
    }
    ranker = external::make_external_ranker(std::move(rankings));
  } else {
    // Candidate and user files are read here, before the run directory is touched, so a
    // file that does not fit the data leaves nothing behind (trials read the same files).
    protocol::ProtocolOptions po = config.protocol;
    po.trial = 0;
    splits.push_back(protocol::prepare_split(dataset, po));
  }

  const std::string model_id = llm_method ? backend->model_id() : std::string();
  const ojson doc = detail::config_document(config, dataset, model_id);
  const auto& out = options.out;
  const auto config_path = out / "config.json";
  const auto results_path = out / "results.jsonl";
  {
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec) throw IoError("cannot create the run directory " + out.string() + ": " + ec.message());
  }
  // One process per run directory; a read-only one fails here, before any work.
  const DirLock lock(out);
  const bool existing = std::filesystem::exists(config_path) || std::filesystem::exists(results_path);
  if (existing && !options.resume && !options.overwrite)
    throw OptionError("--out",
                      out.string() + " already holds a run; pass --resume to continue it or --overwrite to replace it");
  if (options.resume && std::filesystem::exists(config_path)) {
    ojson before;
    try {
      before = ojson::parse(read_file(config_path));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(config_path.string(), 0, "", std::string("not JSON: ") + e.what());
    }
    if (before.value("config_hash", std::string()) != doc["config_hash"].get<std::string>())
      throw Error("refusing to resume " + out.string() + ": the configuration differs from its config.json (changed: " +
                  changed_keys(hashed_part(before), hashed_part(doc)) + "); use another --out or --overwrite");
  } else if (options.resume && std::filesystem::exists(results_path)) {
    throw Error("refusing to resume " + out.string() + ": results.jsonl without config.json");
  }
  for (const char* f : {"summary.json", "table.md"}) std::filesystem::remove(out / f);
  detail::ResultsFile resumed;
  if (options.resume) resumed = detail::read_results(results_path);
  write_file_atomic(config_path, doc.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n");

  if (ranker) {
    // external: made above
  } else if (llm_method && config.ranker_factory) {
    ranker = config.ranker_factory(dataset, *backend, effective_llm(config));
  } else if (config.method == rec::Method::Lrgd) {
    throw OptionError("--method", "lrgd needs its optimiser (EvalConfig::ranker_factory)");
  } else if (llm_method) {
    ranker = rec::make_llm_ranker(dataset, *backend, effective_llm(config));
  } else {
    baselines::BaselineOptions bo = config.baseline;
    bo.seed = config.protocol.seed;
    ranker = rec::make_baseline_ranker(dataset, config.method, bo, config.list_length);
  }

  const auto t_start = Clock::now();
  const llm::Usage usage0 = backend != nullptr ? backend->usage() : llm::Usage{};
  std::map<std::pair<std::uint32_t, std::size_t>, const detail::Record*> done;
  for (const auto& r : resumed.records) {
    if (!done.emplace(std::make_pair(r.trial, r.draw), &r).second)
      throw InputError(results_path.string(), 0, "draw",
                       fmt::format("record (trial {}, draw {}) appears twice", r.trial, r.draw));
  }
  std::vector<detail::Record> fresh;
  RunResult result;
  result.n_resumed = resumed.records.size();
  {
    detail::Appender appender(results_path, resumed.good_bytes);
    auto last_sync = Clock::now();
    std::size_t n_planned = 0;
    std::unique_ptr<Progress> progress;
    for (std::uint32_t trial = 0; trial < config.n_trials; ++trial) {
      protocol::PreparedSplit computed;
      if (trial >= splits.size()) {
        protocol::ProtocolOptions po = config.protocol;
        po.trial = trial;
        computed = protocol::prepare_split(dataset, po);
      }
      const auto& split = trial < splits.size() ? splits[trial] : computed;
      if (!progress) {
        n_planned = split.users.size() * config.n_trials;
        // One record is one (user, trial) pair.
        progress = std::make_unique<Progress>(config.n_trials > 1 ? "user-trials" : "users",
                                              n_planned - std::min(n_planned, done.size()), options.progress);
      }
      std::vector<std::size_t> todo;
      for (std::size_t d = 0; d < split.users.size(); ++d) {
        const auto it = done.find({trial, d});
        if (it == done.end()) {
          todo.push_back(d);
        } else if (it->second->user != split.users[d].user_id) {
          throw Error(fmt::format("refusing to resume {}: record (trial {}, draw {}) is user {}, the protocol draws {}",
                                  out.string(), trial, d, it->second->user, split.users[d].user_id));
        }
      }
      for (std::size_t b = 0; b < todo.size(); b += options.batch_size) {
        const std::size_t e = std::min(todo.size(), b + options.batch_size);
        std::vector<rec::Query> queries;
        queries.reserve(e - b);
        for (std::size_t k = b; k < e; ++k) {
          queries.push_back(make_query(split.users[todo[k]], trial, Phase::Test, demo_source(config.method)));
        }
        const auto ranked = ranker->rank(queries);
        std::string bytes;
        for (std::size_t k = 0; k < queries.size(); ++k) {
          detail::Record rec;
          bytes += record_line(dataset, queries[k], todo[b + k], split.users[todo[b + k]].user_id, ranked[k],
                               config.metrics, rec);
          bytes += '\n';
          fresh.push_back(std::move(rec));
        }
        appender.append(bytes);
        if (seconds_since(last_sync) >= options.fsync_interval_s) {
          appender.sync();
          last_sync = Clock::now();
        }
        std::string extra;
        if (backend != nullptr) {
          const auto u = backend->usage() - usage0;
          const double in_model = ranker->model_seconds();
          // The rates of what this mode does; none that is zero (a cached answer decodes nothing).
          const auto rate = [&](const char* what, std::uint64_t n) {
            if (in_model <= 0 || n == 0) return;
            extra +=
                fmt::format("{}{} {:.0f} tok/s", extra.empty() ? "" : ", ", what, static_cast<double>(n) / in_model);
          };
          rate("prompt", u.n_prompt_tokens);
          rate(config.llm.mode == rec::RankMode::Score ? "scored" : "generated",
               config.llm.mode == rec::RankMode::Score ? u.n_scored_tokens : u.n_generated_tokens);
        }
        if (result.n_resumed > 0) extra += fmt::format("{}(+{} resumed)", extra.empty() ? "" : " ", result.n_resumed);
        progress->update(fresh.size(), extra);
      }
    }
    appender.sync();
    if (done.size() + fresh.size() != n_planned)
      throw Error(fmt::format("{}: results.jsonl holds records outside the plan ({} + {} != {})", out.string(),
                              done.size(), fresh.size(), n_planned));
  }
  // Final file: every record sorted by (trial, draw), written atomically, so it is the
  // same bytes whether or not the run was interrupted.
  std::vector<const detail::Record*> all;
  all.reserve(resumed.records.size() + fresh.size());
  for (const auto& r : resumed.records) all.push_back(&r);
  for (const auto& r : fresh) all.push_back(&r);
  std::sort(all.begin(), all.end(), [](const detail::Record* a, const detail::Record* b) {
    return std::tie(a->trial, a->draw) < std::tie(b->trial, b->draw);
  });
  std::string text;
  std::vector<detail::Record> sorted;
  sorted.reserve(all.size());
  for (const auto* r : all) {
    text += r->line;
    text += '\n';
    sorted.push_back(*r);
  }
  write_file_atomic(results_path, text);

  const auto stats = detail::compute_stats(sorted, config.metrics, config.confidence);
  result.n_records = sorted.size();
  result.n_computed = fresh.size();
  result.summaries = stats.summaries;
  result.valid_output_rate = stats.valid_output_rate();
  result.wall_s = seconds_since(t_start);
  result.time_in_model_s = ranker->model_seconds();
  result.time_outside_model_s = std::max(0.0, result.wall_s - result.time_in_model_s);
  const llm::Usage usage = backend != nullptr ? backend->usage() - usage0 : llm::Usage{};
  std::string summary = detail::summary_json(config, doc, stats, result, usage, resumed.torn, options.setup_s);
  if (config.summary_extra) {
    auto j = ojson::parse(summary);
    j["method_summary"] = ojson::parse(config.summary_extra());
    summary = j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
  }
  write_file_atomic(out / "summary.json", summary);
  write_file_atomic(out / "table.md", detail::run_table(doc, stats));
  return result;
}

}  // namespace lrgd::eval
