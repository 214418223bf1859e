// A run's results.jsonl as --resume reads it (eval's record reader), on arbitrary bytes:
// never a crash; a bad line is an InputError with file and line, a torn last line dropped.
#include "../src/eval/eval_internal.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = lrgd::fuzz::write("results.jsonl", data, size);
  lrgd::fuzz::expect_clean([&] {
    const auto r = lrgd::eval::detail::read_results(path);
    if (r.good_bytes > size) std::abort();
  });
  return 0;
}
