#include "cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <vector>

#include "lrgd/error.h"
#include "lrgd/llama_model.h"
#include "lrgd/version.h"

namespace lrgd::cli {

bool parse_only() {
  const char* p = std::getenv("LRGD_PARSE_ONLY");
  return p != nullptr && std::string_view(p) == "1";
}

int run(int argc, char** argv) {
  CLI::App app{"lrgd: LLM in-context-learning recommendation with LRGD demonstration optimisation"};
  app.name("lrgd");
  // The ggml CPU features are read only when --version is asked for (callback form).
  app.set_version_flag("--version", [] {
    return std::string("lrgd ") + lrgd::version() + "\nggml CPU backend: " + llm::cpu_backend_info().summary();
  });
  Action action;
  add_model_commands(app, action);
  add_generate_command(app, action);
  add_demo_command(app, action);
  add_data_commands(app, action);
  add_dual_command(app, action);
  add_eval_commands(app, action);
  add_lrgd_commands(app, action);

  // `lrgd ablate [OPTIONS] -- EVAL OPTIONS`: CLI11 would hand what follows "--" back to the
  // top level, so the separator is dropped; ablate passes every option from its first
  // unknown one on to lrgd eval anyway.
  std::vector<char*> args(argv, argv + argc);
  if (args.size() > 1 && std::string_view(args[1]) == "ablate") {
    const auto sep =
        std::find_if(args.begin() + 2, args.end(), [](const char* a) { return std::string_view(a) == "--"; });
    if (sep != args.end()) args.erase(sep);
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a hint to --help
    return 2;
  }
  if (!action) {
    std::fprintf(stderr, "lrgd: a command is required\nRun with --help for more information.\n");
    return 2;
  }
  if (parse_only()) return 0;
  try {
    return action();
  } catch (const lrgd::OptionError& e) {
    std::fprintf(stderr, "lrgd: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lrgd: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace lrgd::cli
