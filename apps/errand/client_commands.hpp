#pragma once
// The `errand` subcommands that talk to a running server over its
// REST API: enqueue, status, cancel, retry, list, queues.
//
// Exit codes: 0 success; 1 the server refused (its error is printed) or, with
// --wait, the task ended dead or cancelled; 2 usage; 3 the server is
// unreachable.

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace errand::cli {

class ClientCommands {
 public:
  explicit ClientCommands(CLI::App& cli);
  ~ClientCommands();
  ClientCommands(const ClientCommands&) = delete;
  ClientCommands& operator=(const ClientCommands&) = delete;

  // True if one of these subcommands was on the command line.
  [[nodiscard]] bool parsed() const;
  // Runs it; returns the exit code.
  [[nodiscard]] int run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace errand::cli
