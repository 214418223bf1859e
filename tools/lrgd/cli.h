// The lrgd command line: a library so that tests can drive it in-process.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace lrgd::data {
struct Dataset;
struct LoadOptions;
}  // namespace lrgd::data
namespace lrgd::llm {
class Backend;
}
namespace lrgd::eval {
struct EvalConfig;
}
namespace lrgd::rec {
struct LlmRankerOptions;
}
namespace lrgd::protocol {
struct ProtocolOptions;
}

namespace lrgd::cli {

// The work chosen on the command line; runs after parsing. Returns the exit code.
using Action = std::function<int()>;

// A --model value: a pulled catalogue name (`lrgd model list`) becomes its cached GGUF path.
// Under parse_only() a catalogue name not pulled here stays a name: that is this machine's
// state, not a wrong command line.
CLI::Validator model_arg();

// LRGD_PARSE_ONLY=1: parse the command line, then stop before doing anything (the
// documentation test checks examples it cannot run this way).
bool parse_only();

// Exit codes: 0 success, 1 runtime error (bad input, IO), 2 usage error.
int run(int argc, char** argv);

// How every command that reads a dataset loads it: --format, --kcore, --repeats (cmd_data.cpp).
struct DataLoadArgs {
  std::string format = "auto";
  int kcore = -1;
  std::string repeats = "keep";
};
// Adds the options; `format_option` names the input format option where --format means
// something else (`lrgd data export`).
void add_data_load_options(CLI::App* cmd, DataLoadArgs& args, const std::string& format_option = "--format");
// The loader's options. Throws OptionError for a bad value.
data::LoadOptions load_options(const DataLoadArgs& args);

// Each command group adds its subcommands and sets `action` when one of them is chosen.
void add_model_commands(CLI::App& app, Action& action);
void add_generate_command(CLI::App& app, Action& action);
void add_demo_command(CLI::App& app, Action& action);
void add_data_commands(CLI::App& app, Action& action);
void add_eval_commands(CLI::App& app, Action& action);
void add_dual_command(CLI::App& app, Action& action);
// `model train` and `model eval-items` (cmd_train.cpp), under the `model` group.
void add_train_command(CLI::App* model, Action& action);

// When `model` is an item-token model (`lrgd model train`): checks that it was trained on
// `dataset` and switches `options` to item-token prompts in score mode (`mode` is the
// user's --mode, empty for the default). Text models: nothing changes. Throws OptionError.
void configure_item_model(const std::string& model, const data::Dataset& dataset, const std::string& mode,
                          rec::LlmRankerOptions& options);

// Users and candidates (protocol_args.cpp), shared by `data prepare`, `data export`, `eval`.
struct ProtocolArgs {
  std::size_t n_users = 1000;
  std::string users_file;
  std::uint64_t seed = 42;
  std::size_t max_history = 20;
  std::size_t n_candidates = 50;
  std::string negatives = "uniform-unseen";
  std::string retriever;
  std::string candidates_per_trial = "redraw";
  std::string candidate_file;
};
void add_protocol_options(CLI::App* cmd, ProtocolArgs& args);
// Resolves the options (a --retriever model is opened here, with n_threads). Throws OptionError.
protocol::ProtocolOptions protocol_options(const ProtocolArgs& args, const data::Dataset& dataset, int n_threads = 0);
// Runs `work`; an InputError in the --candidate-file or --users-file becomes an OptionError
// naming that option (exit 2: a file given on the command line that does not fit the data).
void with_protocol_files(const ProtocolArgs& args, const std::function<void()>& work);

// LRGD (issue 6, cmd_lrgd.cpp): `memory` and `ablate`; the `eval --method lrgd` options
// and the hook that configures such a run (returns what runs after run_eval: collapse.md/png).
void add_lrgd_commands(CLI::App& app, Action& action);
// The LRGD options of `lrgd eval`, registered on `eval`; CLI11 fills the returned values.
struct LrgdArgs;
std::shared_ptr<LrgdArgs> add_lrgd_eval_options(CLI::App* eval);
std::function<void()> configure_lrgd_eval(const LrgdArgs& args, eval::EvalConfig& config, const data::Dataset& dataset,
                                          llm::Backend& backend, const std::string& out, bool progress);
// --method icl: the demonstration as --icl-demo says (first-round: LRGD's generator).
void configure_icl_eval(const LrgdArgs& args, eval::EvalConfig& config);

}  // namespace lrgd::cli
