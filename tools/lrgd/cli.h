// The lrgd command line: a library so that tests can drive it in-process.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace lrgd::cli {

// The work chosen on the command line; runs after parsing. Returns the exit code.
using Action = std::function<int()>;

// Exit codes: 0 success, 1 runtime error (bad input, IO), 2 usage error.
int run(int argc, char** argv);

// Each command group adds its subcommands and sets `action` when one of them is chosen.
void add_model_commands(CLI::App& app, Action& action);
void add_generate_command(CLI::App& app, Action& action);
void add_demo_command(CLI::App& app, Action& action);
void add_data_commands(CLI::App& app, Action& action);
void add_eval_commands(CLI::App& app, Action& action);
void add_dual_command(CLI::App& app, Action& action);

}  // namespace lrgd::cli
