// A prepared split file (`lrgd data prepare`, read back by --split) on arbitrary bytes.
#include "fuzz_common.h"
#include "lrgd/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = lrgd::fuzz::write("split.jsonl", data, size);
  lrgd::fuzz::expect_clean([&] { (void)lrgd::protocol::read_prepared_split(path); });
  return 0;
}
