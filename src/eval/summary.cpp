// summary.json and table.md of one run.
#include <fmt/core.h>

#include "eval_internal.h"
#include "lrgd/progress.h"

namespace lrgd::eval::detail {

std::string run_label(const ojson& doc) {
  const std::string method = doc.value("method", std::string("?"));
  if (method == "zsl" || method == "icl" || method == "lrgd") {
    std::string label = method == "zsl" ? "ZSL" : method == "icl" ? "ICL" : "LRGD";
    const auto r = doc.find("ranking");
    if (r != doc.end() && r->value("mode", std::string()) == "score") label += " (score)";
    return label;
  }
  if (method == "pop") return "Pop";
  if (method == "markov") return "Markov";
  if (method == "random") return "Random";
  if (method == "external") {
    const auto e = doc.find("external");
    const std::string label = e != doc.end() ? e->value("label", std::string()) : std::string();
    return label.empty() ? "External" : label;
  }
  return method;
}

std::string summary_json(const EvalConfig& config, const ojson& doc, const RunStats& s, const RunResult& r,
                         const llm::Usage& usage, bool torn, double setup_s) {
  ojson j;
  j["method"] = doc["method"];
  j["label"] = run_label(doc);
  if (doc.contains("ranking")) j["mode"] = doc["ranking"]["mode"];
  j["dataset"] = doc["dataset"]["name"];
  j["model_id"] = doc.contains("model") ? doc["model"]["id"] : ojson("");
  j["config_hash"] = doc["config_hash"];
  j["n_users"] = s.n_users;
  j["n_trials"] = s.trials.size();
  j["n_records"] = s.n_records;
  j["confidence"] = config.confidence;
  ojson m = ojson::object();
  for (std::size_t i = 0; i < s.metrics.size() && i < s.summaries.size(); ++i) {
    const auto& sm = s.summaries[i];
    ojson per_trial = ojson::array();
    for (const auto& t : s.per_trial) per_trial.push_back(number(t.means()[i]));
    m[s.metrics[i].key()] = {
        {"mean", number(sm.mean)},       {"std", number(sm.std)}, {"ci_low", number(sm.ci_low)},
        {"ci_high", number(sm.ci_high)}, {"n_trials", sm.n},      {"per_trial", std::move(per_trial)}};
  }
  j["metrics"] = std::move(m);
  j["valid_output_rate"] = number(s.valid_output_rate());
  j["n_invalid"] = s.n_records - s.n_valid;
  j["n_failed"] = s.n_failed;
  j["hallucinations"] = {
      {"n_entries", s.n_hallucinated},
      {"n_records", s.n_with_hallucination},
      {"per_record",
       number(s.n_records ? static_cast<double>(s.n_hallucinated) / static_cast<double>(s.n_records) : 0)}};
  j["n_duplicates"] = s.n_duplicates;
  j["overflow"] = {{"n_records_truncated", s.n_truncated},
                   {"n_history_items_dropped", s.n_history_dropped},
                   {"n_demo_items_dropped", s.n_demo_dropped}};
  j["tokens"] = {{"prompt", s.n_prompt_tokens}, {"scored", s.n_scored_tokens}, {"generated", s.n_generated_tokens}};
  const double prompt_s = usage.prompt_ms / 1000.0;
  const double gen_s = usage.generate_ms / 1000.0;
  j["backend"] = {
      {"n_requests", usage.n_requests},
      {"n_failed", usage.n_failed},
      {"n_failed_attempts", usage.n_failed_attempts},
      {"n_cache_hits", usage.n_cache_hits},
      {"n_neutralised", usage.n_neutralised},
      {"n_prompt_tokens", usage.n_prompt_tokens},
      {"n_reused_tokens", usage.n_reused_tokens},
      {"n_scored_tokens", usage.n_scored_tokens},
      {"n_generated_tokens", usage.n_generated_tokens},
      {"prompt_tokens_per_s", number(prompt_s > 0 ? static_cast<double>(usage.n_prompt_tokens) / prompt_s : 0)},
      {"generated_tokens_per_s", number(gen_s > 0 ? static_cast<double>(usage.n_generated_tokens) / gen_s : 0)},
      {"tokens_per_s_in_model",
       number(r.time_in_model_s > 0
                  ? static_cast<double>(usage.n_prompt_tokens + usage.n_scored_tokens + usage.n_generated_tokens) /
                        r.time_in_model_s
                  : 0)}};
  j["n_computed"] = r.n_computed;
  j["n_resumed"] = r.n_resumed;
  j["torn_line_dropped"] = torn;
  j["setup_s"] = setup_s;
  j["wall_s"] = r.wall_s;
  j["time_in_model_s"] = r.time_in_model_s;
  j["time_outside_model_s"] = r.time_outside_model_s;
  j["outside_model_fraction"] = number(r.wall_s > 0 ? r.time_outside_model_s / r.wall_s : 0);
  j["records_per_s"] = number(r.wall_s > 0 ? static_cast<double>(r.n_computed) / r.wall_s : 0);
  return j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

std::string run_table(const ojson& doc, const RunStats& s) {
  std::vector<std::string> cells;
  for (const auto& sm : s.summaries) cells.push_back(mean_std_cell(sm));
  std::string out = fmt::format("# {}: {}\n\n", doc["dataset"]["name"].get<std::string>(), run_label(doc));
  out += markdown_table(s.metrics, {run_label(doc)}, {cells});
  out += fmt::format(
      "\n{} x {} (seed {}), mean ± std over trials. Valid-output rate {:.2f}% (invalid answers count as "
      "misses); hallucinated entries {} in {} answers; prompts shortened to fit the context: {}.\n",
      count_of(s.n_users, "user"), count_of(s.trials.size(), "trial"), doc["protocol"]["seed"].get<std::uint64_t>(),
      100.0 * s.valid_output_rate(), s.n_hallucinated, s.n_with_hallucination, s.n_truncated);
  return out;
}

}  // namespace lrgd::eval::detail
