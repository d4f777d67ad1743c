//! Compile tests for `#[require(...)]`: what must build, and the errors (with their spans) for what must
//! not. Regenerate the `.stderr` snapshots with `TRYBUILD=overwrite cargo test -p jwtgate-macros`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
