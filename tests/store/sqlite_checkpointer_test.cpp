// The checkpointer copies the write-ahead log into the database file on its
// own thread, while another connection keeps writing (a white-box test of
// src/store/sqlite_checkpointer.*; the store's own tests cover it in use).
#include "store/sqlite_checkpointer.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace errand::store::sqlite {
namespace {

// A plain connection in WAL mode that never checkpoints by itself.
struct Writer {
  explicit Writer(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    run("PRAGMA journal_mode = WAL");
    run("PRAGMA wal_autocheckpoint = 0");
    run("CREATE TABLE IF NOT EXISTS t (b BLOB)");
  }
  ~Writer() { sqlite3_close(db); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void run(const char* sql) const {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_free(err);
  }
  // ~250 pages of 4 KiB per call, in one transaction.
  void write_megabyte() const {
    run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250) "
        "INSERT INTO t SELECT randomblob(4000) FROM n");
  }
  sqlite3* db = nullptr;
};

TEST(SqliteCheckpointer, CopiesTheLogIntoTheFileWhenAskedWhileTheWriterGoesOn) {
  test::TempDir dir;
  const auto path = (dir.path() / "c.db").string();
  Writer w(path);
  for (int i = 0; i < 8; ++i) w.write_megabyte();
  const auto before = std::filesystem::file_size(path);
  EXPECT_LT(before, 1U << 20U);  // everything is still in the log
  EXPECT_GT(std::filesystem::file_size(path + "-wal"), 7U << 20U);

  Checkpointer cp(path, 5000, false);
  EXPECT_EQ(cp.runs(), 0U);  // nothing happens unasked
  cp.request();
  ASSERT_TRUE(test::eventually([&] { return cp.runs() >= 1; }));
  EXPECT_GT(std::filesystem::file_size(path), 7U << 20U);  // copied into the file

  // The writer was never blocked, and after a complete copy its next
  // transaction starts the log over instead of growing it.
  const auto wal = std::filesystem::file_size(path + "-wal");
  w.write_megabyte();
  EXPECT_LE(std::filesystem::file_size(path + "-wal"), wal);
}

TEST(SqliteCheckpointer, StopsPromptlyWithRequestsPendingAndLeavesTheFileWhole) {
  test::TempDir dir;
  const auto path = (dir.path() / "c.db").string();
  Writer w(path);
  for (int i = 0; i < 4; ++i) w.write_megabyte();
  {
    Checkpointer cp(path, 5000, true);
    for (int i = 0; i < 1000; ++i) cp.request();
  }  // joins here, a checkpoint under way finished (a hang fails by timeout)
  const auto one_row = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(w.db, sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    const auto* text = sqlite3_column_text(stmt, 0);
    std::string out = text == nullptr ? "" : reinterpret_cast<const char*>(text);
    sqlite3_finalize(stmt);
    return out;
  };
  EXPECT_EQ(one_row("SELECT count(*) FROM t"), "1000");
  EXPECT_EQ(one_row("PRAGMA integrity_check"), "ok");  // problems come back as rows
}

}  // namespace
}  // namespace errand::store::sqlite
