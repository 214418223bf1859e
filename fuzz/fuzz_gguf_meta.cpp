// GGUF metadata as lrgd reads it to recognise an item-token model (read_item_model_meta,
// through ggml's gguf parser), on arbitrary bytes: never a crash; a file that is not a
// GGUF is an IoError, a key of another type counts as absent.
#include "fuzz_common.h"
#include "lrgd/llama_model.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = lrgd::fuzz::write("model.gguf", data, size);
  lrgd::fuzz::expect_clean([&] { (void)lrgd::llm::read_item_model_meta(path); });
  return 0;
}
