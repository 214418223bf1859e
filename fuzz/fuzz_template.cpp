// The prompt template engine on arbitrary template text: parse, then render with fixed
// inputs. Never a crash; a bad template is an InputError naming the slot and line.
#include <cstdlib>

#include "fuzz_common.h"
#include "lrgd/prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  lrgd::fuzz::expect_clean([&] {
    const auto t = lrgd::prompt::Template::parse(text, "fuzz.txt");
    lrgd::prompt::PromptInputs in;
    in.history = {"Doom", "Myst {x}", "Halo"};
    in.candidates = {"Zelda", "Mario", "Tetris"};
    in.list_length = 3;
    const auto r = t.render(in);
    for (const auto& s : r.spans) {
      if (s.message >= r.messages.size() || s.begin > s.end || s.end > r.messages[s.message].content.size())
        std::abort();
    }
  });
  return 0;
}
