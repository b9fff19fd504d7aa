#pragma once
// Internal: the SQLite schema as a list of forward migrations. Migration i
// takes a database from version i to i + 1; the version lives in
// schema_version. Never edit a migration that has shipped: append one.

#include "store/sqlite_db.hpp"

namespace errand::store::sqlite {

// Brings `db` to the latest version inside one transaction. Throws
// StoreError(invalid) if the file is from a newer errand.
void migrate(Db& db, int latest);

}  // namespace errand::store::sqlite
