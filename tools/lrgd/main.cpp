#include <csignal>

#include "cli.h"

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) makes write() fail with EFBIG, reported with the file,
  // instead of killing the process with SIGXFSZ mid-record.
  std::signal(SIGXFSZ, SIG_IGN);
  return lrgd::cli::run(argc, argv);
}
