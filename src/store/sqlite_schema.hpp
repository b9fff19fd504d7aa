#pragma once
// Internal: the SQLite schema as a list of forward migrations. Migration i
// takes a database from version i to i + 1; the version lives in
// schema_version. Never edit a migration that has shipped: append one.

#include <cstdint>
#include <string>

#include "store/sqlite_db.hpp"

namespace errand::store::sqlite {

// errand's SQLite application_id ("ERND"), set in the file's header when the
// schema is created or upgraded, so that errand, `file(1)` and other tools
// can tell an errand database from another application's.
inline constexpr std::int32_t kApplicationId = 0x45524E44;

// Refuses a file that is neither empty nor errand's, before anything writes to
// it (not even the switch to WAL): its application_id is another program's, or
// it is 0 and the file holds tables but no errand schema_version. Throws
// StoreError(invalid) naming what the file holds.
void check_owner(Db& db, const std::string& path);

// Brings `db` to the latest version inside one transaction. Throws
// StoreError(invalid) if the file is from a newer errand.
void migrate(Db& db, int latest);

}  // namespace errand::store::sqlite
