//! Rebuilds the crate when a migration is added. `sqlx::migrate!` embeds `migrations/` at
//! compile time, and Cargo reruns it only when a file it already knows about changes; a new
//! migration is a new file, so without this the binary (and the tests) would keep migrating
//! to the schema of the last build. This is the build script sqlx recommends.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
