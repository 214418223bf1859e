// The text path on a real model, against the engine's own tools in the same run: lrgd
//   eval's three text workloads on Games prompts (ZSL, the protocol's 50 candidates) through
//   the embedded engine: generate (free), generate (constrained), score; each followed by
//   llama-bench pp512 / tg128 and pp<L> (L = the workload's mean prompt length, the depth
//   the eval really runs at) as its baseline; and the constrained workload through
//   llama-server on the same file (same threads, same parallel sequences) as the peer.
// Usage: bench_text [--model GGUF|NAME] [--threads 2] [--users 16] [--parallel 8]
//                   [--flash-attn] [--kv-unified] [--kv-f32] [--no-server] [--only WORKLOAD] [--out result.json]
//                   [DATA_DIR]
// Default model: the pulled smollm2-135m (`lrgd model pull smollm2-135m`).
#include <fcntl.h>
#include <fmt/core.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "lrgd/data.h"
#include "lrgd/eval.h"
#include "lrgd/hub.h"
#include "lrgd/llama_backend.h"
#include "lrgd/llama_model.h"
#include "lrgd/openai_backend.h"
#include "lrgd/process.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

struct Args {
  std::string model = "smollm2-135m";
  fs::path data = fs::path(LRGD_SHARED_DATA_DIR) / "amazon18-games";
  fs::path out;
  int threads = 2;
  std::size_t users = 16;
  int parallel = 8;
  bool flash_attn = false;
  bool server = true;
  bool kv_unified = false;
  bool kv_f32 = false;
  std::string only;  // one workload (generate_free | generate_constrained | score); all if empty
};

struct Workload {
  std::string name;
  lrgd::rec::RankMode mode;
  bool constrain;
};

