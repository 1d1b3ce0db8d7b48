//! Integration tests of the `cloister-host` binary, one test binary.

mod binary;
