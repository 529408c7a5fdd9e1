// Runs the DurableStores contract against the embedded SQLite store and, when
// MariaDB/MySQL is reachable (always in CI), against a fresh MySQL database.
import { describeDurableStores } from "./durable-stores.contract.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable } from "../support/durable.ts";

describeDurableStores("sqlite", () => openDurable("embedded"));

if (BACKENDS.includes("mysql")) {
  describeDurableStores("mysql", () => openDurable("mysql"));
}