// llama-bench on the model: {"pp512", "tg128", "pp<L>"} -> tokens/s.
// depth > 0: pp512 with that many tokens already in the KV cache ("pp512@d<depth>"), the
// work of a scored continuation, which attends to the whole context before it.
ojson llama_bench(const fs::path& model, int threads, int prompt_len, bool fa, int depth = 0) {
  const fs::path bin = fs::path(LRGD_LLAMA_BIN_DIR) / "llama-bench";
  std::vector<std::string> cmd{bin.string(), "-m",           model.string(), "-t", std::to_string(threads),
                               "-fa",        fa ? "1" : "0", "-r",           "3",  "-o",
                               "json"};
  const std::vector<std::string> tests =
      depth > 0 ? std::vector<std::string>{"-p", "512", "-n", "0", "-d", std::to_string(depth)}
                : std::vector<std::string>{"-p", "512," + std::to_string(prompt_len), "-n", "128"};
  cmd.insert(cmd.end(), tests.begin(), tests.end());
  const auto r = lrgd::run_tool_checked(cmd, "on " + model.string());
  ojson out;
  try {
    for (const auto& t : nlohmann::json::parse(r.out)) {
      const int np = t.at("n_prompt").get<int>(), ng = t.at("n_gen").get<int>();
      const int nd = t.value("n_depth", 0);
      std::string key = np > 0 ? "pp" + std::to_string(np) : "tg" + std::to_string(ng);
      if (nd > 0) key += "@d" + std::to_string(nd);
      out[key] = t.at("avg_ts").get<double>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw lrgd::Error(bin.string() + " printed no usable JSON (" + e.what() + ")");
  }
  return out;
}

lrgd::eval::EvalConfig config(const Args& a, const Workload& w) {
  lrgd::eval::EvalConfig c;
  c.method = lrgd::rec::Method::Zsl;
  c.protocol.n_users = a.users;
  c.n_trials = 1;
  c.llm.mode = w.mode;
  c.llm.constrain = w.constrain;
  return c;
}

ojson run(const Args& a, const Workload& w, const lrgd::data::Dataset& ds, lrgd::llm::Backend& backend,
          const fs::path& dir) {
  lrgd::eval::RunOptions ro;
  ro.out = dir / w.name;
  ro.overwrite = true;
  ro.progress = false;
  const auto u0 = backend.usage();
  const auto r = lrgd::eval::run_eval(config(a, w), ds, &backend, ro);
  const auto u = backend.usage() - u0;
  // Processed: every prompt token counts, a reused one too (what a user's run gets done);
  // decoded: only what went through the model.
  const double processed = static_cast<double>(u.n_prompt_tokens + u.n_scored_tokens + u.n_generated_tokens);
  const double decoded = processed - static_cast<double>(u.n_reused_tokens);
  return {
      {"records", r.n_records},
      {"valid_output_rate", r.valid_output_rate},
      {"wall_s", r.wall_s},
      {"prompt_tokens", u.n_prompt_tokens},
      {"reused_tokens", u.n_reused_tokens},
      {"scored_tokens", u.n_scored_tokens},
      {"generated_tokens", u.n_generated_tokens},
      {"mean_prompt_tokens", r.n_records ? static_cast<double>(u.n_prompt_tokens) / r.n_records : 0.0},
      {"grammar_checks", u.n_grammar_checks},
      {"grammar_full_masks", u.n_grammar_full_masks},
      {"prompt_tps", u.prompt_ms > 0 ? u.n_prompt_tokens / (u.prompt_ms / 1000.0) : 0.0},
      {"prompt_decoded_tps", u.prompt_ms > 0 ? (u.n_prompt_tokens - u.n_reused_tokens) / (u.prompt_ms / 1000.0) : 0.0},
      {"generated_tps", u.generate_ms > 0 ? u.n_generated_tokens / (u.generate_ms / 1000.0) : 0.0},
      {"processed_tps", r.wall_s > 0 ? processed / r.wall_s : 0.0},
      {"decoded_tps", r.wall_s > 0 ? decoded / r.wall_s : 0.0}};
}

// llama-server on the same file, killed on destruction.
struct Server {
  pid_t pid = -1;
  int port = 0;
  Server(const fs::path& model, int threads, int parallel, int ctx_per_seq, bool fa) {
    port = 18000 + static_cast<int>(::getpid() % 1000);
    const fs::path bin = fs::path(LRGD_LLAMA_BIN_DIR) / "llama-server";
    std::vector<std::string> args{bin.string(),
                                  "-m",
                                  model.string(),
                                  "--host",
                                  "127.0.0.1",
                                  "--port",
                                  std::to_string(port),
                                  "-t",
                                  std::to_string(threads),
                                  "-np",
                                  std::to_string(parallel),
                                  "-c",
                                  std::to_string(ctx_per_seq * parallel),
                                  "-fa",
                                  fa ? "on" : "off",
                                  "--no-webui"};
    pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    httplib::Client cli("127.0.0.1", port);
    for (int i = 0; i < 600; ++i) {
      if (auto res = cli.Get("/health"); res && res->status == 200) return;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) throw lrgd::Error("llama-server exited before it was ready");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw lrgd::Error("llama-server was not ready after 60 s");
  }
  ~Server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
};

int bench(const Args& a) {
  const fs::path model = lrgd::hub::resolve_model_arg(a.model);
  const auto ds = lrgd::data::load_dataset(a.data);
  const auto work = fs::temp_directory_path() / ("lrgd-bench-text-" + std::to_string(::getpid()));
  fs::create_directories(work);

  lrgd::llm::LlamaBackendOptions bo;
  bo.model = model;
  bo.n_threads = a.threads;
  bo.n_parallel = a.parallel;
  bo.flash_attn = a.flash_attn;
  bo.kv_unified = a.kv_unified;
  bo.kv_f32 = a.kv_f32;
  auto backend = lrgd::llm::make_llama_backend(bo);
  const std::vector<Workload> workloads{{"generate_free", lrgd::rec::RankMode::Generate, false},
                                        {"generate_constrained", lrgd::rec::RankMode::Generate, true},
                                        {"score", lrgd::rec::RankMode::Score, false}};
  // llama-bench runs right after each workload, on the same file and threads: this VM's
  // speed drifts by 10-20% over minutes, so each ratio uses the baseline measured next to it.
  ojson embedded, baselines = ojson::array();
  int prompt_len = 0;
  for (const auto& w : workloads) {
    if (!a.only.empty() && w.name != a.only && !(a.server && w.name == "generate_constrained")) continue;
    fmt::print(stderr, "embedded: {} on {} users...\n", w.name, a.users);
    ojson r = run(a, w, ds, *backend, work / "embedded");
    prompt_len = std::max(64, static_cast<int>(r["mean_prompt_tokens"].get<double>() / 64.0 + 0.5) * 64);
    fmt::print(stderr, "llama-bench pp512, pp{}, tg128...\n", prompt_len);
    const ojson lb = llama_bench(model, a.threads, prompt_len, a.flash_attn);
    const double pp512 = lb.value("pp512", 0.0), tg128 = lb.value("tg128", 0.0);
    const double pp_matched = lb.value("pp" + std::to_string(prompt_len), 0.0);
    // Score mode's prompt phase is the whole request (context and continuations), so its
    // figure of merit is every token it handled per second of wall time.
    const bool score = w.name == "score";
    const double ptps = score ? r["processed_tps"].get<double>() : r["prompt_tps"].get<double>();
    const double dtps = score ? r["decoded_tps"].get<double>() : r["prompt_decoded_tps"].get<double>();
    if (score) {
      // The same work at llama-bench's own rates: the context's decoded tokens at pp<len>,
      // each scored continuation token at pp512 with the context already in the cache.
      const ojson deep = llama_bench(model, a.threads, prompt_len, a.flash_attn, prompt_len);
      const double pp_deep = deep.value("pp512@d" + std::to_string(prompt_len), 0.0);
      r["llama_bench_at_depth"] = deep;
      const auto decoded_prompt = r["prompt_tokens"].get<double>() - r["reused_tokens"].get<double>();
      if (pp_matched > 0 && pp_deep > 0)
        r["work_matched_vs_llama_bench"] =
            (decoded_prompt / pp_matched + r["scored_tokens"].get<double>() / pp_deep) / r["wall_s"].get<double>();
    }
    r["llama_bench"] = lb;
    r["prompt_vs_pp512"] = pp512 > 0 ? ptps / pp512 : 0.0;
    r["prompt_decoded_vs_pp512"] = pp512 > 0 ? dtps / pp512 : 0.0;
    r["prompt_vs_pp" + std::to_string(prompt_len)] = pp_matched > 0 ? ptps / pp_matched : 0.0;
    if (r["generated_tokens"].get<std::uint64_t>() > 0)
      r["generated_vs_tg128"] = tg128 > 0 ? r["generated_tps"].get<double>() / tg128 : 0.0;
    embedded[w.name] = std::move(r);
    baselines.push_back(lb);
  }
  backend.reset();
  if (embedded.empty()) throw lrgd::Error("no workload named " + a.only);
  ojson lb = ojson::object();  // the mean of the baselines, for the summary
  for (const auto& b : baselines)
    for (const auto& [k, v] : b.items())
      lb[k] = lb.value(k, 0.0) + v.get<double>() / static_cast<double>(baselines.size());

  ojson result{{"bench", "text"},
               {"model", model.string()},
               {"model_info", lrgd::llm::Model::open(model)->info().description},
               {"threads", a.threads},
               {"parallel", a.parallel},
               {"flash_attn", a.flash_attn},
               {"kv_unified", a.kv_unified},
               {"kv_f32", a.kv_f32},
               {"users", a.users},
               {"llama_bench", lb},
               {"embedded", embedded}};
  if (a.server) {
    fmt::print(stderr, "llama-server peer: generate_constrained...\n");
    const int ctx_per_seq = std::max(2048, prompt_len * 2);
    Server server(model, a.threads, a.parallel, ctx_per_seq, a.flash_attn);
    lrgd::llm::OpenAiConfig oc;
    oc.endpoints = {"http://127.0.0.1:" + std::to_string(server.port)};
    oc.max_in_flight = a.parallel;
    oc.distinct_candidates = true;  // the embedded engine's constraint: distinct numbers
    auto remote = lrgd::llm::make_openai_backend(oc);
    const auto peer = run(a, workloads[1], ds, *remote, work / "server");
    const double ours = embedded["generate_constrained"]["wall_s"].get<double>();
    result["server"] = {{"generate_constrained", peer},
                        {"embedded_speedup_vs_server", ours > 0 ? peer["wall_s"].get<double>() / ours : 0.0}};
  }
  fs::remove_all(work);
  const std::string text = result.dump(2);
  fmt::print("{}\n", text);
  if (!a.out.empty()) std::ofstream(a.out) << text << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    const std::string s = argv[i];
    if (s == "--model")
      a.model = next();
    else if (s == "--threads")
      a.threads = std::stoi(next());
    else if (s == "--users")
      a.users = std::stoul(next());
    else if (s == "--parallel")
      a.parallel = std::stoi(next());
    else if (s == "--flash-attn")
      a.flash_attn = true;
    else if (s == "--no-server")
      a.server = false;
    else if (s == "--kv-unified")
      a.kv_unified = true;
    else if (s == "--kv-f32")
      a.kv_f32 = true;
    else if (s == "--only")
      a.only = next();
    else if (s == "--out")
      a.out = next();
    else
      a.data = fs::path(s) / "amazon18-games";
  }
  try {
    return bench(a);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_text: error: {}\n", e.what());
    return 1;
  }
}
