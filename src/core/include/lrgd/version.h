#pragma once

namespace lrgd {
// Semantic version of lrgd ("0.1.0").
const char* version();
}  // namespace lrgd
