#include "errand/app/config.hpp"

int main(int argc, char** argv) {
  return errand::app::cli_main(argc, argv);
}
