#pragma once

#include <string>

namespace lrgd::model {
// A Jinja chat template in the style of the architecture's instruct models, embedded in
// models made by `lrgd model init` so that llama.cpp and llama-server apply it.
std::string default_chat_template(const std::string& arch);
}  // namespace lrgd::model
