#pragma once
// Internal: a thin RAII layer over the SQLite C API. A Db is one connection,
// used by one thread at a time (its owner serialises access); statements are
// prepared once per connection and cached by their SQL text. Every SQLite error
// becomes a StoreError whose code says what the caller can do about it.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "errand/store/store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace errand::store::sqlite {

[[noreturn]] void throw_error(int rc, sqlite3* db, std::string_view what);

class Db;

// A prepared statement borrowed for one execution: bind, step, read; reset and
// unbound when the Query goes out of scope, so the cached statement is reusable.
class Query {
 public:
  Query(Db& db, sqlite3_stmt* stmt) : db_(&db), stmt_(stmt) {}
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int index, std::int64_t value);
  Query& bind(int index, std::string_view text);
  // The same without SQLite's copy of the text, which must then stay alive
  // and unchanged until this Query is gone (the hot insert binds its record's
  // fields so: each copy was a malloc and a memcpy).
  Query& bind_borrowed(int index, std::string_view text);
  Query& bind(int index, std::nullptr_t);
  // Empty text binds NULL: how optional strings are stored.
  Query& bind_or_null(int index, std::string_view text);
  Query& bind(int index, const std::optional<std::string>& text);
  Query& bind(int index, std::optional<std::int64_t> value);

  // True while there is a row to read.
  bool step();
  // Steps to completion; returns sqlite3_changes().
  int run();

  [[nodiscard]] std::int64_t i64(int col) const;
  [[nodiscard]] std::string text(int col) const;  // NULL reads as ""
  [[nodiscard]] std::optional<std::string> opt_text(int col) const;
  [[nodiscard]] std::optional<std::int64_t> opt_i64(int col) const;
  [[nodiscard]] bool is_null(int col) const;

 private:
  Db* db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  // flags: SQLITE_OPEN_* ; busy_timeout in milliseconds.
  Db(const std::string& path, int flags, int busy_timeout_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const char* sql);
  // Runs one statement through the prepared-statement cache (no parsing after
  // the first time): for the hot BEGIN / SAVEPOINT / COMMIT of group commit.
  void run(std::string_view sql);
  // Looked up by the text as given: a literal costs a hash, not a copy.
  Query query(std::string_view sql);
  // False once SQLite has rolled a transaction back on its own (SQLITE_FULL,
  // SQLITE_IOERR, SQLITE_NOMEM may do that).
  [[nodiscard]] bool in_transaction() const;
  [[nodiscard]] sqlite3* raw() const { return db_; }

 private:
  struct StmtDeleter {
    void operator()(sqlite3_stmt* s) const;
  };
  sqlite3* db_ = nullptr;
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept {
      return std::hash<std::string_view>{}(sql);
    }
  };
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StmtDeleter>, SqlHash,
                     std::equal_to<>>
      cache_;
};

}  // namespace errand::store::sqlite
