// Which ggml CPU code runs on the weights. The AMX buffer type of ggml segfaults on quantised
// weights (upstream llama.cpp issue 20824); scripts/setup.sh keeps AMX out of the build. On an
// AMX machine these tests fail if that crash path is reachable again (the decode below is the
// exact crash); on every machine they assert the buffer types a loaded model really uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"
#include "tiny_model.h"

namespace fs = std::filesystem;

namespace {

bool cpu_has_amx() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return line.find(" amx_int8") != std::string::npos;
  return false;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(CpuBackend, TheBuildHasNoAmxBufferType) {
  const auto info = lrgd::llm::cpu_backend_info();
  EXPECT_FALSE(info.features.empty()) << "ggml reported no CPU features";
  EXPECT_FALSE(info.has_amx) << "this CPU " << (cpu_has_amx() ? "has" : "lacks")
                             << " AMX; the build compiled ggml's AMX buffer type in: " << info.summary();
  for (const auto& f : info.features) EXPECT_EQ(f.rfind("AMX", 0), std::string::npos) << f;
}

struct TypeCase {
  std::string type;
  bool repacked_on_avx2;  // ggml's CPU_REPACK takes this type on x86 with AVX2
};

class EachWeightType : public ::testing::TestWithParam<TypeCase> {};

// A quantised model loads into known-safe buffers only and decodes; on an AMX machine with an
// AMX build this is where it crashed.
TEST_P(EachWeightType, LoadsIntoSafeBuffersAndDecodes) {
  const auto& c = GetParam();
  auto o = lrgd::test::tiny_options("mistral");  // 32k vocabulary: small files
  o.n_layer = 1;
  o.n_embd = 256;  // q4_K blocks are 256 wide
  o.n_ff = 512;
  o.n_ctx = 256;
  o.type = c.type;
  const auto path = lrgd::test::cached_model(o);

  const auto model = lrgd::llm::Model::open(path);
  const auto& info = model->info();
  ASSERT_FALSE(info.weight_buffers.empty()) << "no weight buffer reported by libllama's load log";
  std::set<std::string> types;
  for (const auto& b : info.weight_buffers) types.insert(b.type);
  const std::set<std::string> safe{"CPU", "CPU_Mapped", "CPU_REPACK"};
  for (const auto& t : types) EXPECT_TRUE(safe.count(t)) << c.type << " weights in buffer type " << t;

  const auto cpu = lrgd::llm::cpu_backend_info();
  // The fix must not cost the repacked kernels where ggml has them (x86 with AVX2).
  if (c.repacked_on_avx2 && has(cpu.features, "AVX2") && has(cpu.extra_buffer_types, "CPU_REPACK")) {
    EXPECT_TRUE(types.count("CPU_REPACK")) << c.type << " should be repacked on this CPU";
  }
  if (!c.repacked_on_avx2) {
    EXPECT_FALSE(types.count("CPU_REPACK")) << c.type << " is never repacked on x86";
  }

  const auto g = lrgd::llm::generate_greedy(*model, "Recommend a game:", 3, {.n_threads = 2});
  ASSERT_EQ(g.first_logits.size(), static_cast<std::size_t>(info.n_vocab));
  for (float v : g.first_logits) ASSERT_TRUE(std::isfinite(v)) << c.type;
}

INSTANTIATE_TEST_SUITE_P(CpuBackend, EachWeightType,
                         ::testing::Values(TypeCase{"f32", false}, TypeCase{"f16", false}, TypeCase{"q8_0", false},
                                           TypeCase{"q4_0", true}, TypeCase{"q4_1", false}, TypeCase{"q4_K", true}),
                         [](const auto& param_info) { return param_info.param.type; });

}  // namespace
