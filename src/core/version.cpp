#include "lrgd/version.h"

namespace lrgd {
const char* version() { return LRGD_VERSION_STRING; }
}  // namespace lrgd
