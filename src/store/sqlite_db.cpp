#include "store/sqlite_db.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

namespace errand::store::sqlite {

void throw_error(int rc, sqlite3* db, std::string_view what) {
  using Code = StoreError::Code;
  Code code = Code::unavailable;
  switch (rc & 0xFF) {
    case SQLITE_FULL: code = Code::full; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = Code::busy; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = Code::corrupt; break;
    case SQLITE_CONSTRAINT: code = Code::invalid; break;
    default: break;
  }
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw StoreError(code, fmt::format("sqlite: {}: {}", what, detail));
}

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Query& Query::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) throw_error(rc, db_->raw(), "bind");
  return *this;
}

Query& Query::bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) throw_error(rc, db_->raw(), "bind");
  return *this;
}

Query& Query::bind_borrowed(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK) throw_error(rc, db_->raw(), "bind");
  return *this;
}

Query& Query::bind(int index, std::nullptr_t) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) throw_error(rc, db_->raw(), "bind");
  return *this;
}

Query& Query::bind_or_null(int index, std::string_view text) {
  return text.empty() ? bind(index, nullptr) : bind(index, text);
}

Query& Query::bind(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind(index, nullptr);
}

Query& Query::bind(int index, std::optional<std::int64_t> value) {
  return value ? bind(index, *value) : bind(index, nullptr);
}

bool Query::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_error(rc, db_->raw(), "step");
}

int Query::run() {
  while (step()) {
  }
  return sqlite3_changes(db_->raw());
}

std::int64_t Query::i64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Query::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

std::optional<std::string> Query::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

std::optional<std::int64_t> Query::opt_i64(int col) const {
  if (is_null(col)) return std::nullopt;
  return i64(col);
}

bool Query::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

void Db::StmtDeleter::operator()(sqlite3_stmt* s) const {
  sqlite3_finalize(s);
}

Db::Db(const std::string& path, int flags, int busy_timeout_ms) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    // The handle carries the message even on failure; it must be closed either way.
    try {
      throw_error(rc, db_, fmt::format("open {}", path));
    } catch (...) {
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw;
    }
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

Db::~Db() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

bool Db::in_transaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

void Db::exec(const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    throw_error(rc, db_, sql);
  }
}

void Db::run(std::string_view sql) {
  query(sql).run();
}

Query Db::query(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) throw_error(rc, db_, "prepare");
    it = cache_.emplace(std::string(sql), std::unique_ptr<sqlite3_stmt, StmtDeleter>(stmt)).first;
  }
  return {*this, it->second.get()};
}

}  // namespace errand::store::sqlite
