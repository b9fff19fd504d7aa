#include "cli.hpp"

int main(int argc, char** argv) {
  return errand::cli::main(argc, argv);
}
