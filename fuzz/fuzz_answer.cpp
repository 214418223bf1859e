// The LLM answer parser (lrgd::parse::parse_ranking) on arbitrary text: never a crash, and
// the ranking only names shown candidates, each once.
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "lrgd/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::string> titles = {"The Legend of Zelda: Breath of the Wild",
                                                  "Super Mario Odyssey",
                                                  "",
                                                  "Halo 5: Guardians (Xbox One)",
                                                  "FIFA 18 - PlayStation 4",
                                                  "ゼルダの伝説",
                                                  "Call of Duty: Black Ops III",
                                                  "Myst"};
  const std::string_view answer(reinterpret_cast<const char*>(data), size);
  lrgd::parse::ParseOptions o;
  o.list_length = 5;
  const auto r = lrgd::parse::parse_ranking(answer, titles, o);
  std::set<int> seen;
  for (const int c : r.ranking) {
    if (c < 0 || c >= static_cast<int>(titles.size()) || !seen.insert(c).second) std::abort();
  }
  if (static_cast<int>(r.ranking.size()) > o.list_length) std::abort();
  return 0;
}
