#include "cli.h"

int main(int argc, char** argv) { return lrgd::cli::run(argc, argv); }
